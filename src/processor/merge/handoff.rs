//! [`HandOff`]: the first phase's output — each source partition's partials of a closed
//! window, routed to the repartition partition that merges their groups, and after them the
//! hand-over report that tells the owners how far the windows are complete.

use std::time::{Duration, Instant};

use datafusion_common::Result;

use super::route::split_by_route;
use super::wire::{HandOver, bounds_record, partial_record};
use crate::processor::sinks::Outbox;
use crate::processor::sql::partial::to_ipc;
use crate::processor::windows::{ClosedWindow, WindowEngine};

/// A report is sent again after this even when nothing moved, so an owner that restarts
/// learns every source's bounds again within it.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Where and how far this instance has handed its windows over.
pub struct HandOff {
    topic: String,
    partitions: i32,
    last: Option<(HandOver, Instant)>,
}

impl HandOff {
    /// Hands over to the `partitions` partitions of `topic`.
    pub fn new(topic: String, partitions: i32) -> Self {
        Self {
            topic,
            partitions: partitions.max(1),
            last: None,
        }
    }

    /// Queues a closed window's partials (one source partition's groups) for their owners.
    pub fn partials(&self, outbox: &mut Outbox, closed: &ClosedWindow) -> Result<()> {
        let (query, result) = (&closed.query, &closed.result);
        let source = result.partition.unwrap_or_default();
        let whole_query = query.compiled.limits_groups();
        let routed = split_by_route(&query.name, &result.rows, whole_query, self.partitions)?;
        for (target, rows) in routed {
            let headers = partial_record(&query.name, result.window.start, source);
            outbox.repartition(&self.topic, target, headers, to_ipc(&rows)?);
        }
        Ok(())
    }

    /// Queues, for every owner, how far the engine's partitions are handed over, when that
    /// moved or [`REPORT_EVERY`] passed.
    pub fn report(&mut self, outbox: &mut Outbox, engine: &WindowEngine) {
        let report = HandOver {
            bounds: engine
                .handed_over()
                .into_iter()
                .filter(|(_, bounds)| !bounds.is_empty())
                .map(|(query, bounds)| (query.to_owned(), bounds.clone()))
                .collect(),
        };
        if report.bounds.is_empty() {
            return;
        }
        let due = self
            .last
            .as_ref()
            .is_none_or(|(last, at)| *last != report || at.elapsed() >= REPORT_EVERY);
        if !due {
            return;
        }
        let (headers, payload) = bounds_record(&report);
        for target in 0..self.partitions {
            outbox.repartition(&self.topic, target, headers.clone(), payload.clone());
        }
        self.last = Some((report, Instant::now()));
    }
}
