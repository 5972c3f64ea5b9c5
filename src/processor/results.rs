//! Window results as JSON records for `agent-metrics`: one record per result row, keyed by
//! query + window + group so a compacted topic keeps the latest value of each.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::common::ScalarValue;
use serde_json::{Map, Number, Value};

use crate::event::timestamp::format_timestamp;
use crate::processor::engine::ClosedWindow;

/// One record for the metrics topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    /// `query|window_start|group values`.
    pub key: String,
    /// `{"query", "window_start", "window_end", ...columns}`.
    pub value: Value,
}

/// The records of one closed window.
pub fn window_records(closed: &ClosedWindow) -> Vec<ResultRecord> {
    let rows = &closed.result.rows;
    let window = closed.result.window;
    let start = millis_to_text(window.start);
    let end = millis_to_text(window.end);
    let keys = key_columns(rows);
    (0..rows.num_rows())
        .map(|row| {
            let mut object = Map::new();
            object.insert("query".into(), Value::String(closed.query.name.clone()));
            object.insert("window_start".into(), Value::String(start.clone()));
            object.insert("window_end".into(), Value::String(end.clone()));
            for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
                object.insert(field.name().clone(), cell(column.as_ref(), row));
            }
            let group: Vec<String> = keys
                .iter()
                .map(|&i| match cell(rows.column(i).as_ref(), row) {
                    Value::String(text) => text,
                    other => other.to_string(),
                })
                .collect();
            ResultRecord {
                key: crate::keys::join_escaped(
                    [closed.query.name.as_str(), start.as_str()]
                        .into_iter()
                        .chain(group.iter().map(String::as_str)),
                    '|',
                ),
                value: Value::Object(object),
            }
        })
        .collect()
}

/// Columns that identify a row within its window: text, boolean and time columns (group keys
/// such as `agent_name` or `WINDOWSTART`); numbers are measurements.
fn key_columns(rows: &RecordBatch) -> Vec<usize> {
    use datafusion::arrow::datatypes::DataType;
    rows.schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            matches!(
                f.data_type(),
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Boolean
                    | DataType::Timestamp(..)
                    | DataType::Date32
            )
        })
        .map(|(i, _)| i)
        .collect()
}

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
