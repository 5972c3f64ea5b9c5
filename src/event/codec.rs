//! Decoding and encoding [`OutcomeEvent`] JSON, with errors that name the field.

use serde_json::error::Category;

use super::error::{EventError, EventErrorKind};
use super::limits::MAX_EVENT_BYTES;
use super::outcome::OutcomeEvent;

impl OutcomeEvent {
    /// Decodes and validates one event from JSON bytes.
    ///
    /// Never panics: malformed JSON, a missing or wrongly typed field, an unknown status, a
    /// non-finite number or an oversized event all come back as an [`EventError`].
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, EventError> {
        check_size(bytes)?;
        // The fast path carries no field paths; only a failure pays to decode again with them.
        let event: OutcomeEvent = match serde_json::from_slice(bytes) {
            Ok(event) => event,
            Err(_) => return Err(describe_decode_failure(bytes)),
        };
        event.validate()?;
        Ok(event)
    }

    /// Decodes and validates one event from a JSON string.
    pub fn from_json_str(text: &str) -> Result<Self, EventError> {
        Self::from_json_slice(text.as_bytes())
    }

    /// Validates, then encodes the event as compact JSON.
    pub fn to_json_vec(&self) -> Result<Vec<u8>, EventError> {
        self.validate()?;
        serde_json::to_vec(self)
            .map_err(|err| EventError::whole(EventErrorKind::InvalidValue, err.to_string()))
    }

    /// Validates, then encodes the event as a compact JSON string.
    pub fn to_json_string(&self) -> Result<String, EventError> {
        let bytes = self.to_json_vec()?;
        // serde_json only writes UTF-8.
        Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
    }
}

/// Rejects an encoded event over [`MAX_EVENT_BYTES`] before any decoding.
pub(super) fn check_size(bytes: &[u8]) -> Result<(), EventError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::whole(
            EventErrorKind::TooLarge,
            format!(
                "event is {} bytes, the limit is {MAX_EVENT_BYTES}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Decodes again while tracking the path, to say which field broke.
fn describe_decode_failure(bytes: &[u8]) -> EventError {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let err = match serde_path_to_error::deserialize::<_, OutcomeEvent>(&mut deserializer) {
        Ok(_) => {
            // Valid prefix followed by garbage: only the trailing-characters check fails.
            return match deserializer.end() {
                Err(err) => EventError::whole(EventErrorKind::MalformedJson, err.to_string()),
                Ok(()) => EventError::whole(EventErrorKind::MalformedJson, "undecodable event"),
            };
        }
        Err(err) => err,
    };
    let path = shorten_path(err.path().to_string());
    let inner = err.into_inner();
    let field = (path != ".").then_some(path);
    // With a field named, the byte position adds little; without one it is all there is.
    let message = match field {
        Some(_) => strip_position(&inner.to_string()),
        None => inner.to_string(),
    };
    match inner.classify() {
        Category::Data => classify_data_error(field, message),
        Category::Syntax | Category::Eof | Category::Io => match field {
            Some(field) => EventError::field(EventErrorKind::MalformedJson, field, message),
            None => EventError::whole(EventErrorKind::MalformedJson, message),
        },
    }
}

/// Sorts serde's data errors by their (stable) message prefixes.
fn classify_data_error(field: Option<String>, message: String) -> EventError {
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let full = match field {
            Some(parent) => format!("{parent}.{name}"),
            None => name.to_owned(),
        };
        return EventError::field(EventErrorKind::MissingField, full, message);
    }
    let kind = if message.starts_with("invalid type") {
        EventErrorKind::WrongType
    } else {
        EventErrorKind::InvalidValue
    };
    match field {
        Some(field) => EventError::field(kind, field, message),
        None => EventError::whole(kind, message),
    }
}

/// Keeps a deeply nested path readable: its first 64 bytes (a whole segment), then `...`.
fn shorten_path(path: String) -> String {
    const KEEP: usize = 64;
    if path.len() <= KEEP {
        return path;
    }
    let cut = path[..KEEP]
        .rfind(['[', '.'])
        .filter(|&at| at > 0)
        .unwrap_or(KEEP);
    format!("{}...", &path[..cut])
}

/// serde_json appends " at line L column C"; the field name says more, and keeps reasons short.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}
