//! Dead-letter reasons: why the processor set an event aside. They label the dead-letter
//! header `dlq.reason` and the metric `..._dead_letters_total{reason}`.

use super::EventErrorKind;

/// Reason of a late event.
pub const LATE: &str = "late";
/// Reason of a message with no payload.
pub const EMPTY: &str = "empty_payload";
/// Reason of an event that would open a group past `PROCESSOR_MAX_GROUPS_PER_WINDOW`.
pub const TOO_MANY_GROUPS: &str = "too_many_groups";
/// Reason of an event dated further ahead of the processor's clock than `WINDOW_MAX_FUTURE_MS`.
pub const FUTURE_TIMESTAMP: &str = "future_timestamp";

/// Every reason, so each metric series exists (at 0) from the start.
pub const ALL: [&str; 9] = [
    EventErrorKind::TooLarge.as_str(),
    EventErrorKind::MalformedJson.as_str(),
    EventErrorKind::MissingField.as_str(),
    EventErrorKind::WrongType.as_str(),
    EventErrorKind::InvalidValue.as_str(),
    EMPTY,
    LATE,
    FUTURE_TIMESTAMP,
    TOO_MANY_GROUPS,
];
