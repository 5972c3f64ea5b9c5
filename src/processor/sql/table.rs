//! The `agent_outcomes` table window queries read: its Arrow schema, and decoded events
//! turned into record batches of it.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Float64Builder, ListBuilder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder, make_array, new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::event::OutcomeEventView;

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

/// The table columns to fill from events. The others get placeholder values (nulls, or
/// empty strings and zeros where the schema forbids nulls): no query reads them, and building
/// every column for every event was a large part of the processor's cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSet(Vec<bool>);

impl ColumnSet {
    /// Every column.
    pub fn all() -> Self {
        Self(vec![true; schema().fields().len()])
    }

    /// The named columns (names that are not table columns are ignored) and `timestamp`,
    /// which windowing always reads.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let schema = schema();
        let mut set = vec![false; schema.fields().len()];
        for name in names.into_iter().chain(["timestamp"]) {
            if let Ok(index) = schema.index_of(name) {
                set[index] = true;
            }
        }
        Self(set)
    }

    /// Adds the columns of `other`.
    pub fn extend(&mut self, other: &Self) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine |= theirs;
        }
    }

    /// Whether the column at `index` is filled.
    pub fn contains(&self, index: usize) -> bool {
        self.0.get(index).copied().unwrap_or(false)
    }

    /// Names of the filled columns.
    pub fn names(&self) -> Vec<String> {
        schema()
            .fields()
            .iter()
            .zip(&self.0)
            .filter(|(_, filled)| **filled)
            .map(|(field, _)| field.name().clone())
            .collect()
    }
}

/// Builds a record batch of [`schema`] from events with every column filled; the window
/// columns are null (a window query binds them per window, not per event).
pub fn to_record_batch<'a, 'b: 'a>(
    events: impl ExactSizeIterator<Item = &'a OutcomeEventView<'b>> + Clone,
) -> Result<RecordBatch, ArrowError> {
    to_record_batch_of(events, &ColumnSet::all())
}

/// Builds a record batch of [`schema`] from events, filling only the `filled` columns.
pub fn to_record_batch_of<'a, 'b: 'a>(
    events: impl ExactSizeIterator<Item = &'a OutcomeEventView<'b>> + Clone,
    filled: &ColumnSet,
) -> Result<RecordBatch, ArrowError> {
    let rows = events.len();
    let columns = EventColumns { events, rows };
    let schema = schema();
    let arrays = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            if filled.contains(index) {
                Ok(columns.column(index))
            } else {
                placeholder(field, rows)
            }
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    RecordBatch::try_new(schema, arrays)
}

/// The events a batch is built from, read once per filled column.
struct EventColumns<I> {
    events: I,
    rows: usize,
}

impl<'a, 'b: 'a, I> EventColumns<I>
where
    I: Iterator<Item = &'a OutcomeEventView<'b>> + Clone,
{
    /// The column at `index` of [`schema`].
    fn column(&self, index: usize) -> ArrayRef {
        match index {
            0 => self.texts(|e| Some(&*e.event_id)),
            1 => self.texts(|e| Some(&*e.run_id)),
            2 => self.texts(|e| Some(&*e.agent_name)),
            3 => self.texts(|e| e.agent_type.as_deref()),
            4 => self.texts(|e| Some(&*e.action_type)),
            5 => self.times(|e| Some(e.timestamp.timestamp_millis())),
            6 => self.times(|e| e.start_time.map(|t| t.timestamp_millis())),
            7 => self.times(|e| e.end_time.map(|t| t.timestamp_millis())),
            8 => self.floats(|e| Some(e.duration_ms)),
            9 => self.floats(|e| Some(e.latency_ms)),
            10 => self.texts(|e| Some(e.status.as_str())),
            11 => self.texts(|e| Some(e.severity.as_str())),
            12 => self.texts(|e| e.error_message.as_deref()),
            13 => self.texts(|e| e.error_type.as_deref()),
            14 => self.retries(),
            15 => self.floats(|e| e.llm_latency_ms),
            16 => self.counts(|e| e.tokens_used),
            17 => self.counts(|e| e.input_tokens),
            18 => self.counts(|e| e.output_tokens),
            19 => self.floats(|e| e.memory_used_mb),
            20 => self.floats(|e| e.cpu_time_ms),
            21 => self.texts(|e| e.model.as_deref()),
            22 => self.texts(|e| e.provider.as_deref()),
            23 => self.floats(|e| e.cost_estimate),
            24 => self.floats(|e| e.quality_score),
            25 => self.floats(|e| e.confidence_score),
            26 => self.texts(|e| e.correlation_id.as_deref()),
            27 => self.texts(|e| e.workflow_id.as_deref()),
            28 => self.tags(),
            29 => self.metadata(),
            // The window bounds: bound per window, not per event.
            _ => new_null_array(&timestamp(), self.rows),
        }
    }

    fn texts(&self, get: for<'x> fn(&'x OutcomeEventView<'b>) -> Option<&'x str>) -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(self.rows, self.rows * 16);
        for event in self.events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    }

    fn floats(&self, get: fn(&OutcomeEventView<'b>) -> Option<f64>) -> ArrayRef {
        let mut builder = Float64Builder::with_capacity(self.rows);
        for event in self.events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    }

    fn counts(&self, get: fn(&OutcomeEventView<'b>) -> Option<u64>) -> ArrayRef {
        let mut builder = UInt64Builder::with_capacity(self.rows);
        for event in self.events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    }

    fn times(&self, get: fn(&OutcomeEventView<'b>) -> Option<i64>) -> ArrayRef {
        let mut builder =
            TimestampMillisecondBuilder::with_capacity(self.rows).with_timezone("UTC");
        for event in self.events.clone() {
            builder.append_option(get(event));
        }
        Arc::new(builder.finish())
    }

    fn retries(&self) -> ArrayRef {
        let mut builder = UInt32Builder::with_capacity(self.rows);
        for event in self.events.clone() {
            builder.append_option(event.retry_count);
        }
        Arc::new(builder.finish())
    }

    fn tags(&self) -> ArrayRef {
        let mut builder = ListBuilder::new(StringBuilder::new());
        for event in self.events.clone() {
            match &event.tags {
                Some(values) => {
                    for tag in values.iter() {
                        builder.values().append_value(tag);
                    }
                    builder.append(true);
                }
                None => builder.append(false),
            }
        }
        Arc::new(builder.finish())
    }

    fn metadata(&self) -> ArrayRef {
        let mut builder = StringBuilder::new();
        for event in self.events.clone() {
            match &event.metadata {
                Some(object) => builder.append_value(object.to_json_text()),
                None => builder.append_null(),
            }
        }
        Arc::new(builder.finish())
    }
}

/// A column no query reads: nulls, or (where the schema forbids nulls) the zero value of its
/// type, which for strings is the empty string.
fn placeholder(field: &Field, rows: usize) -> Result<ArrayRef, ArrowError> {
    let nulls = new_null_array(field.data_type(), rows);
    if field.is_nullable() {
        return Ok(nulls);
    }
    // A null array's buffers are zeroed: without its validity bitmap it holds zero values.
    let data = nulls.to_data().into_builder().nulls(None).build()?;
    Ok(make_array(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{OutcomeEvent, OutcomeStatus};

    #[test]
    fn unfilled_columns_hold_placeholders_and_filled_ones_hold_the_events() {
        let events: Vec<OutcomeEvent> = (0..3)
            .map(|n| {
                OutcomeEvent::builder(format!("agent_{n}"), "act")
                    .status(OutcomeStatus::Failure)
                    .duration_ms(n as f64)
                    .build()
                    .unwrap()
            })
            .collect();
        let events: Vec<_> = events.iter().map(OutcomeEvent::view).collect();
        let filled = ColumnSet::of(["agent_name", "no_such_column"]);
        assert_eq!(filled.names(), ["agent_name", "timestamp"]);
        let batch = to_record_batch_of(events.iter(), &filled).unwrap();
        let full = to_record_batch(events.iter()).unwrap();
        assert_eq!(batch.schema(), full.schema());
        for name in ["agent_name", "timestamp"] {
            assert_eq!(
                batch.column_by_name(name),
                full.column_by_name(name),
                "{name}"
            );
        }
        let event_ids = batch.column_by_name("event_id").unwrap();
        assert_eq!(event_ids.null_count(), 0, "a non-nullable placeholder");
        assert_ne!(event_ids, full.column_by_name("event_id").unwrap());
        assert_eq!(batch.column_by_name("model").unwrap().null_count(), 3);
    }
}
