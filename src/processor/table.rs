//! The `agent_outcomes` table window queries read: its Arrow schema, and decoded events
//! turned into record batches of it.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, ListBuilder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use crate::event::OutcomeEvent;

/// The table name queries use in `FROM`.
pub const TABLE_NAME: &str = "agent_outcomes";
/// Column holding a window's start (`WINDOWSTART` in the ksqlDB dialect).
pub const WINDOW_START: &str = "window_start";
/// Column holding a window's end (`WINDOWEND`).
pub const WINDOW_END: &str = "window_end";

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The table's schema: the event's fields (less `stack_trace` and `output`, which no window
/// aggregates) plus the two window columns.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let float = |name: &str| Field::new(name, DataType::Float64, true);
        let count = |name: &str| Field::new(name, DataType::UInt64, true);
        Arc::new(Schema::new(vec![
            text("event_id", false),
            text("run_id", false),
            text("agent_name", false),
            text("agent_type", true),
            text("action_type", false),
            Field::new("timestamp", timestamp(), false),
            Field::new("start_time", timestamp(), true),
            Field::new("end_time", timestamp(), true),
            Field::new("duration_ms", DataType::Float64, false),
            Field::new("latency_ms", DataType::Float64, false),
            text("status", false),
            text("severity", false),
            text("error_message", true),
            text("error_type", true),
            Field::new("retry_count", DataType::UInt32, true),
            float("llm_latency_ms"),
            count("tokens_used"),
            count("input_tokens"),
            count("output_tokens"),
            float("memory_used_mb"),
            float("cpu_time_ms"),
            text("model", true),
            text("provider", true),
            float("cost_estimate"),
            float("quality_score"),
            float("confidence_score"),
            text("correlation_id", true),
            text("workflow_id", true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ),
            // The metadata object as JSON text.
            text("metadata", true),
            Field::new(WINDOW_START, timestamp(), true),
            Field::new(WINDOW_END, timestamp(), true),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// Builds a record batch of [`schema`] from events; the window columns are null (a window
/// query binds them per window, not per event).
pub fn to_record_batch<'a>(
    events: impl ExactSizeIterator<Item = &'a OutcomeEvent> + Clone,
) -> Result<RecordBatch, ArrowError> {
    let rows = events.len();
    let texts = |get: fn(&OutcomeEvent) -> Option<&str>| -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(rows, rows * 16);
        for event in events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    };
    let floats = |get: fn(&OutcomeEvent) -> Option<f64>| -> ArrayRef {
        let mut builder = Float64Builder::with_capacity(rows);
        for event in events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    };
    let counts = |get: fn(&OutcomeEvent) -> Option<u64>| -> ArrayRef {
        let mut builder = UInt64Builder::with_capacity(rows);
        for event in events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    };
    let times = |get: fn(&OutcomeEvent) -> Option<i64>| -> ArrayRef {
        let mut builder = TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC");
        for event in events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    };
    let mut retries = UInt32Builder::with_capacity(rows);
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut metadata = StringBuilder::new();
    for event in events.clone() {
        retries.append_option(event.retry_count);
        match &event.tags {
            Some(values) => {
                for tag in values {
                    tags.values().append_value(tag);
                }
                tags.append(true);
            }
            None => tags.append(false),
        }
        match &event.metadata {
            Some(map) => metadata.append_value(serde_json::Value::Object(map.clone()).to_string()),
            None => metadata.append_null(),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        texts(|e| Some(&e.event_id)),
        texts(|e| Some(&e.run_id)),
        texts(|e| Some(&e.agent_name)),
        texts(|e| e.agent_type.as_deref()),
        texts(|e| Some(&e.action_type)),
        times(|e| Some(e.timestamp.timestamp_millis())),
        times(|e| e.start_time.map(|t| t.timestamp_millis())),
        times(|e| e.end_time.map(|t| t.timestamp_millis())),
        floats(|e| Some(e.duration_ms)),
        floats(|e| Some(e.latency_ms)),
        texts(|e| Some(e.status.as_str())),
        texts(|e| Some(e.severity.as_str())),
        texts(|e| e.error_message.as_deref()),
        texts(|e| e.error_type.as_deref()),
        Arc::new(retries.finish()),
        floats(|e| e.llm_latency_ms),
        counts(|e| e.tokens_used),
        counts(|e| e.input_tokens),
        counts(|e| e.output_tokens),
        floats(|e| e.memory_used_mb),
        floats(|e| e.cpu_time_ms),
        texts(|e| e.model.as_deref()),
        texts(|e| e.provider.as_deref()),
        floats(|e| e.cost_estimate),
        floats(|e| e.quality_score),
        floats(|e| e.confidence_score),
        texts(|e| e.correlation_id.as_deref()),
        texts(|e| e.workflow_id.as_deref()),
        Arc::new(tags.finish()),
        Arc::new(metadata.finish()),
        new_null_array(&timestamp(), rows),
        new_null_array(&timestamp(), rows),
    ];
    RecordBatch::try_new(schema(), columns)
}
