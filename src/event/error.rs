//! [`EventError`]: why bytes or a value are not a valid [`super::OutcomeEvent`].

use std::fmt;

/// The class of an event error; its [`as_str`](EventErrorKind::as_str) is the dead-letter reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventErrorKind {
    /// The encoded event is larger than [`super::limits::MAX_EVENT_BYTES`].
    TooLarge,
    /// The bytes are not JSON (or not UTF-8, or nest too deep, or hold a number out of range).
    MalformedJson,
    /// A required field is absent.
    MissingField,
    /// A field holds a value of the wrong JSON type.
    WrongType,
    /// A field has the right type but a value outside the contract.
    InvalidValue,
}

impl EventErrorKind {
    /// Stable snake_case name, used as the dead-letter reason and metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::MalformedJson => "malformed_json",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::InvalidValue => "invalid_value",
        }
    }
}

/// An event that could not be decoded or does not meet the contract.
///
/// The message names the offending field whenever there is one, e.g.
/// ``wrong_type: field `duration_ms`: invalid type: string "fast", expected f64``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    kind: EventErrorKind,
    field: Option<String>,
    detail: String,
}

impl EventError {
    /// Builds an error about one field.
    pub fn field(
        kind: EventErrorKind,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    /// Builds an error about the event as a whole.
    pub fn whole(kind: EventErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            detail: detail.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> EventErrorKind {
        self.kind
    }

    /// The dead-letter reason (`missing_field`, `wrong_type`, ...).
    pub fn reason(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The offending field's path (`status`, `tags[3]`, ...), when the error is about one.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong, without the kind and field prefix.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field `{field}`: {}", self.reason(), self.detail),
            None => write!(f, "{}: {}", self.reason(), self.detail),
        }
    }
}

impl std::error::Error for EventError {}
