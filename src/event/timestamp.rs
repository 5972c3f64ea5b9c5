//! Event timestamps: RFC 3339 on the wire, UTC in memory.
//!
//! Producers in other languages often write ISO 8601 without an offset (Python's
//! `datetime.utcnow().isoformat()`); such a timestamp is read as UTC rather than rejected.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serializer, de};

/// The pattern every timestamp matches, published in the JSON Schema.
pub const TIMESTAMP_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?$";

/// Parses an RFC 3339 timestamp, or an ISO 8601 one without offset taken as UTC.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Ok(with_offset.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    Err(format!(
        "`{}` is not an RFC 3339 timestamp such as 2025-10-09T12:34:56.789Z",
        text.escape_debug()
    ))
}

/// Writes a timestamp as RFC 3339 in UTC with `Z`: milliseconds always (`.000` included, as
/// JavaScript and the design documents write them), more digits only when they are not zero.
pub fn format_timestamp(timestamp: &DateTime<Utc>) -> String {
    let nanos = timestamp.timestamp_subsec_nanos();
    let precision = if nanos.is_multiple_of(1_000_000) {
        SecondsFormat::Millis
    } else if nanos.is_multiple_of(1_000) {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    timestamp.to_rfc3339_opts(precision, true)
}

/// Serde adapter for a required timestamp.
pub mod required {
    use super::*;

    /// Serializes as RFC 3339 UTC.
    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_timestamp(value))
    }

    /// Deserializes RFC 3339, or ISO 8601 without offset as UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        parse_timestamp(&text).map_err(de::Error::custom)
    }
}

/// Serde adapter for an optional timestamp.
pub mod optional {
    use super::*;

    /// Serializes as RFC 3339 UTC; `None` is skipped by the field's `skip_serializing_if`.
    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(timestamp) => serializer.serialize_str(&format_timestamp(timestamp)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes like [`super::required::deserialize`]; `null` reads as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = Option::<Cow<'de, str>>::deserialize(deserializer)?;
        text.map(|text| parse_timestamp(&text).map_err(de::Error::custom))
            .transpose()
    }
}

/// JSON Schema type of a timestamp field.
pub struct Timestamp;

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": TIMESTAMP_PATTERN,
            "description": "RFC 3339 date-time; without an offset it is read as UTC.",
            "examples": ["2025-10-09T12:34:56.789Z"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_millisecond_text_unchanged() {
        for text in ["2025-10-09T12:34:56.789Z", "2025-10-09T12:35:09.000Z"] {
            assert_eq!(format_timestamp(&parse_timestamp(text).unwrap()), text);
        }
        let micros = parse_timestamp("2025-10-09T12:34:56.789012Z").unwrap();
        assert_eq!(format_timestamp(&micros), "2025-10-09T12:34:56.789012Z");
    }

    #[test]
    fn offsets_convert_to_utc_and_naive_reads_as_utc() {
        let offset = parse_timestamp("2025-10-09T14:34:56+02:00").unwrap();
        let naive = parse_timestamp("2025-10-09T12:34:56.000000").unwrap();
        assert_eq!(offset, naive);
    }

    #[test]
    fn rejects_text_that_is_no_timestamp() {
        let err = parse_timestamp("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
