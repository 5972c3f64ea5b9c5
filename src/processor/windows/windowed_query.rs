//! [`WindowedQuery`]: one query's open windows — which are emitted, which final, which took
//! events since they were emitted — over the pane store that holds their state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;

use crate::processor::sql::{CompiledQuery, PaneStore, QueryDefinition, event_times};
use crate::window::{Millis, WindowBounds, WindowSpec};

/// Per partition: windows ending at or before `.0` emitted, at or before `.1` final.
pub type HandedOver = BTreeMap<i32, (Millis, Millis)>;

/// One query's open windows.
pub struct WindowedQuery {
    definition: Arc<QueryDefinition>,
    store: PaneStore,
    /// Per partition: windows ending at or before this have been emitted (those with data).
    closed: HashMap<i32, Millis>,
    /// Per partition: windows ending at or before this are final: their state is gone and
    /// an event for them is late.
    finalized: HashMap<i32, Millis>,
    /// Where a partition seen for the first time starts, as (closed, final): for a query
    /// across partitions the last shared bounds (its windows are out already); for a
    /// partition-aligned one nothing.
    bound: (Millis, Millis),
    /// Emitted windows that took events since, by start: emitted again at the next close.
    updates: BTreeMap<Millis, WindowUpdate>,
    /// Windows emitted early, while idle, that the emit bound has not reached yet.
    early: EarlyWindows,
    /// Emit partial aggregates per partition instead of result rows (a query across
    /// partitions whose windows another stage merges).
    partial: bool,
    /// For a query emitting partials, per partition: windows ending at or before `.0` have
    /// been emitted (their partials sent), those ending at or before `.1` are final.
    handed_over: HandedOver,
}

/// Windows emitted early, as (window start, partition). A query across partitions notes
/// [`ACROSS`]: its one row per window is out for every partition, so any partition's later
/// events for it update that row.
#[derive(Default)]
struct EarlyWindows(BTreeSet<(Millis, i32)>);

/// The partition [`EarlyWindows`] notes for a query across partitions.
const ACROSS: i32 = i32::MIN;

impl EarlyWindows {
    fn contains(&self, start: Millis, partition: i32) -> bool {
        self.0.contains(&(start, partition)) || self.0.contains(&(start, ACROSS))
    }
}

/// What an emitted window took since it was emitted.
#[derive(Default)]
struct WindowUpdate {
    partitions: BTreeSet<i32>,
    /// Encoded group keys: only these rows are emitted again.
    keys: foldhash::HashSet<Box<[u8]>>,
}

/// A closed window's result rows.
pub struct WindowResult {
    /// The window.
    pub window: WindowBounds,
    /// The query's rows for it.
    pub rows: RecordBatch,
    /// Whether these rows update rows emitted before (same keys, new values).
    pub update: bool,
    /// Whether the rows are one partition's partial aggregates (see
    /// [`crate::processor::sql::partial`]), not result rows.
    pub partial: bool,
    /// For a partition-aligned query, the partition whose groups these rows are (each
    /// partition's rows of a window come out apart, as each closes it); `None` for a query
    /// across partitions.
    pub partition: Option<i32>,
}

/// Where one partition of a query stands in a [`WindowedQuery::close_through`].
#[derive(Debug, Clone, Copy)]
struct Closing {
    /// Emitted through this before.
    closed: Millis,
    /// Emitted through this after.
    bound: Millis,
    /// Emitted early through this (idle).
    early: Millis,
    /// Final through this after.
    finalized: Millis,
}

/// The bounds a [`WindowedQuery::close_through`] moves a partition to: windows ending at or
/// before `emit` are complete and emitted, those up to `early` are emitted ahead (they take
/// later events as updates), those ending at or before `finalize` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseBounds {
    /// Emit complete windows through this.
    pub emit: Millis,
    /// Emit windows ahead through this (at least `emit`).
    pub early: Millis,
    /// Finalize through this.
    pub finalize: Millis,
}

impl WindowedQuery {
    /// Starts with nothing open; a pane holds at most `max_groups` groups.
    pub fn new(
        definition: Arc<QueryDefinition>,
        max_groups: usize,
    ) -> datafusion_common::Result<Self> {
        let store = PaneStore::new(&definition.compiled, definition.spec(), max_groups)?;
        Ok(Self {
            definition,
            store,
            closed: HashMap::new(),
            finalized: HashMap::new(),
            bound: (Millis::MIN, Millis::MIN),
            updates: BTreeMap::new(),
            early: EarlyWindows::default(),
            partial: false,
            handed_over: BTreeMap::new(),
        })
    }

    /// The query.
    pub fn definition(&self) -> &Arc<QueryDefinition> {
        &self.definition
    }

    /// Windows ending at or before this have been emitted for `partition`.
    pub fn closed_for(&self, partition: i32) -> Millis {
        self.closed.get(&partition).copied().unwrap_or(self.bound.0)
    }

    /// Windows ending at or before this are final for `partition`.
    pub fn final_for(&self, partition: i32) -> Millis {
        self.finalized
            .get(&partition)
            .copied()
            .unwrap_or(self.bound.1)
    }

    /// Restores, after a restart, how far `partition`'s windows had been emitted and made
    /// final.
    pub fn restore(&mut self, partition: i32, closed: Millis, finalized: Millis) {
        let closed = self.closed_for(partition).max(closed);
        self.closed.insert(partition, closed);
        let finalized = self.final_for(partition).max(finalized.min(closed));
        self.finalized.insert(partition, finalized);
    }

    /// Whether an event of `partition` at `time` falls in a window already final.
    pub fn is_late(&self, partition: i32, time: Millis) -> bool {
        self.definition.spec().first_window(time).end <= self.final_for(partition)
    }

    /// Whether every window holding an event of `partition` at `time` is final.
    pub fn is_fully_final(&self, partition: i32, time: Millis) -> bool {
        self.definition.spec().last_window(time).end <= self.final_for(partition)
    }

    /// Open panes and (pane, group) states.
    pub fn open_state(&self) -> (usize, usize) {
        (self.store.pane_count(), self.store.group_count())
    }

    /// Adds table rows of `partition`. Returns the rows (indices into `batch`) refused for
    /// opening a group past the pane's limit.
    ///
    /// `live`: the rows are new to the emitted results, so windows already emitted that take
    /// them are emitted again. Rows replayed after a restart that were in the results before
    /// it are not.
    pub fn add(
        &mut self,
        partition: i32,
        batch: &RecordBatch,
        live: bool,
    ) -> datafusion_common::Result<Vec<u32>> {
        let Some(times) = event_times(batch) else {
            return Err(datafusion_common::DataFusionError::Internal(
                "batch without a timestamp column".into(),
            ));
        };
        let spec = self.definition.spec();
        let first = spec.pane_start(times[0]);
        if times.iter().all(|&t| spec.pane_start(t) == first) {
            return self.add_to_pane((first, partition), batch.clone(), None, live);
        }
        let mut by_pane: BTreeMap<Millis, Vec<u32>> = Default::default();
        for (index, &time) in times.iter().enumerate() {
            by_pane
                .entry(spec.pane_start(time))
                .or_default()
                .push(index as u32);
        }
        let mut refused = Vec::new();
        for (pane, indices) in by_pane {
            let part = take_record_batch(batch, &UInt32Array::from(indices.clone()))?;
            refused.extend(self.add_to_pane((pane, partition), part, Some(&indices), live)?);
        }
        refused.sort_unstable();
        Ok(refused)
    }

    /// Adds the rows of one pane; `indices`: each row's index in the caller's batch, when
    /// `rows` is a selection of it. Returns the refused rows as such indices.
    fn add_to_pane(
        &mut self,
        pane: (Millis, i32),
        rows: RecordBatch,
        indices: Option<&[u32]>,
        live: bool,
    ) -> datafusion_common::Result<Vec<u32>> {
        let compiled = &self.definition.compiled;
        let (input, origin) = compiled.apply_row_steps(rows)?;
        let updated = if live {
            self.emitted_windows_of(pane)
        } else {
            Vec::new()
        };
        let mut touched = foldhash::HashSet::default();
        let wanted = (!updated.is_empty()).then_some(&mut touched);
        let refused = self.store.update(compiled, pane, &input, wanted)?;
        for start in updated {
            let update = self.updates.entry(start).or_default();
            update.partitions.insert(pane.1);
            update.keys.extend(touched.iter().cloned());
        }
        Ok(refused
            .into_iter()
            .map(|row| {
                let own = origin.value(row as usize);
                indices.map_or(own, |indices| indices[own as usize])
            })
            .collect())
    }

    /// Starts of the windows holding `pane` that were emitted and are not final.
    fn emitted_windows_of(&self, (pane, partition): (Millis, i32)) -> Vec<Millis> {
        let (closed, finalized) = (self.closed_for(partition), self.final_for(partition));
        let emitted = |window: &WindowBounds| {
            window.end <= closed || self.early.contains(window.start, partition)
        };
        self.definition
            .spec()
            .windows_of(pane)
            .filter(|window| window.end > finalized && emitted(window))
            .map(|window| window.start)
            .collect()
    }

    /// Whether each partition's windows close on that partition's own bound (the query
    /// groups by the topic's key) rather than on the shared watermark.
    pub fn is_partition_aligned(&self) -> bool {
        self.definition.compiled.partition_aligned
    }

    /// Makes a query across partitions emit each partition's partial aggregates for another
    /// stage to merge; a partition-aligned query is left as it is.
    pub fn emit_partials(&mut self) {
        self.partial = !self.is_partition_aligned();
    }

    /// Whether this query emits partial aggregates.
    pub fn emits_partials(&self) -> bool {
        self.partial
    }

    /// For a query emitting partials, per partition: windows ending at or before `.0` have
    /// been emitted (their partials sent), and those ending at or before `.1` are final.
    pub fn handed_over(&self) -> &HandedOver {
        &self.handed_over
    }

    /// Notes a partition assigned, so a query emitting partials reports it even before it
    /// holds data (the merge stage waits for every partition).
    pub fn hold(&mut self, partition: i32) {
        if self.partial {
            self.closed.entry(partition).or_insert(Millis::MIN);
        }
    }

    /// Whether each partition's rows of a window come out as a piece of their own.
    fn per_partition(&self) -> bool {
        self.is_partition_aligned() || self.partial
    }

    /// Emits, earliest first, the updated rows of emitted windows that took events, then
    /// every window ending at or before each partition's emit bound: `own(partition)` for a
    /// partition-aligned query, `shared` otherwise. Windows without events produce nothing; a
    /// window's rows merge the partitions closing it now. Then drops the state of windows
    /// that became final.
    pub fn close_through(
        &mut self,
        shared: CloseBounds,
        own: impl Fn(i32) -> CloseBounds,
    ) -> datafusion_common::Result<Vec<WindowResult>> {
        // Partials close on each partition's own bound: the merge stage takes the lowest.
        let aligned = self.per_partition();
        let bounds_for = |p: i32| if aligned { own(p) } else { shared };
        let partitions: BTreeMap<i32, Closing> = self
            .store
            .partitions()
            .into_iter()
            .chain(self.closed.keys().copied())
            .map(|p| {
                let closed = self.closed_for(p);
                let bounds = bounds_for(p);
                let finalized = self.final_for(p).max(bounds.finalize);
                // A window is emitted before it is final.
                let bound = closed.max(bounds.emit).max(finalized);
                let early = bound.max(bounds.early);
                let closing = Closing {
                    closed,
                    bound,
                    early,
                    finalized,
                };
                (p, closing)
            })
            .collect();
        let mut results = self.emit_updates()?;
        results.extend(self.emit_between(&partitions, |c| (c.closed, c.bound), false)?);
        results.extend(self.emit_between(&partitions, |c| (c.bound, c.early), true)?);
        for (&partition, closing) in &partitions {
            self.closed.insert(partition, closing.bound);
            if self.partial {
                let handed = (closing.early, closing.finalized);
                self.handed_over.insert(partition, handed);
            }
            if closing.finalized > self.final_for(partition) {
                self.finalized.insert(partition, closing.finalized);
                let spec = self.definition.spec();
                self.store
                    .evict_before(partition, open_from(spec, closing.finalized));
            }
        }
        if !aligned {
            self.bound.0 = self.bound.0.max(shared.emit);
            self.bound.1 = self.bound.1.max(shared.finalize);
        }
        let spec = self.definition.spec();
        let (closed, across) = (&self.closed, self.bound.0);
        self.early.0.retain(|&(start, p)| {
            let emitted_through = if p == ACROSS {
                Some(across)
            } else {
                closed.get(&p).copied()
            };
            emitted_through.is_some_and(|c| spec.window_at(start).end > c)
        });
        Ok(results)
    }

    /// The rows of emitted windows that took events since, for the groups that took them.
    fn emit_updates(&mut self) -> datafusion_common::Result<Vec<WindowResult>> {
        let spec = self.definition.spec();
        let aligned = self.per_partition();
        // A LIMIT picks among all groups: the whole window is emitted again.
        let all_groups = self.definition.compiled.limits_groups();
        let (per_partition, partial) = (self.per_partition(), self.partial);
        let mut results = Vec::new();
        for (start, update) in std::mem::take(&mut self.updates) {
            let window = spec.window_at(start);
            let (closed, early, bound) = (&self.closed, &self.early, self.bound.0);
            // Across partitions, a window's row merges every partition that emitted it.
            let include = |p: i32| {
                if aligned {
                    update.partitions.contains(&p)
                } else {
                    closed.get(&p).copied().unwrap_or(bound) >= window.end
                        || early.contains(start, p)
                }
            };
            let only = (!all_groups).then_some(&update.keys);
            let pieces: Vec<Option<i32>> = if per_partition {
                update.partitions.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            let compiled = &self.definition.compiled;
            let evaluated = evaluate_pieces(
                &mut self.store,
                (compiled, partial),
                window,
                &pieces,
                include,
                only,
            )?;
            results.extend(evaluated.into_iter().map(|(rows, partition)| WindowResult {
                window,
                rows,
                update: true,
                partial,
                partition,
            }));
        }
        Ok(results)
    }

    /// The windows ending in `range(partition)` (exclusive, inclusive) of some partition,
    /// for the partitions they end in and have not been emitted early for. `early`: they are
    /// emitted ahead of their emit bound (and noted, so they are not emitted twice).
    fn emit_between(
        &mut self,
        partitions: &BTreeMap<i32, Closing>,
        range: impl Fn(&Closing) -> (Millis, Millis),
        early: bool,
    ) -> datafusion_common::Result<Vec<WindowResult>> {
        let spec = self.definition.spec();
        let moving: Vec<(Millis, Millis)> = partitions
            .values()
            .map(&range)
            .filter(|(from, through)| through > from)
            .collect();
        let (Some(upper), Some(lower)) = (
            moving.iter().map(|r| r.1).max(),
            moving.iter().map(|r| r.0).min(),
        ) else {
            return Ok(Vec::new());
        };
        // Only windows holding a pane with data: a jump of years between two events costs
        // what a jump of one window does.
        let starts = self
            .store
            .window_starts(open_from(spec, lower), upper, |p| {
                partitions.get(&p).is_some_and(|c| {
                    let (from, through) = range(c);
                    through > from
                })
            });
        let mut results = Vec::new();
        for start in starts {
            let window = spec.window_at(start);
            let emitted_early = &self.early;
            let emits = |p: i32| {
                partitions.get(&p).is_some_and(|c| {
                    let (from, through) = range(c);
                    window.end > from && window.end <= through
                }) && !emitted_early.contains(start, p)
            };
            if !self.store.has_data_in(window, emits) {
                continue;
            }
            // A partition-aligned query's partitions hold disjoint groups: each partition's
            // rows come out as a piece of their own (alerts judge each piece on its own).
            let pieces: Vec<Option<i32>> = if self.per_partition() {
                let with_data = self.store.partitions_in(window).into_iter();
                with_data.filter(|&p| emits(p)).map(Some).collect()
            } else {
                vec![None]
            };
            let query = (&self.definition.compiled, self.partial);
            let evaluated = evaluate_pieces(&mut self.store, query, window, &pieces, emits, None)?;
            results.extend(evaluated.into_iter().map(|(rows, partition)| WindowResult {
                window,
                rows,
                update: false,
                partial: self.partial,
                partition,
            }));
            if early {
                // Across partitions the window's one row is out for every partition, so a
                // partition's later events for it are updates of that row.
                let noted = pieces.iter().map(|piece| (start, piece.unwrap_or(ACROSS)));
                self.early.0.extend(noted);
            }
        }
        Ok(results)
    }

    /// Drops a revoked partition's state.
    pub fn revoke(&mut self, partition: i32) {
        self.handed_over.remove(&partition);
        self.store.remove_partition(partition);
        self.closed.remove(&partition);
        self.finalized.remove(&partition);
        self.early.0.retain(|&(_, p)| p != partition);
        for update in self.updates.values_mut() {
            update.partitions.remove(&partition);
        }
    }

    /// The query's own grace period, if its window clause sets one.
    pub fn grace(&self) -> Option<Duration> {
        self.definition.window.grace
    }
}

/// Evaluates `window` once per piece: a partition's groups (`Some`), or every partition
/// `include` accepts (`None`); as partial aggregates when `partial`. Returns the pieces with
/// rows, each with its partition.
fn evaluate_pieces(
    store: &mut PaneStore,
    (compiled, partial): (&CompiledQuery, bool),
    window: WindowBounds,
    pieces: &[Option<i32>],
    include: impl Fn(i32) -> bool,
    only: Option<&foldhash::HashSet<Box<[u8]>>>,
) -> datafusion_common::Result<Vec<(RecordBatch, Option<i32>)>> {
    let mut evaluated = Vec::new();
    for &piece in pieces {
        let in_piece = |p: i32| include(p) && piece.is_none_or(|q| q == p);
        let rows = if partial {
            store.partial_states(compiled, window, in_piece, only)?
        } else {
            store.evaluate(compiled, window, in_piece, only)?
        };
        if rows.num_rows() > 0 {
            evaluated.push((rows, piece));
        }
    }
    Ok(evaluated)
}

/// The earliest window start whose window ends after `bound`.
fn open_from(spec: WindowSpec, bound: Millis) -> Millis {
    if bound == Millis::MIN {
        return Millis::MIN;
    }
    bound.saturating_sub(spec.size).div_euclid(spec.advance) * spec.advance + spec.advance
}
