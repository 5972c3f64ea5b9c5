//! [`MergeQuery`]: one query's windows as one repartition partition merges them: the
//! partials of every source partition, and how far each source has handed its windows over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::Result;
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
}

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
        })
    }

    /// The query.
    pub fn definition(&self) -> &Arc<QueryDefinition> {
        &self.definition
    }

    /// Takes `source`'s partial of the window starting at `window`, replacing what that
    /// source sent before for its groups (a replay never counts twice). Returns `false` for
    /// a window already final here (its partial is dropped).
    pub fn put(&mut self, window: Millis, source: i32, partial: &RecordBatch) -> Result<bool> {
        let end = self.definition.spec().window_at(window).end;
        if end <= self.final_bound() {
            return Ok(false);
        }
        let mut touched = HashSet::default();
        let compiled = &self.definition.compiled;
        self.store
            .put_partial(compiled, (window, source), partial, &mut touched)?;
        if self.emitted.contains(&window) {
            self.touched.entry(window).or_default().extend(touched);
        } else {
            self.pending.insert(window);
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
    pub fn close(&mut self) -> Result<Vec<WindowResult>> {
        let spec = self.definition.spec();
        let all_groups = self.definition.compiled.limits_groups();
        let mut results = Vec::new();
        for (start, keys) in std::mem::take(&mut self.touched) {
            let only = (!all_groups).then_some(&keys);
            let rows = self.evaluate(start, only)?;
            results.extend(rows.map(|rows| self.result(start, rows, true)));
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
            results.extend(rows.map(|rows| self.result(start, rows, false)));
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
    }
}
