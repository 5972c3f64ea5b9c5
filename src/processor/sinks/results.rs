//! Window results as JSON records for `agent-metrics`: one record per result row, keyed by
//! query + window + group so a compacted topic keeps the latest value of each.

use arrow::array::RecordBatch;
use serde_json::{Map, Value};

use crate::processor::windows::ClosedWindow;
use crate::window::{cell, millis_to_text};

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
    use arrow::datatypes::DataType;
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
