//! The closed vocabularies of an event: outcome status and severity.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How an agent action ended. Serialized lowercase (`"success"`, `"failure"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    /// Completed successfully.
    Success,
    /// Ended with an error.
    Failure,
    /// Completed with part of the work done.
    Partial,
    /// Exceeded its time limit.
    Timeout,
    /// Cancelled before it finished (by the caller or a shutdown).
    Cancelled,
    /// Still in progress when the event was recorded.
    Pending,
}

/// How much attention an event deserves. Serialized lowercase (`"info"`, `"error"`, ...).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    /// Normal operation.
    Info,
    /// Unusual but handled.
    Warning,
    /// An error occurred.
    Error,
    /// A system failure.
    Critical,
}

/// The error of parsing a status or severity name that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`, expected one of: {expected}")]
pub struct UnknownVariant {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl OutcomeStatus {
    /// Every status, in declaration order.
    pub const ALL: [OutcomeStatus; 6] = [
        Self::Success,
        Self::Failure,
        Self::Partial,
        Self::Timeout,
        Self::Cancelled,
        Self::Pending,
    ];

    /// The wire name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Partial => "partial",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Pending => "pending",
        }
    }

    /// The severity an event of this status gets when the producer does not choose one.
    pub fn default_severity(self) -> EventSeverity {
        match self {
            Self::Success | Self::Pending => EventSeverity::Info,
            Self::Partial | Self::Cancelled => EventSeverity::Warning,
            Self::Failure | Self::Timeout => EventSeverity::Error,
        }
    }
}

impl EventSeverity {
    /// Every severity, from least to most severe.
    pub const ALL: [EventSeverity; 4] = [Self::Info, Self::Warning, Self::Error, Self::Critical];

    /// The wire name of the severity.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EventSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutcomeStatus {
    type Err = UnknownVariant;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| UnknownVariant {
                what: "status",
                value: value.to_owned(),
                expected: "success, failure, partial, timeout, cancelled, pending",
            })
    }
}

impl FromStr for EventSeverity {
    type Err = UnknownVariant;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == value)
            .ok_or_else(|| UnknownVariant {
                what: "severity",
                value: value.to_owned(),
                expected: "info, warning, error, critical",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for status in OutcomeStatus::ALL {
            assert_eq!(status.as_str().parse::<OutcomeStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for severity in EventSeverity::ALL {
            assert_eq!(severity.as_str().parse::<EventSeverity>(), Ok(severity));
        }
    }

    #[test]
    fn unknown_names_list_the_allowed_ones() {
        let err = "exploded".parse::<OutcomeStatus>().unwrap_err();
        assert!(err.to_string().contains("timeout, cancelled"), "{err}");
        assert!("SUCCESS".parse::<OutcomeStatus>().is_err());
    }
}
