//! [`WindowEngine`]: decoded events in, closed windows out — every query's windows, the
//! watermark, late-event detection and the offsets that are safe to commit. No I/O here;
//! the loop hands what closes to the sinks and the alerts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use datafusion_common::Result;

use super::offsets::OffsetTracker;
use super::watermark::WatermarkTracker;
use super::windowed_query::{CloseBounds, HandedOver, WindowResult, WindowedQuery};
use crate::event::{OutcomeEvent, OutcomeEventView};
use crate::processor::sql::QueryDefinition;
use crate::processor::sql::table::{self, ColumnSet};
use crate::window::Millis;

/// How far a query's windows are closed, for judging the ones without rows.
#[derive(Debug, Clone, Copy)]
pub struct QuietWindow<'a> {
    /// The query.
    pub query: &'a str,
    /// Its window size, ms.
    pub size: Millis,
    /// Windows ending at or before this are closed.
    pub closed_through: Millis,
}

/// Event-time settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// The watermark trails the slowest partition by this.
    pub out_of_orderness: Duration,
    /// Default grace after a window's end.
    pub grace: Duration,
    /// Quiet time after which a partition stops holding the watermark.
    pub idle_after: Duration,
    /// Most groups a pane (a window, for a tumbling one) holds per query.
    pub max_groups_per_window: usize,
    /// How long after its close (by event time) an emitted window still takes events: each
    /// emits the window's updated rows again. Past it, events are late.
    pub allowed_lateness: Duration,
}

/// Why an event was left out of some queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// One or more of its windows were emitted and are past the allowed lateness.
    Late,
    /// It would have opened a group past `PROCESSOR_MAX_GROUPS_PER_WINDOW`.
    TooManyGroups,
}

/// An event left out of one or more queries; it still counts in the others.
#[derive(Debug, Clone)]
pub struct RejectedEvent {
    /// Index in the slice given to [`WindowEngine::ingest`].
    pub index: usize,
    /// Why (late wins when both apply).
    pub rejection: Rejection,
    /// Queries that left it out.
    pub queries: Vec<String>,
}

/// One closed window of one query.
pub struct ClosedWindow {
    /// The query.
    pub query: Arc<QueryDefinition>,
    /// Its rows for the window (`result.update`: rows emitted before, with new values).
    pub result: WindowResult,
}

/// All window queries of one processor instance.
pub struct WindowEngine {
    queries: Vec<(WindowedQuery, Millis)>,
    watermark: WatermarkTracker,
    offsets: OffsetTracker,
    /// Per partition: offsets below this were read before a restart.
    replay_until: foldhash::HashMap<i32, i64>,
    /// The table columns any query reads.
    columns: ColumnSet,
    /// [`EngineSettings::allowed_lateness`], ms.
    allowed_lateness: Millis,
}

/// Progress stored with a partition's committed offset (as JSON commit metadata), so a
/// restarted or newly assigned instance neither loses nor double-counts a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionCheckpoint {
    /// Next offset after everything read when the commit was made.
    #[serde(rename = "r")]
    pub read_through: i64,
    /// Per query: windows ending at or before this had been emitted.
    #[serde(rename = "c")]
    pub closed: HashMap<String, Millis>,
    /// Per query: windows ending at or before this were final (absent: as `closed`, which
    /// is what a checkpoint written before allowed lateness meant).
    #[serde(rename = "f", default)]
    pub finalized: HashMap<String, Millis>,
}

impl WindowEngine {
    /// An engine running `queries`.
    pub fn new(queries: &[Arc<QueryDefinition>], settings: EngineSettings) -> Result<Self> {
        let windowed = queries
            .iter()
            .map(|definition| {
                let query =
                    WindowedQuery::new(Arc::clone(definition), settings.max_groups_per_window)?;
                let grace = query.grace().unwrap_or(settings.grace).as_millis() as Millis;
                Ok((query, grace))
            })
            .collect::<Result<_>>()?;
        let mut columns = ColumnSet::of([]);
        for query in queries {
            columns.extend(&query.table_columns);
        }
        Ok(Self {
            queries: windowed,
            columns,
            watermark: WatermarkTracker::new(
                settings.out_of_orderness,
                settings.idle_after,
                settings.allowed_lateness,
            ),
            offsets: OffsetTracker::default(),
            replay_until: foldhash::HashMap::default(),
            allowed_lateness: settings.allowed_lateness.as_millis() as Millis,
        })
    }

    /// Makes every query across partitions emit per-partition partial aggregates (for the
    /// merge stage) instead of result rows.
    pub fn with_partials(mut self) -> Self {
        for (query, _) in &mut self.queries {
            query.emit_partials();
        }
        self
    }

    /// Per query that emits partials: its name and, per partition held, how far its windows
    /// have been handed over (emitted, final).
    pub fn handed_over(&self) -> Vec<(&str, &HandedOver)> {
        self.queries
            .iter()
            .filter(|(query, _)| query.emits_partials())
            .map(|(query, _)| (query.definition().name.as_str(), query.handed_over()))
            .collect()
    }

    /// The partitions held.
    pub fn partitions(&self) -> Vec<i32> {
        self.watermark.partitions()
    }

    /// [`Self::ingest`] for owned events.
    pub fn ingest_events(
        &mut self,
        partition: i32,
        events: &[(i64, OutcomeEvent)],
        now: Instant,
    ) -> Result<Vec<RejectedEvent>> {
        let views: Vec<_> = events
            .iter()
            .map(|(offset, event)| (*offset, event.view()))
            .collect();
        self.ingest(partition, &views, now)
    }

    /// Adds consumed events of `partition` (`(offset, event)`, in offset order); returns those
    /// left out of at least one query (late, or past the group limit).
    ///
    /// An event for an emitted window within the allowed lateness updates it (its rows are
    /// emitted again at the next [`Self::advance`]). After [`Self::restore`], events below the
    /// restored read position are replays: they rebuild the state of windows not yet final
    /// without emitting anything again, and are never late.
    pub fn ingest(
        &mut self,
        partition: i32,
        events: &[(i64, OutcomeEventView<'_>)],
        now: Instant,
    ) -> Result<Vec<RejectedEvent>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let times: Vec<Millis> = events
            .iter()
            .map(|(_, e)| e.timestamp.timestamp_millis())
            .collect();
        let replay_until = self
            .replay_until
            .get(&partition)
            .copied()
            .unwrap_or(i64::MIN);
        let batch = table::to_record_batch_of(events.iter().map(|(_, e)| e), &self.columns)?;
        let mut rejected: HashMap<usize, (Rejection, Vec<String>)> = HashMap::new();
        let mut reject = |index: usize, rejection: Rejection, query: &str| {
            let entry = rejected.entry(index).or_insert((rejection, Vec::new()));
            if rejection == Rejection::Late {
                entry.0 = Rejection::Late;
            }
            entry.1.push(query.to_owned());
        };
        for (query, _) in &mut self.queries {
            let mut live = Vec::with_capacity(events.len());
            let mut replayed = Vec::with_capacity(events.len());
            for (index, (&(offset, _), &time)) in events.iter().zip(&times).enumerate() {
                let is_replay = offset < replay_until;
                let late = !is_replay && query.is_late(partition, time);
                if late {
                    reject(index, Rejection::Late, &query.definition().name);
                }
                live.push(!is_replay && !late);
                replayed.push(is_replay && !query.is_fully_final(partition, time));
            }
            for (selected, is_live) in [(replayed, false), (live, true)] {
                for index in add_selected(query, partition, &batch, selected, is_live)? {
                    reject(
                        index as usize,
                        Rejection::TooManyGroups,
                        &query.definition().name,
                    );
                }
            }
        }
        for (&(offset, _), &time) in events.iter().zip(&times) {
            self.watermark.observe(partition, time, now);
            self.offsets.record(
                partition,
                offset,
                release_at(&self.queries, self.allowed_lateness, time),
            );
        }
        let mut rejected: Vec<RejectedEvent> = rejected
            .into_iter()
            .map(|(index, (rejection, queries))| RejectedEvent {
                index,
                rejection,
                queries,
            })
            .collect();
        rejected.sort_by_key(|l| l.index);
        Ok(rejected)
    }

    /// Restores a partition's progress from its committed [`PartitionCheckpoint`].
    pub fn restore(&mut self, partition: i32, checkpoint: &PartitionCheckpoint) {
        self.replay_until.insert(partition, checkpoint.read_through);
        for (query, _) in &mut self.queries {
            let name = &query.definition().name;
            if let Some(&closed) = checkpoint.closed.get(name) {
                let finalized = checkpoint.finalized.get(name).copied().unwrap_or(closed);
                query.restore(partition, closed, finalized);
            }
        }
    }

    /// What to store with `partition`'s committed offset.
    pub fn checkpoint(&self, partition: i32, read_through: i64) -> PartitionCheckpoint {
        PartitionCheckpoint {
            read_through: read_through.max(
                self.replay_until
                    .get(&partition)
                    .copied()
                    .unwrap_or(i64::MIN),
            ),
            closed: self
                .queries
                .iter()
                .map(|(q, _)| (q.definition().name.clone(), q.closed_for(partition)))
                .collect(),
            finalized: self
                .queries
                .iter()
                .map(|(q, _)| (q.definition().name.clone(), q.final_for(partition)))
                .collect(),
        }
    }

    /// Notes a message handled at once (e.g. dead-lettered): it never holds a commit back.
    pub fn record_handled(&mut self, partition: i32, offset: i64) {
        self.offsets.record(partition, offset, Millis::MIN);
    }

    /// Notes the partitions that still have messages to read (never idle).
    pub fn set_lagging(
        &mut self,
        lagging: std::collections::HashSet<i32>,
        reported: std::collections::HashSet<i32>,
    ) {
        self.watermark.set_lagging(lagging, reported);
    }

    /// Notes whether the source reaches a broker (while it does not, no partition is idle).
    pub fn set_connected(&mut self, connected: bool) {
        self.watermark.set_connected(connected);
    }

    /// Moves the watermark; emits the updates of emitted windows that took events and every
    /// window it has passed; drops the state of windows past the allowed lateness.
    pub fn advance(&mut self, now: Instant, wall_now_ms: Millis) -> Result<Vec<ClosedWindow>> {
        let (queries, lateness) = (&self.queries, self.allowed_lateness);
        self.watermark
            .advance(now, wall_now_ms, |t| release_at(queries, lateness, t));
        let tracker = &self.watermark;
        let mut closed = Vec::new();
        for (query, grace) in &mut self.queries {
            let bounds = |emit: Millis, early: Millis, finalize: Millis| CloseBounds {
                emit: emit.saturating_sub(*grace),
                early: early.saturating_sub(*grace),
                finalize: finalize.saturating_sub(*grace).saturating_sub(lateness),
            };
            let shared = bounds(
                tracker.watermark(),
                tracker.early_watermark(),
                tracker.final_watermark(),
            );
            let own = |p: i32| {
                bounds(
                    tracker.partition_bound(p),
                    tracker.partition_early_bound(p),
                    tracker.partition_final_bound(p),
                )
            };
            for result in query.close_through(shared, own)? {
                closed.push(ClosedWindow {
                    query: Arc::clone(query.definition()),
                    result,
                });
            }
        }
        Ok(closed)
    }

    /// Offsets safe to commit now (the next offset to read, per partition).
    pub fn commit_positions(&mut self) -> HashMap<i32, i64> {
        let shared = self.queries.iter().any(|(q, _)| !q.is_partition_aligned());
        let tracker = &self.watermark;
        // A partition's events are released once their windows are final: by its own final
        // bound, and by the shared one too while a query closes on that.
        self.offsets.positions(|p| {
            let own = tracker.partition_final_bound(p);
            if shared {
                own.min(tracker.final_watermark())
            } else {
                own
            }
        })
    }

    /// The shared watermark (ms); it follows the wall clock while every partition is idle.
    pub fn watermark(&self) -> Millis {
        self.watermark.early_watermark()
    }

    /// Newest event time seen (ms).
    pub fn max_event_time(&self) -> Option<Millis> {
        self.watermark.max_event_time()
    }

    /// Open panes and (pane, group) accumulator sets over all queries.
    pub fn open_state(&self) -> (usize, usize) {
        self.queries
            .iter()
            .map(|(q, _)| q.open_state())
            .fold((0, 0), |(p, g), (qp, qg)| (p + qp, g + qg))
    }

    /// Notes partitions assigned at `now` (they hold the watermark until they deliver).
    pub fn assign(&mut self, partitions: &[i32], now: Instant) {
        for &partition in partitions {
            self.watermark.assign(partition, now);
            for (query, _) in &mut self.queries {
                query.hold(partition);
            }
        }
    }

    /// Number of partitions held (assigned and not revoked).
    pub fn partition_count(&self) -> usize {
        self.watermark.partition_count()
    }

    /// Forgets a revoked partition: its state, progress and pending offsets.
    pub fn revoke(&mut self, partition: i32) {
        self.watermark.remove(partition);
        self.offsets.remove(partition);
        self.replay_until.remove(&partition);
        for (query, _) in &mut self.queries {
            query.revoke(partition);
        }
    }

    /// Whether `offset` of `partition` was read before a restart (a replay).
    pub fn is_replay(&self, partition: i32, offset: i64) -> bool {
        self.replay_until
            .get(&partition)
            .is_some_and(|&until| offset < until)
    }

    /// Per query giving result rows (not partials), how far its windows count as closed for
    /// alerts, rows or not: a window with no rows at all is clear.
    pub fn quiet_windows(&self) -> Vec<QuietWindow<'_>> {
        // Early: a quiet system's windows close by the clock, and so do its alerts.
        let watermark = self.watermark.early_watermark();
        self.queries
            .iter()
            .filter(|(query, _)| !query.emits_partials())
            .map(|(query, grace)| QuietWindow {
                query: query.definition().name.as_str(),
                size: query.definition().spec().size,
                closed_through: watermark.saturating_sub(*grace),
            })
            .collect()
    }

    /// The next offset to read of each partition seen.
    pub fn read_positions(&self) -> HashMap<i32, i64> {
        self.offsets.read_positions()
    }
}

/// The final bound (before grace and lateness) at which every window of `queries` holding an
/// event at `time` is final.
fn release_at(queries: &[(WindowedQuery, Millis)], lateness: Millis, time: Millis) -> Millis {
    queries
        .iter()
        .map(|(query, grace)| query.definition().spec().last_window(time).end + grace)
        .max()
        .map_or(Millis::MIN, |end| end.saturating_add(lateness))
}

/// Adds the rows of `batch` that `selected` marks to `query`; returns the refused ones
/// (indices into `batch`).
fn add_selected(
    query: &mut WindowedQuery,
    partition: i32,
    batch: &RecordBatch,
    selected: Vec<bool>,
    live: bool,
) -> Result<Vec<u32>> {
    if !selected.iter().any(|&s| s) {
        return Ok(Vec::new());
    }
    if selected.iter().all(|&s| s) {
        return query.add(partition, batch, live);
    }
    let indices: Vec<u32> = (0..selected.len() as u32)
        .filter(|&i| selected[i as usize])
        .collect();
    let rows = filter_record_batch(batch, &BooleanArray::from(selected))?;
    Ok(query
        .add(partition, &rows, live)?
        .into_iter()
        .map(|row| indices[row as usize])
        .collect())
}
