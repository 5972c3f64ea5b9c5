//! Incremental aggregation: one set of DataFusion accumulators per (pane, group), merged
//! through their intermediate state when a window closes. Memory follows panes × groups,
//! never the number of events.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array, new_null_array};
use arrow::compute::{filter, take};
use arrow::datatypes::TimestampMillisecondType;
use arrow::row::{RowConverter, SortField};
use datafusion_common::{Result, ScalarValue};
use datafusion_expr::Accumulator;
use foldhash::{HashMap, HashMapExt, HashSet};

use super::accumulators::{Accumulators, new_accumulators, state_arrays};
use super::compile::{CompiledQuery, GroupKey};
use super::table::{WINDOW_END, WINDOW_START};
use crate::window::{Millis, WindowBounds, WindowSpec};

/// One group's encoded key and the indices of its rows in a batch.
type GroupRows = (Box<[u8]>, Vec<u32>);

/// A pane of one partition: panes are kept per partition so a revoked partition's state
/// can be dropped, and merged across partitions when a window closes.
pub type PaneKey = (Millis, i32);

/// One group of a pane: accumulating, or frozen into the accumulators' intermediate state
/// once a window holding the pane has been evaluated. Later hopping windows then merge the
/// frozen state directly instead of extracting and rebuilding it each time.
enum GroupState {
    Open(Accumulators),
    Frozen(Vec<Vec<ArrayRef>>),
}

impl GroupState {
    /// The accumulators, rebuilt from the frozen state if need be (a replayed event after a
    /// restart can still reach a pane one of whose windows has closed).
    fn open(&mut self, query: &CompiledQuery) -> Result<&mut Accumulators> {
        if let Self::Frozen(states) = self {
            let mut accumulators = new_accumulators(query)?;
            for (accumulator, state) in accumulators.iter_mut().zip(states.iter()) {
                accumulator.merge_batch(state)?;
            }
            *self = Self::Open(accumulators);
        }
        match self {
            Self::Open(accumulators) => Ok(accumulators),
            Self::Frozen(_) => unreachable!("opened above"),
        }
    }

    /// The intermediate state of every aggregate. Freezes the group, since `state` may
    /// consume an accumulator and the group may be evaluated again.
    fn states(&mut self) -> Result<Vec<Vec<ArrayRef>>> {
        if let Self::Open(accumulators) = self {
            let states = accumulators
                .iter_mut()
                .map(|accumulator| state_arrays(accumulator.as_mut()))
                .collect::<Result<Vec<_>>>()?;
            *self = Self::Frozen(states);
        }
        match self {
            Self::Frozen(states) => Ok(states.clone()),
            Self::Open(_) => unreachable!("frozen above"),
        }
    }
}

/// One pane's groups, keyed by the encoded data group keys.
#[derive(Default)]
struct Pane {
    groups: HashMap<Box<[u8]>, GroupState>,
}

/// The open panes of one query.
pub struct PaneStore {
    spec: WindowSpec,
    converter: Option<RowConverter>,
    panes: BTreeMap<PaneKey, Pane>,
    /// Most groups one pane start holds over all partitions; rows of further new groups are
    /// refused (see [`Self::update`]).
    max_groups: usize,
    /// Groups held per pane start, over all partitions.
    groups_per_pane: BTreeMap<Millis, usize>,
}

impl PaneStore {
    /// An empty store for `query` over `spec` windows, holding at most `max_groups` groups
    /// per pane.
    pub fn new(query: &CompiledQuery, spec: WindowSpec, max_groups: usize) -> Result<Self> {
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
            max_groups,
            groups_per_pane: BTreeMap::new(),
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

    /// Starts, in order, of the windows that hold a pane of a partition `include` accepts,
    /// start at or after `from` and end at or before `through`.
    pub fn window_starts(
        &self,
        from: Millis,
        through: Millis,
        include: impl Fn(i32) -> bool,
    ) -> std::collections::BTreeSet<Millis> {
        let mut starts = std::collections::BTreeSet::new();
        let mut last_pane = None;
        for &(pane, partition) in self.panes.keys() {
            if last_pane == Some(pane) || !include(partition) {
                continue;
            }
            last_pane = Some(pane);
            if pane >= through {
                break;
            }
            starts.extend(
                self.spec
                    .windows_of(pane)
                    .map(|window| window.start)
                    .filter(|&start| {
                        start >= from && start.saturating_add(self.spec.size) <= through
                    }),
            );
        }
        starts
    }

    /// Whether a pane of a partition `include` accepts in `[start, end)` holds data.
    pub fn has_data_in(&self, window: WindowBounds, include: impl Fn(i32) -> bool) -> bool {
        self.panes
            .range((window.start, i32::MIN)..(window.end, i32::MIN))
            .any(|((_, partition), _)| include(*partition))
    }

    /// Adds aggregate-input rows (after the row steps) that all fall in `pane`. Returns the
    /// rows refused because they would open a group past the pane's limit: existing groups
    /// stay exact, state stays bounded.
    ///
    /// `touched`, when given, receives the encoded keys of the groups the rows went to.
    pub fn update(
        &mut self,
        query: &CompiledQuery,
        pane: PaneKey,
        batch: &RecordBatch,
        mut touched: Option<&mut HashSet<Box<[u8]>>>,
    ) -> Result<Vec<u32>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let groups = self.group_rows(query, batch)?;
        let inputs = aggregate_inputs(query, batch)?;
        let held = self.groups_per_pane.entry(pane.0).or_default();
        let pane = self.panes.entry(pane).or_default();
        let single_group = groups.len() == 1;
        let mut refused = Vec::new();
        for (key, indices) in groups {
            if let Some(touched) = touched.as_deref_mut()
                && (pane.groups.contains_key(&key) || *held < self.max_groups)
            {
                touched.insert(key.clone());
            }
            let group = match pane.groups.entry(key) {
                Entry::Occupied(group) => group.into_mut(),
                Entry::Vacant(_) if *held >= self.max_groups => {
                    refused.extend(indices);
                    continue;
                }
                Entry::Vacant(slot) => {
                    *held += 1;
                    slot.insert(GroupState::Open(new_accumulators(query)?))
                }
            };
            let indices = (!single_group).then(|| UInt32Array::from(indices));
            update_group(group.open(query)?, &inputs, indices.as_ref())?;
        }
        refused.sort_unstable();
        Ok(refused)
    }

    /// The rows of `batch` by encoded group key, in the order of each group's first row (so
    /// the groups a full pane admits are the first ones the events name).
    fn group_rows(&self, query: &CompiledQuery, batch: &RecordBatch) -> Result<Vec<GroupRows>> {
        let rows = batch.num_rows();
        let Some(converter) = &self.converter else {
            return Ok(vec![(Box::default(), (0..rows as u32).collect())]);
        };
        let keys = query
            .data_keys
            .iter()
            .map(|key| key.evaluate(batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let encoded = converter.convert_columns(&keys)?;
        let mut groups: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        for (index, row) in encoded.iter().enumerate() {
            let key = row.as_ref();
            match groups.get_mut(key) {
                Some(indices) => indices.push(index as u32),
                None => {
                    groups.insert(key.into(), vec![index as u32]);
                }
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        if groups.len() > 1 {
            groups.sort_unstable_by_key(|(_, indices)| indices[0]);
        }
        Ok(groups)
    }

    /// Merges the panes of `window` (of the partitions `include` accepts) and evaluates the
    /// query's result rows for it; `only`: just these groups. Each group's state is kept
    /// (frozen), since a later window or a late event's update may evaluate it again.
    pub fn evaluate(
        &mut self,
        query: &CompiledQuery,
        window: WindowBounds,
        include: impl Fn(i32) -> bool,
        only: Option<&HashSet<Box<[u8]>>>,
    ) -> Result<RecordBatch> {
        let merged = self.merge(query, (window.start, window.end), include, only)?;
        self.result_rows(query, window, merged)
    }

    /// Like [`Self::evaluate`], over the panes starting exactly at `pane` (a merge stage
    /// keeps one pane per window, so hopping windows do not overlap in it).
    pub fn evaluate_pane(
        &mut self,
        query: &CompiledQuery,
        pane: Millis,
        window: WindowBounds,
        only: Option<&HashSet<Box<[u8]>>>,
    ) -> Result<RecordBatch> {
        let merged = self.merge(query, (pane, pane.saturating_add(1)), |_| true, only)?;
        self.result_rows(query, window, merged)
    }

    /// The groups of `window`'s panes (of the partitions `include` accepts, `only` these
    /// groups) as partial aggregates: the column `group` (encoded key), then every
    /// aggregate's intermediate state, one column per state field. Merging such rows from
    /// several stores gives what one store holding all their events would.
    pub fn partial_states(
        &mut self,
        query: &CompiledQuery,
        window: WindowBounds,
        include: impl Fn(i32) -> bool,
        only: Option<&HashSet<Box<[u8]>>>,
    ) -> Result<RecordBatch> {
        let merged = self.merge(query, (window.start, window.end), include, only)?;
        super::partial::encode(merged)
    }

    /// Puts partial aggregates (rows of [`Self::partial_states`]) into `pane`, each replacing
    /// what the pane held for its group; `touched` receives their keys.
    pub fn put_partial(
        &mut self,
        query: &CompiledQuery,
        pane: PaneKey,
        partial: &RecordBatch,
        touched: &mut HashSet<Box<[u8]>>,
    ) -> Result<()> {
        let groups = super::partial::decode(query, partial)?;
        let held = self.groups_per_pane.entry(pane.0).or_default();
        let pane = self.panes.entry(pane).or_default();
        for (key, states) in groups {
            touched.insert(key.clone());
            if pane
                .groups
                .insert(key, GroupState::Frozen(states))
                .is_none()
            {
                *held += 1;
            }
        }
        Ok(())
    }

    /// Merges, per group, the panes starting in `[from, to)` of the partitions `include`
    /// accepts.
    fn merge(
        &mut self,
        query: &CompiledQuery,
        (from, to): (Millis, Millis),
        include: impl Fn(i32) -> bool,
        only: Option<&HashSet<Box<[u8]>>>,
    ) -> Result<BTreeMap<Box<[u8]>, Accumulators>> {
        let mut merged: BTreeMap<Box<[u8]>, Accumulators> = BTreeMap::new();
        let range = (from, i32::MIN)..(to, i32::MIN);
        for (_, pane) in self
            .panes
            .range_mut(range)
            .filter(|((_, partition), _)| include(*partition))
        {
            for (key, group) in pane.groups.iter_mut() {
                if only.is_some_and(|only| !only.contains(key)) {
                    continue;
                }
                if !merged.contains_key(key) {
                    merged.insert(key.clone(), new_accumulators(query)?);
                }
                let target = merged.get_mut(key).expect("inserted above");
                for (state, target) in group.states()?.iter().zip(target.iter_mut()) {
                    target.merge_batch(state)?;
                }
            }
        }
        Ok(merged)
    }

    /// The query's result rows of `window` from its merged groups.
    fn result_rows(
        &self,
        query: &CompiledQuery,
        window: WindowBounds,
        mut merged: BTreeMap<Box<[u8]>, Accumulators>,
    ) -> Result<RecordBatch> {
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
        self.remove_where(|pane, owner| owner == partition && pane < start);
    }

    /// Drops the panes of every partition that start before `start`.
    pub fn evict_all_before(&mut self, start: Millis) {
        self.remove_where(|pane, _| pane < start);
    }

    /// Drops every pane of `partition`.
    pub fn remove_partition(&mut self, partition: i32) {
        self.remove_where(|_, owner| owner == partition);
    }

    fn remove_where(&mut self, remove: impl Fn(Millis, i32) -> bool) {
        let counts = &mut self.groups_per_pane;
        self.panes.retain(|&(pane, owner), content| {
            if !remove(pane, owner) {
                return true;
            }
            if let Some(held) = counts.get_mut(&pane) {
                *held = held.saturating_sub(content.groups.len());
                if *held == 0 {
                    counts.remove(&pane);
                }
            }
            false
        });
    }

    /// Partitions with a pane in `window`.
    pub fn partitions_in(&self, window: WindowBounds) -> std::collections::BTreeSet<i32> {
        self.panes
            .range((window.start, i32::MIN)..(window.end, i32::MIN))
            .map(|((_, partition), _)| *partition)
            .collect()
    }

    /// Partitions with open panes.
    pub fn partitions(&self) -> std::collections::BTreeSet<i32> {
        self.panes.keys().map(|k| k.1).collect()
    }
}

/// One aggregate's arguments and FILTER mask, evaluated once per batch.
type AggregateInput = (Vec<ArrayRef>, Option<ArrayRef>);

fn aggregate_inputs(query: &CompiledQuery, batch: &RecordBatch) -> Result<Vec<AggregateInput>> {
    let rows = batch.num_rows();
    query
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
        .collect()
}

/// Feeds one group's rows to its accumulators: `indices` selects them from the batch
/// (`None`: the batch is this group's alone).
fn update_group(
    accumulators: &mut [Box<dyn Accumulator>],
    inputs: &[AggregateInput],
    indices: Option<&UInt32Array>,
) -> Result<()> {
    let pick = |array: &ArrayRef| match indices {
        None => Ok(Arc::clone(array)),
        Some(indices) => take(array.as_ref(), indices, None),
    };
    for ((args, mask), accumulator) in inputs.iter().zip(accumulators.iter_mut()) {
        let mut args: Vec<ArrayRef> = args
            .iter()
            .map(pick)
            .collect::<std::result::Result<_, _>>()?;
        if let Some(mask) = mask {
            let mask = pick(mask)?;
            let mask: &BooleanArray = mask.as_boolean();
            args = args
                .iter()
                .map(|a| filter(a.as_ref(), mask))
                .collect::<std::result::Result<_, _>>()?;
        }
        accumulator.update_batch(&args)?;
    }
    Ok(())
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
    let schema = Arc::new(arrow::datatypes::Schema::new(
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
                    .and_then(|a| Ok(arrow::compute::cast(&a, field.data_type())?)),
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

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::event::OutcomeEvent;
    use crate::processor::sql::QueryDefinition;
    use crate::processor::sql::table::to_record_batch;

    const MINUTE: Millis = 60_000;

    #[tokio::test]
    async fn a_frozen_pane_reopens_for_a_late_update_and_keeps_what_it_had() {
        let query = QueryDefinition::compile(
            "q",
            "inline",
            "SELECT COUNT(*) AS n, MAX(latency_ms) AS slowest FROM agent_outcomes \
             WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 1 MINUTE)",
        )
        .await
        .unwrap();
        let compiled = &query.compiled;
        let rows = |latencies: &[f64]| {
            let events: Vec<OutcomeEvent> = latencies
                .iter()
                .map(|&ms| {
                    OutcomeEvent::builder("a", "act")
                        .latency_ms(ms)
                        .build()
                        .unwrap()
                })
                .collect();
            compiled
                .apply_row_steps(
                    to_record_batch(
                        events
                            .iter()
                            .map(OutcomeEvent::view)
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                    .unwrap(),
                )
                .unwrap()
                .0
        };
        let count_and_max = |batch: &RecordBatch| {
            (
                batch.column(0).as_primitive::<Int64Type>().value(0),
                batch
                    .column(1)
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .value(0),
            )
        };
        let spec = query.spec();
        let mut store = PaneStore::new(compiled, spec, 10).unwrap();
        store
            .update(compiled, (0, 0), &rows(&[1.0, 2.0, 3.0]), None)
            .unwrap();
        // The first window holding pane 0 closes: the pane is frozen.
        let first = store
            .evaluate(compiled, spec.window_at(-MINUTE), |_| true, None)
            .unwrap();
        assert_eq!(count_and_max(&first), (3, 3.0));
        // A replayed event reaches the pane afterwards; the next window sees all four.
        store.update(compiled, (0, 0), &rows(&[9.0]), None).unwrap();
        let second = store
            .evaluate(compiled, spec.window_at(0), |_| true, None)
            .unwrap();
        assert_eq!(count_and_max(&second), (4, 9.0));
        // Evaluating again from the frozen state gives the same row.
        let again = store
            .evaluate(compiled, spec.window_at(0), |_| true, None)
            .unwrap();
        assert_eq!(count_and_max(&again), (4, 9.0));
    }
}
