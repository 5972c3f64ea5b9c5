//! A result row's cells as JSON: numbers as numbers, timestamps as RFC 3339 text.

use arrow::array::Array;
use datafusion_common::ScalarValue;
use serde_json::{Number, Value};

use crate::event::timestamp::format_timestamp;

/// Epoch milliseconds as RFC 3339 text.
pub fn millis_to_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| format_timestamp(&t))
        .unwrap_or_else(|| ms.to_string())
}

/// One cell as JSON: numbers as numbers (non-finite as null), timestamps as RFC 3339.
pub fn cell(column: &dyn Array, row: usize) -> Value {
    let Ok(value) = ScalarValue::try_from_array(column, row) else {
        return Value::Null;
    };
    if value.is_null() {
        return Value::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Float64(Some(f)) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ScalarValue::Float32(Some(f)) => {
            Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        ScalarValue::Int8(Some(v)) => Value::from(v),
        ScalarValue::Int16(Some(v)) => Value::from(v),
        ScalarValue::Int32(Some(v)) => Value::from(v),
        ScalarValue::Int64(Some(v)) => Value::from(v),
        ScalarValue::UInt8(Some(v)) => Value::from(v),
        ScalarValue::UInt16(Some(v)) => Value::from(v),
        ScalarValue::UInt32(Some(v)) => Value::from(v),
        ScalarValue::UInt64(Some(v)) => Value::from(v),
        ScalarValue::TimestampMillisecond(Some(ms), _) => Value::String(millis_to_text(ms)),
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            Value::String(millis_to_text(us.div_euclid(1000)))
        }
        ScalarValue::TimestampNanosecond(Some(ns), _) => {
            Value::String(millis_to_text(ns.div_euclid(1_000_000)))
        }
        ScalarValue::TimestampSecond(Some(s), _) => Value::String(millis_to_text(s * 1000)),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::String(s),
        other => Value::String(other.to_string()),
    }
}
