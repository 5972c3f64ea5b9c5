//! [`MergeQuery`]: one query's windows as one repartition partition merges them: the
//! partials of every source partition, and how far each source has handed its windows over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion_common::Result;
use foldhash::HashSet;

use crate::processor::sql::{PaneStore, QueryDefinition};
use crate::processor::windows::WindowResult;
use crate::window::Millis;

/// The merge state of one query in one repartition partition.
pub struct MergeQuery {
    definition: Arc<QueryDefinition>,
    /// One pane per window start and source partition, holding that source's partials.
    store: PaneStore,
    /// Source partitions of the outcome topic: a window is complete once all have handed it
    /// over.
    sources: i32,
    /// Per source partition: handed over (emitted through, final through).
    reported: HashMap<i32, (Millis, Millis)>,
    /// Starts of windows holding partials, not emitted yet.
    pending: BTreeSet<Millis>,
    /// Starts of emitted windows that are not final.
    emitted: BTreeSet<Millis>,
    /// Emitted windows that took partials since, with the groups they touched.
    touched: BTreeMap<Millis, HashSet<Box<[u8]>>>,
    /// Per pending window: the latest time a source handed a partial of it over (wall
    /// clock, ms), for the merge latency.
    handed_at: BTreeMap<Millis, Millis>,
    /// Windows ending at or before this were emitted (and judged) by an earlier owner of the
    /// partition, as its checkpoint says: a replay rebuilds them without emitting them again.
    restored_through: Millis,
}

/// A merged window, and when the last partial it merges was handed over (wall clock, ms).
pub type Merged = (WindowResult, Option<Millis>);

impl MergeQuery {
    /// Nothing merged yet, over `sources` source partitions.
    pub fn new(definition: Arc<QueryDefinition>, sources: i32, max_groups: usize) -> Result<Self> {
        let store = PaneStore::new(&definition.compiled, definition.spec(), max_groups)?;
        Ok(Self {
            definition,
            store,
            sources,
            reported: HashMap::new(),
            pending: BTreeSet::new(),
            emitted: BTreeSet::new(),
            touched: BTreeMap::new(),
            handed_at: BTreeMap::new(),
            restored_through: Millis::MIN,
        })
    }

    /// Takes up an earlier owner's checkpoint: windows ending at or before `emitted_through`
    /// were emitted (and their alerts judged) already.
    pub fn restore(&mut self, emitted_through: Millis) {
        self.restored_through = self.restored_through.max(emitted_through);
    }

    /// What this partition's checkpoint says of the query: windows ending at or before this
    /// have been emitted (here, or by an earlier owner).
    pub fn emitted_through(&self) -> Millis {
        self.restored_through.max(self.emitted_bound())
    }

    /// The query.
    pub fn definition(&self) -> &Arc<QueryDefinition> {
        &self.definition
    }

    /// Takes `source`'s partial of the window starting at `window`, replacing what that
    /// source sent before for its groups (a replay never counts twice). A `replayed` partial
    /// (one an earlier owner had read) of a window that owner emitted only rebuilds it.
    /// Returns `false` for a window already final here (its partial is dropped).
    pub fn put(
        &mut self,
        (window, source): (Millis, i32),
        partial: &RecordBatch,
        handed_at: Option<Millis>,
        replayed: bool,
    ) -> Result<bool> {
        let end = self.definition.spec().window_at(window).end;
        if end <= self.final_bound() {
            return Ok(false);
        }
        let mut touched = HashSet::default();
        let compiled = &self.definition.compiled;
        self.store
            .put_partial(compiled, (window, source), partial, &mut touched)?;
        if end <= self.restored_through {
            self.emitted.insert(window);
        }
        if self.emitted.contains(&window) {
            if !replayed {
                self.touched.entry(window).or_default().extend(touched);
            }
        } else {
            self.pending.insert(window);
            if let Some(at) = handed_at {
                let latest = self.handed_at.entry(window).or_insert(at);
                *latest = (*latest).max(at);
            }
        }
        Ok(true)
    }

    /// Notes how far `source` has handed its windows over; bounds only move forward.
    pub fn report(&mut self, source: i32, (emitted, finalized): (Millis, Millis)) {
        let entry = self
            .reported
            .entry(source)
            .or_insert((Millis::MIN, Millis::MIN));
        entry.0 = entry.0.max(emitted);
        entry.1 = entry.1.max(finalized);
    }

    /// Windows ending at or before this are handed over by every source partition.
    pub fn emitted_bound(&self) -> Millis {
        self.bound(|(emitted, _)| emitted)
    }

    /// Windows ending at or before this are final for every source partition.
    pub fn final_bound(&self) -> Millis {
        self.bound(|(_, finalized)| finalized)
    }

    fn bound(&self, pick: impl Fn((Millis, Millis)) -> Millis) -> Millis {
        (0..self.sources)
            .map(|source| {
                self.reported
                    .get(&source)
                    .copied()
                    .map_or(Millis::MIN, &pick)
            })
            .min()
            .unwrap_or(Millis::MIN)
    }

    /// Open (window, source) panes and their groups.
    pub fn open_state(&self) -> (usize, usize) {
        (self.store.pane_count(), self.store.group_count())
    }

    /// Emits the updated groups of emitted windows, then every window all sources have
    /// handed over, then forgets the windows that are final.
    pub fn close(&mut self) -> Result<Vec<Merged>> {
        let spec = self.definition.spec();
        let all_groups = self.definition.compiled.limits_groups();
        let mut results = Vec::new();
        for (start, keys) in std::mem::take(&mut self.touched) {
            let only = (!all_groups).then_some(&keys);
            let rows = self.evaluate(start, only)?;
            results.extend(rows.map(|rows| (self.result(start, rows, true), None)));
        }
        let through = self.emitted_bound();
        let ready: Vec<Millis> = self
            .pending
            .iter()
            .copied()
            .filter(|&start| spec.window_at(start).end <= through)
            .collect();
        for start in ready {
            self.pending.remove(&start);
            self.emitted.insert(start);
            let rows = self.evaluate(start, None)?;
            let handed_at = self.handed_at.remove(&start);
            results.extend(rows.map(|rows| (self.result(start, rows, false), handed_at)));
        }
        self.forget_final();
        Ok(results)
    }

    fn evaluate(
        &mut self,
        start: Millis,
        only: Option<&HashSet<Box<[u8]>>>,
    ) -> Result<Option<RecordBatch>> {
        let window = self.definition.spec().window_at(start);
        let compiled = &self.definition.compiled;
        let rows = self.store.evaluate_pane(compiled, start, window, only)?;
        Ok((rows.num_rows() > 0).then_some(rows))
    }

    fn result(&self, start: Millis, rows: RecordBatch, update: bool) -> WindowResult {
        WindowResult {
            window: self.definition.spec().window_at(start),
            rows,
            update,
            partial: false,
            partition: None,
        }
    }

    fn forget_final(&mut self) {
        let finalized = self.final_bound();
        if finalized == Millis::MIN {
            return;
        }
        let size = self.definition.spec().size;
        // Windows starting at or before `finalized - size` end by `finalized`.
        let open_from = finalized.saturating_sub(size).saturating_add(1);
        self.store.evict_all_before(open_from);
        self.emitted.retain(|&start| start >= open_from);
        self.pending.retain(|&start| start >= open_from);
        self.handed_at.retain(|&start, _| start >= open_from);
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int64Type};

    use super::*;
    use crate::event::OutcomeEvent;
    use crate::processor::sql::partial::{from_ipc, to_ipc};
    use crate::processor::sql::table::to_record_batch;

    const SQL: &str = "SELECT COUNT(*) AS n, MAX(latency_ms) AS slowest, \
        approx_percentile_cont(latency_ms, 0.5) AS p50 FROM agent_outcomes \
        WINDOW TUMBLING (SIZE 1 MINUTE)";

    /// One source's partial of window 0 holding events with `latencies`, through the wire.
    fn partial(query: &QueryDefinition, source: i32, latencies: &[f64]) -> RecordBatch {
        let compiled = &query.compiled;
        let events: Vec<OutcomeEvent> = latencies
            .iter()
            .map(|&ms| {
                OutcomeEvent::builder("a", "act")
                    .latency_ms(ms)
                    .build()
                    .unwrap()
            })
            .collect();
        let views: Vec<_> = events.iter().map(OutcomeEvent::view).collect();
        let rows = compiled
            .apply_row_steps(to_record_batch(views.iter()).unwrap())
            .unwrap()
            .0;
        let mut store = PaneStore::new(compiled, query.spec(), 10).unwrap();
        store.update(compiled, (0, source), &rows, None).unwrap();
        let window = query.spec().window_at(0);
        let states = store
            .partial_states(compiled, window, |_| true, None)
            .unwrap();
        from_ipc(&to_ipc(&states).unwrap()).unwrap()
    }

    fn count_max_p50(rows: &RecordBatch) -> (i64, f64, f64) {
        (
            rows.column(0).as_primitive::<Int64Type>().value(0),
            rows.column(1).as_primitive::<Float64Type>().value(0),
            rows.column(2).as_primitive::<Float64Type>().value(0),
        )
    }

    #[tokio::test]
    async fn a_window_waits_for_every_source_and_a_replayed_partial_replaces() {
        let query = Arc::new(QueryDefinition::compile("q", "inline", SQL).await.unwrap());
        let mut merge = MergeQuery::new(Arc::clone(&query), 2, 10).unwrap();
        assert!(
            merge
                .put((0, 0), &partial(&query, 0, &[1.0, 2.0]), None, false)
                .unwrap()
        );
        // Sent again after a crash: replaces, never adds.
        assert!(
            merge
                .put((0, 0), &partial(&query, 0, &[1.0, 2.0]), None, false)
                .unwrap()
        );
        merge.report(0, (60_000, 0));
        assert!(
            merge.close().unwrap().is_empty(),
            "source 1 has not handed over"
        );
        assert!(
            merge
                .put((0, 1), &partial(&query, 1, &[3.0]), Some(5), false)
                .unwrap()
        );
        merge.report(1, (60_000, 60_000));
        let merged = merge.close().unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].1, Some(5));
        assert_eq!(count_max_p50(&merged[0].0.rows), (3, 3.0, 2.0));
        // Final at both sources: forgotten; a partial for it now is late.
        merge.report(0, (60_000, 60_000));
        assert!(merge.close().unwrap().is_empty());
        assert_eq!(merge.open_state(), (0, 0));
        assert!(
            !merge
                .put((0, 1), &partial(&query, 1, &[4.0]), None, false)
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_new_owner_rebuilds_the_windows_its_predecessor_emitted_without_emitting_them() {
        let query = Arc::new(QueryDefinition::compile("q", "inline", SQL).await.unwrap());
        let mut merge = MergeQuery::new(Arc::clone(&query), 1, 10).unwrap();
        merge.restore(60_000);
        let replayed = partial(&query, 0, &[1.0, 2.0]);
        assert!(merge.put((0, 0), &replayed, None, true).unwrap());
        merge.report(0, (60_000, 0));
        assert!(
            merge.close().unwrap().is_empty(),
            "emitted (and judged) by the predecessor"
        );
        assert_eq!(merge.emitted_through(), 60_000);
        // A partial the predecessor never read updates the window.
        let newer = partial(&query, 0, &[1.0, 2.0, 3.0]);
        assert!(merge.put((0, 0), &newer, None, false).unwrap());
        let merged = merge.close().unwrap();
        assert_eq!(merged.len(), 1);
        assert!(merged[0].0.update);
        assert_eq!(count_max_p50(&merged[0].0.rows).0, 3);
    }
}
