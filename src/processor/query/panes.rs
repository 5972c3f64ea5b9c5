//! Incremental aggregation: one set of DataFusion accumulators per (pane, group), merged
//! through their intermediate state when a window closes. Memory follows panes × groups,
//! never the number of events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{filter, take};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

use super::compile::{CompiledQuery, GroupKey};
use crate::processor::table::{WINDOW_END, WINDOW_START};
use crate::processor::window::{Millis, WindowBounds, WindowSpec};

type Accumulators = Vec<Box<dyn Accumulator>>;

/// A pane of one partition: panes are kept per partition so a revoked partition's state
/// can be dropped, and merged across partitions when a window closes.
pub type PaneKey = (Millis, i32);

/// One pane's groups, keyed by the encoded data group keys.
#[derive(Default)]
struct Pane {
    groups: HashMap<Box<[u8]>, Accumulators>,
}

/// The open panes of one query.
pub struct PaneStore {
    spec: WindowSpec,
    converter: Option<RowConverter>,
    panes: BTreeMap<PaneKey, Pane>,
}

impl PaneStore {
    /// An empty store for `query` over `spec` windows.
    pub fn new(query: &CompiledQuery, spec: WindowSpec) -> Result<Self> {
        let converter = if query.data_keys.is_empty() {
            None
        } else {
            let fields = query
                .data_keys
                .iter()
                .map(|key| Ok(SortField::new(key.data_type(&query.aggregate_input)?)))
                .collect::<Result<Vec<_>>>()?;
            Some(RowConverter::new(fields)?)
        };
        Ok(Self {
            spec,
            converter,
            panes: BTreeMap::new(),
        })
    }

    /// Number of open panes.
    pub fn pane_count(&self) -> usize {
        self.panes.len()
    }

    /// Number of (pane, group) accumulator sets held.
    pub fn group_count(&self) -> usize {
        self.panes.values().map(|p| p.groups.len()).sum()
    }

    /// Earliest open pane start.
    pub fn first_pane(&self) -> Option<Millis> {
        self.panes.keys().next().map(|k| k.0)
    }

    /// Latest open pane start.
    pub fn last_pane(&self) -> Option<Millis> {
        self.panes.keys().next_back().map(|k| k.0)
    }

    /// Whether a pane of a partition `include` accepts in `[start, end)` holds data.
    pub fn has_data_in(&self, window: WindowBounds, include: impl Fn(i32) -> bool) -> bool {
        self.panes
            .range((window.start, i32::MIN)..(window.end, i32::MIN))
            .any(|((_, partition), _)| include(*partition))
    }

    /// Adds aggregate-input rows (after the row steps) that all fall in `pane`.
    pub fn update(
        &mut self,
        query: &CompiledQuery,
        pane: PaneKey,
        batch: &RecordBatch,
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let rows = batch.num_rows();
        // Group row indices by encoded key.
        let mut groups: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        match &self.converter {
            Some(converter) => {
                let keys = query
                    .data_keys
                    .iter()
                    .map(|key| key.evaluate(batch)?.into_array(rows))
                    .collect::<Result<Vec<_>>>()?;
                let encoded = converter.convert_columns(&keys)?;
                for (index, row) in encoded.iter().enumerate() {
                    let key = row.as_ref();
                    match groups.get_mut(key) {
                        Some(indices) => indices.push(index as u32),
                        None => {
                            groups.insert(key.into(), vec![index as u32]);
                        }
                    }
                }
            }
            None => {
                groups.insert(Box::default(), (0..rows as u32).collect());
            }
        }
        // Aggregate arguments and FILTER masks, once per batch.
        let inputs = query
            .aggregates
            .iter()
            .map(|(function, mask)| {
                let args = function
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(batch)?.into_array(rows))
                    .collect::<Result<Vec<_>>>()?;
                let mask = mask
                    .as_ref()
                    .map(|m| m.evaluate(batch)?.into_array(rows))
                    .transpose()?;
                Ok((args, mask))
            })
            .collect::<Result<Vec<_>>>()?;
        let pane = self.panes.entry(pane).or_default();
        let single_group = groups.len() == 1;
        for (key, indices) in groups {
            let accumulators = match pane.groups.get_mut(&key) {
                Some(accumulators) => accumulators,
                None => pane.groups.entry(key).or_insert(new_accumulators(query)?),
            };
            let indices = UInt32Array::from(indices);
            for ((args, mask), accumulator) in inputs.iter().zip(accumulators.iter_mut()) {
                let mut args: Vec<ArrayRef> = if single_group {
                    args.clone()
                } else {
                    args.iter()
                        .map(|a| take(a.as_ref(), &indices, None))
                        .collect::<std::result::Result<_, _>>()?
                };
                if let Some(mask) = mask {
                    let mask = if single_group {
                        Arc::clone(mask)
                    } else {
                        take(mask.as_ref(), &indices, None)?
                    };
                    let mask: &BooleanArray = mask.as_boolean();
                    args = args
                        .iter()
                        .map(|a| filter(a.as_ref(), mask))
                        .collect::<std::result::Result<_, _>>()?;
                }
                accumulator.update_batch(&args)?;
            }
        }
        Ok(())
    }

    /// Merges the panes of `window` (of the partitions `include` accepts) and evaluates the
    /// query's result rows for it.
    pub fn evaluate(
        &mut self,
        query: &CompiledQuery,
        window: WindowBounds,
        include: impl Fn(i32) -> bool,
    ) -> Result<RecordBatch> {
        let reused = self.spec.advance < self.spec.size;
        let mut merged: BTreeMap<Box<[u8]>, Accumulators> = BTreeMap::new();
        let range = (window.start, i32::MIN)..(window.end, i32::MIN);
        for (_, pane) in self
            .panes
            .range_mut(range)
            .filter(|((_, partition), _)| include(*partition))
        {
            for (key, accumulators) in pane.groups.iter_mut() {
                if !merged.contains_key(key) {
                    merged.insert(key.clone(), new_accumulators(query)?);
                }
                let target = merged.get_mut(key).expect("inserted above");
                for (index, (source, target)) in
                    accumulators.iter_mut().zip(target.iter_mut()).enumerate()
                {
                    let state = state_arrays(source.as_mut())?;
                    target.merge_batch(&state)?;
                    if reused {
                        // `state` may consume; the pane serves later windows, so rebuild it.
                        let mut fresh = query.aggregates[index].0.create_accumulator()?;
                        fresh.merge_batch(&state)?;
                        *source = fresh;
                    }
                }
            }
        }
        let groups = merged.len();
        let data_columns = match &self.converter {
            Some(converter) => {
                let parser = converter.parser();
                let rows: Vec<_> = merged.keys().map(|key| parser.parse(key)).collect();
                converter.convert_rows(rows)?
            }
            None => Vec::new(),
        };
        let window_columns = window_key_columns(query, window, groups)?;
        let mut columns: Vec<ArrayRef> = query
            .key_order
            .iter()
            .map(|key| match key {
                GroupKey::Data(i) => Arc::clone(&data_columns[*i]),
                GroupKey::Window(i) => Arc::clone(&window_columns[*i]),
            })
            .collect();
        for index in 0..query.aggregates.len() {
            let values = merged
                .values_mut()
                .map(|accumulators| accumulators[index].evaluate())
                .collect::<Result<Vec<_>>>()?;
            let field = query.aggregate_output.field(columns.len());
            let array = if values.is_empty() {
                new_null_array(field.data_type(), 0)
            } else {
                ScalarValue::iter_to_array(values)?
            };
            columns.push(array);
        }
        let batch = RecordBatch::try_new(Arc::clone(&query.aggregate_output), columns)?;
        query.apply_result_steps(batch)
    }

    /// Drops a partition's panes that start before `start` (no window still to come for it
    /// contains them).
    pub fn evict_before(&mut self, partition: i32, start: Millis) {
        self.panes
            .retain(|&(pane, owner), _| owner != partition || pane >= start);
    }

    /// Drops every pane of `partition`.
    pub fn remove_partition(&mut self, partition: i32) {
        self.panes.retain(|&(_, owner), _| owner != partition);
    }

    /// Partitions with open panes.
    pub fn partitions(&self) -> std::collections::BTreeSet<i32> {
        self.panes.keys().map(|k| k.1).collect()
    }
}

fn new_accumulators(query: &CompiledQuery) -> Result<Accumulators> {
    query
        .aggregates
        .iter()
        .map(|(function, _)| function.create_accumulator())
        .collect()
}

fn state_arrays(accumulator: &mut dyn Accumulator) -> Result<Vec<ArrayRef>> {
    accumulator
        .state()?
        .iter()
        .map(|value| value.to_array())
        .collect()
}

/// The window-bound group keys, evaluated once on a row holding only the bounds.
fn window_key_columns(
    query: &CompiledQuery,
    window: WindowBounds,
    rows: usize,
) -> Result<Vec<ArrayRef>> {
    if query.window_keys.is_empty() {
        return Ok(Vec::new());
    }
    // Every column but the bounds is null in this row, so all are declared nullable.
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
        query
            .aggregate_input
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let bound = match field.name().as_str() {
                WINDOW_START => Some(window.start),
                WINDOW_END => Some(window.end),
                _ => None,
            };
            match bound {
                Some(ms) => ScalarValue::TimestampMillisecond(Some(ms), Some("UTC".into()))
                    .to_array_of_size(1)
                    .and_then(|a| Ok(datafusion::arrow::compute::cast(&a, field.data_type())?)),
                None => Ok(new_null_array(field.data_type(), 1)),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let row = RecordBatch::try_new(schema, columns)?;
    query
        .window_keys
        .iter()
        .map(|key| {
            let value = key.evaluate(&row)?.into_array(1)?;
            ScalarValue::try_from_array(&value, 0)?.to_array_of_size(rows)
        })
        .collect()
}

/// Event times of a table batch's `timestamp` column, in ms.
pub fn event_times(batch: &RecordBatch) -> Option<&[i64]> {
    let column = batch.column_by_name("timestamp")?;
    column
        .as_primitive_opt::<TimestampMillisecondType>()
        .map(|a| a.values().as_ref())
}
