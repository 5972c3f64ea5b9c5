//! [`WindowEngine`]: decoded events in, closed windows out — every query's windows, the
//! watermark, late-event detection and the offsets that are safe to commit. No I/O here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::error::Result;

use crate::event::OutcomeEvent;
use crate::processor::offsets::OffsetTracker;
use crate::processor::query::{QueryDefinition, WindowResult, WindowedQuery};
use crate::processor::table;
use crate::processor::watermark::WatermarkTracker;
use crate::processor::window::Millis;

/// Event-time settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// The watermark trails the slowest partition by this.
    pub out_of_orderness: Duration,
    /// Default grace after a window's end.
    pub grace: Duration,
    /// Quiet time after which a partition stops holding the watermark.
    pub idle_after: Duration,
}

/// An event that arrived after one or more of its windows had closed.
#[derive(Debug, Clone)]
pub struct LateEvent {
    /// Index in the slice given to [`WindowEngine::ingest`].
    pub index: usize,
    /// Queries whose windows had closed; the event still counts in the others.
    pub queries: Vec<String>,
}

/// One closed window of one query.
pub struct ClosedWindow {
    /// The query.
    pub query: Arc<QueryDefinition>,
    /// Its rows for the window.
    pub result: WindowResult,
}

/// All window queries of one processor instance.
pub struct WindowEngine {
    queries: Vec<(WindowedQuery, Millis)>,
    watermark: WatermarkTracker,
    offsets: OffsetTracker,
}

impl WindowEngine {
    /// An engine running `queries`.
    pub fn new(queries: &[Arc<QueryDefinition>], settings: EngineSettings) -> Result<Self> {
        let queries = queries
            .iter()
            .map(|definition| {
                let query = WindowedQuery::new(Arc::clone(definition))?;
                let grace = query.grace().unwrap_or(settings.grace).as_millis() as Millis;
                Ok((query, grace))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            queries,
            watermark: WatermarkTracker::new(settings.out_of_orderness, settings.idle_after),
            offsets: OffsetTracker::default(),
        })
    }

    /// Adds consumed events of `partition` (`(offset, event)`, in offset order); returns those
    /// that were late for at least one query.
    pub fn ingest(
        &mut self,
        partition: i32,
        events: &[(i64, OutcomeEvent)],
        now: Instant,
    ) -> Result<Vec<LateEvent>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let times: Vec<Millis> = events
            .iter()
            .map(|(_, e)| e.timestamp.timestamp_millis())
            .collect();
        let batch = table::to_record_batch(events.iter().map(|(_, e)| e))?;
        let mut late: HashMap<usize, Vec<String>> = HashMap::new();
        for (query, _) in &mut self.queries {
            let on_time: Vec<bool> = times.iter().map(|&t| !query.is_late(t)).collect();
            if on_time.iter().all(|&keep| keep) {
                query.add(&batch)?;
                continue;
            }
            for (index, _) in on_time.iter().enumerate().filter(|(_, keep)| !**keep) {
                late.entry(index)
                    .or_default()
                    .push(query.definition().name.clone());
            }
            let kept = filter_record_batch(&batch, &BooleanArray::from(on_time))?;
            if kept.num_rows() > 0 {
                query.add(&kept)?;
            }
        }
        for (&(offset, _), &time) in events.iter().zip(&times) {
            self.watermark.observe(partition, time, now);
            self.offsets
                .record(partition, offset, self.release_at(time));
        }
        let mut late: Vec<LateEvent> = late
            .into_iter()
            .map(|(index, queries)| LateEvent { index, queries })
            .collect();
        late.sort_by_key(|l| l.index);
        Ok(late)
    }

    /// The watermark at which every window holding an event at `time` has closed.
    fn release_at(&self, time: Millis) -> Millis {
        self.queries
            .iter()
            .map(|(query, grace)| query.definition().spec().last_window(time).end + grace)
            .max()
            .unwrap_or(Millis::MIN)
    }

    /// Notes a message handled at once (e.g. dead-lettered): it never holds a commit back.
    pub fn record_handled(&mut self, partition: i32, offset: i64) {
        self.offsets.record(partition, offset, Millis::MIN);
    }

    /// Moves the watermark and closes every window it has passed.
    pub fn advance(&mut self, now: Instant, wall_now_ms: Millis) -> Result<Vec<ClosedWindow>> {
        let watermark = self.watermark.advance(now, wall_now_ms);
        let mut closed = Vec::new();
        for (query, grace) in &mut self.queries {
            for result in query.close_through(watermark.saturating_sub(*grace))? {
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
        self.offsets.positions(self.watermark.watermark())
    }

    /// The current watermark (ms).
    pub fn watermark(&self) -> Millis {
        self.watermark.watermark()
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

    /// Forgets a revoked partition's progress.
    pub fn revoke(&mut self, partition: i32) {
        self.watermark.remove(partition);
        self.offsets.remove(partition);
    }
}
