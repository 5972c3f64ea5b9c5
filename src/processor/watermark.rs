//! Event-time progress: per-partition maximum event time, the watermark as the lowest of
//! them minus the allowed out-of-orderness, idle partitions left out, and wall-clock progress
//! once every partition is idle. Each partition also has its own bound (its newest event
//! time minus the out-of-orderness, or the watermark once it is idle): queries whose groups
//! live in one partition close that partition's windows on it, so a partition assigned late
//! (a restart, a rebalance) replays its backlog into complete windows.

use foldhash::{HashMap, HashMapExt};
use std::time::{Duration, Instant};

use crate::processor::window::Millis;

#[derive(Debug, Clone, Copy)]
struct PartitionProgress {
    max_event_time: Millis,
    last_seen: Instant,
    /// This partition's own bound; never goes back.
    bound: Millis,
}

/// How much longer than the idle time a partition that has delivered nothing waits for its
/// first backlog report before it counts as idle anyway.
const UNREPORTED_GRACE: Duration = Duration::from_secs(5);

/// The watermark of one consumer's assigned partitions.
#[derive(Debug)]
pub struct WatermarkTracker {
    out_of_orderness: Millis,
    idle_after: Duration,
    partitions: HashMap<i32, PartitionProgress>,
    watermark: Millis,
    /// Partitions with a backlog: a quiet one is starved by the fetcher, not idle.
    lagging: std::collections::HashSet<i32>,
    /// Partitions whose backlog librdkafka has reported (every 2 s).
    reported: std::collections::HashSet<i32>,
    /// Partitions idle at the last advance (to log when one goes idle).
    reported_idle: std::collections::HashSet<i32>,
}

impl WatermarkTracker {
    /// A tracker that waits `out_of_orderness` behind the slowest partition and ignores a
    /// partition quiet for `idle_after`.
    pub fn new(out_of_orderness: Duration, idle_after: Duration) -> Self {
        Self {
            out_of_orderness: out_of_orderness.as_millis() as Millis,
            idle_after,
            partitions: HashMap::new(),
            watermark: Millis::MIN,
            lagging: Default::default(),
            reported: Default::default(),
            reported_idle: Default::default(),
        }
    }

    /// Notes an event of `partition` at `event_time`, seen at `now`.
    pub fn observe(&mut self, partition: i32, event_time: Millis, now: Instant) {
        let progress = self
            .partitions
            .entry(partition)
            .or_insert(PartitionProgress {
                max_event_time: event_time,
                last_seen: now,
                bound: Millis::MIN,
            });
        progress.max_event_time = progress.max_event_time.max(event_time);
        progress.last_seen = now;
    }

    /// Notes a newly assigned partition: until it delivers an event or goes idle it holds the
    /// watermark back, so its backlog is not late just because another partition was read
    /// first.
    pub fn assign(&mut self, partition: i32, now: Instant) {
        self.partitions
            .entry(partition)
            .or_insert(PartitionProgress {
                max_event_time: Millis::MIN,
                last_seen: now,
                bound: Millis::MIN,
            });
    }

    /// Notes which partitions still have messages to read (consumer lag above 0): they are
    /// never idle, so reading a backlog does not close windows on the clock.
    /// `reported`: the partitions with a backlog report at all.
    pub fn set_lagging(
        &mut self,
        lagging: std::collections::HashSet<i32>,
        reported: std::collections::HashSet<i32>,
    ) {
        self.lagging = lagging;
        self.reported = reported;
    }

    fn is_idle(&self, partition: i32, progress: &PartitionProgress, now: Instant) -> bool {
        if self.lagging.contains(&partition) {
            return false;
        }
        let quiet = now.duration_since(progress.last_seen);
        // Nothing read yet and no backlog report: the first fetch may still be on its way,
        // and a backlog taken for idle would be dead-lettered as late. Wait for the report
        // (librdkafka's statistics, every 2 s), within a bound.
        if progress.max_event_time == Millis::MIN && !self.reported.contains(&partition) {
            return quiet >= self.idle_after + UNREPORTED_GRACE;
        }
        quiet >= self.idle_after
    }

    /// Number of partitions tracked (assigned, not yet revoked).
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Forgets a partition (revoked in a rebalance).
    pub fn remove(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Recomputes the watermark at `now` (wall clock `wall_now_ms`) and returns it. It never
    /// goes back.
    pub fn advance(&mut self, now: Instant, wall_now_ms: Millis) -> Millis {
        let idle: std::collections::HashSet<i32> = self
            .partitions
            .iter()
            .filter(|&(&id, p)| self.is_idle(id, p, now))
            .map(|(&id, _)| id)
            .collect();
        let active = self
            .partitions
            .iter()
            .filter(|(id, _)| !idle.contains(id))
            .map(|(_, p)| p.max_event_time)
            .min();
        let candidate = match active {
            Some(slowest) => slowest.saturating_sub(self.out_of_orderness),
            // All quiet: event time moves on with the clock, so the last windows of a quiet
            // period close without waiting for the next event.
            None if !self.partitions.is_empty() => {
                wall_now_ms.saturating_sub(self.out_of_orderness)
            }
            None => Millis::MIN,
        };
        self.watermark = self.watermark.max(candidate);
        for id in &idle {
            if !self.reported_idle.contains(id) {
                tracing::debug!(
                    partition = id,
                    watermark = self.watermark,
                    "partition idle: it no longer holds the watermark"
                );
            }
        }
        for (id, progress) in &mut self.partitions {
            let own = progress
                .max_event_time
                .saturating_sub(self.out_of_orderness);
            let candidate = if idle.contains(id) {
                own.max(self.watermark)
            } else {
                own
            };
            progress.bound = progress.bound.max(candidate);
        }
        self.reported_idle = idle;
        self.watermark
    }

    /// `partition`'s own bound as of the last [`Self::advance`] (`Millis::MIN` if unknown).
    pub fn partition_bound(&self, partition: i32) -> Millis {
        self.partitions
            .get(&partition)
            .map_or(Millis::MIN, |p| p.bound)
    }

    /// The current watermark.
    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// Largest event time seen on any partition.
    pub fn max_event_time(&self) -> Option<Millis> {
        self.partitions
            .values()
            .map(|p| p.max_event_time)
            .filter(|&t| t > Millis::MIN)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_partition_holds_the_watermark_until_idle() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5));
        tracker.observe(0, 10_000, start);
        tracker.observe(1, 2_000, start);
        assert_eq!(tracker.advance(start, 0), 1_900);
        tracker.observe(0, 12_000, start + Duration::from_secs(6));
        // Partition 1 has been quiet for 6 s: no longer holds the watermark back.
        assert_eq!(tracker.advance(start + Duration::from_secs(6), 0), 11_900);
        // Never goes back.
        tracker.observe(1, 3_000, start + Duration::from_secs(6));
        assert_eq!(tracker.advance(start + Duration::from_secs(6), 0), 11_900);
        // Everything quiet: the wall clock drives it.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(20), 50_000),
            49_900
        );
    }

    #[test]
    fn a_partition_assigned_late_keeps_its_own_bound() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5));
        tracker.observe(0, 10_000, start);
        assert_eq!(tracker.advance(start, 0), 9_900);
        // Partition 1 arrives with a backlog far behind: the watermark stays, its bound follows
        // its own events.
        tracker.assign(1, start);
        tracker.observe(1, 2_000, start);
        assert_eq!(tracker.advance(start, 0), 9_900);
        assert_eq!(tracker.partition_bound(1), 1_900);
        assert_eq!(tracker.partition_bound(0), 9_900);
        // Once quiet it follows the watermark.
        tracker.observe(0, 11_000, start + Duration::from_secs(6));
        tracker.advance(start + Duration::from_secs(6), 0);
        assert_eq!(tracker.partition_bound(1), 10_900);
    }

    #[test]
    fn a_quiet_partition_with_a_backlog_is_not_idle() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5));
        tracker.observe(0, 10_000, start);
        tracker.observe(1, 2_000, start);
        tracker.set_lagging([1].into(), [0, 1].into());
        tracker.observe(0, 20_000, start + Duration::from_secs(6));
        // Partition 1 is starved, not done: it still holds the watermark and its own bound.
        assert_eq!(tracker.advance(start + Duration::from_secs(6), 0), 1_900);
        assert_eq!(tracker.partition_bound(1), 1_900);
    }

    #[test]
    fn a_partition_that_delivered_nothing_waits_for_its_backlog_report() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(1));
        tracker.assign(0, start);
        let wall = 1_000_000;
        // Past the idle time but no report yet: still holding the watermark back.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(2), wall),
            Millis::MIN
        );
        // Reported with no backlog: idle, and event time follows the clock.
        tracker.set_lagging([].into(), [0].into());
        assert_eq!(
            tracker.advance(start + Duration::from_secs(2), wall),
            wall - 100
        );
        // Never reported: idle once the grace has passed too.
        let mut unreported =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(1));
        unreported.assign(0, start);
        assert_eq!(
            unreported.advance(start + Duration::from_secs(5), wall),
            Millis::MIN
        );
        assert_eq!(
            unreported.advance(start + Duration::from_secs(7), wall),
            wall - 100
        );
    }
}
