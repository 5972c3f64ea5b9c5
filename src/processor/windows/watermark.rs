//! Event-time progress, per partition and shared, in three clocks:
//!
//! - the **emit bound** says which windows are complete: a partition's newest event time
//!   minus the allowed out-of-orderness (shared: the lowest over partitions that are not
//!   idle);
//! - the **early bound** is where an idle partition's windows are emitted ahead of that: the
//!   shared watermark, which follows the wall clock once every partition is idle, so a quiet
//!   spell's last windows come out without waiting for the next event. Windows emitted early
//!   take later events as updates;
//! - the **final bound** says which windows are done for good (state dropped, events late): it
//!   follows the data only, or, once a partition has stayed idle for the allowed lateness as
//!   well, covers everything it delivered. The wall clock alone never finalizes a window, so a
//!   backfill into a quiet topic counts in its windows.
//!
//! While the source cannot reach the brokers no partition is idle: a broker outage is not a
//! quiet spell, and the events producers spool through it count as if they had never waited.

use foldhash::{HashMap, HashMapExt};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::window::Millis;

#[derive(Debug, Clone, Copy)]
struct PartitionProgress {
    max_event_time: Millis,
    /// When it last delivered; while the source is disconnected, the latest turn.
    last_seen: Instant,
    /// Final bound, in the same units as the emit bound (before grace and lateness); never
    /// goes back.
    final_bound: Millis,
}

impl PartitionProgress {
    fn new(max_event_time: Millis, now: Instant) -> Self {
        Self {
            max_event_time,
            last_seen: now,
            final_bound: Millis::MIN,
        }
    }
}

/// How much longer than the idle time a partition that has delivered nothing waits for its
/// first backlog report before it counts as idle anyway.
const UNREPORTED_GRACE: Duration = Duration::from_secs(5);

/// The watermark of one consumer's assigned partitions.
#[derive(Debug)]
pub struct WatermarkTracker {
    out_of_orderness: Millis,
    idle_after: Duration,
    /// How long past `idle_after` an idle partition waits before its data is final.
    settle_after: Duration,
    partitions: HashMap<i32, PartitionProgress>,
    /// Shared emit bound; never goes back.
    watermark: Millis,
    /// Shared early bound (the wall clock while every partition is idle).
    early_watermark: Millis,
    /// Shared final bound; never goes back.
    final_watermark: Millis,
    /// Partitions idle at the last advance.
    idle: HashSet<i32>,
    /// Whether the source reaches a broker (a disconnected one has no idle partitions).
    connected: bool,
    /// Partitions with a backlog: a quiet one is starved by the fetcher, not idle.
    lagging: HashSet<i32>,
    /// Partitions whose backlog librdkafka has reported (every 2 s).
    reported: HashSet<i32>,
}

impl WatermarkTracker {
    /// A tracker that waits `out_of_orderness` behind the slowest partition, ignores a
    /// partition quiet for `idle_after`, and takes an idle partition's data as final once it
    /// has stayed quiet for `settle_after` more.
    pub fn new(out_of_orderness: Duration, idle_after: Duration, settle_after: Duration) -> Self {
        Self {
            out_of_orderness: out_of_orderness.as_millis() as Millis,
            idle_after,
            settle_after,
            partitions: HashMap::new(),
            watermark: Millis::MIN,
            early_watermark: Millis::MIN,
            final_watermark: Millis::MIN,
            idle: HashSet::new(),
            connected: true,
            lagging: Default::default(),
            reported: Default::default(),
        }
    }

    /// Notes an event of `partition` at `event_time`, seen at `now`.
    pub fn observe(&mut self, partition: i32, event_time: Millis, now: Instant) {
        let progress = self
            .partitions
            .entry(partition)
            .or_insert(PartitionProgress::new(event_time, now));
        progress.max_event_time = progress.max_event_time.max(event_time);
        progress.last_seen = now;
    }

    /// Notes a newly assigned partition: until it delivers an event or goes idle it holds the
    /// watermark back, so its backlog is not late just because another partition was read
    /// first.
    pub fn assign(&mut self, partition: i32, now: Instant) {
        self.partitions
            .entry(partition)
            .or_insert(PartitionProgress::new(Millis::MIN, now));
    }

    /// Notes which partitions still have messages to read (consumer lag above 0): they are
    /// never idle, so reading a backlog does not close windows on the clock.
    /// `reported`: the partitions with a backlog report at all.
    pub fn set_lagging(&mut self, lagging: HashSet<i32>, reported: HashSet<i32>) {
        self.lagging = lagging;
        self.reported = reported;
    }

    /// Notes whether the source reaches a broker. While it does not, no partition is idle,
    /// and quiet time counts again from when it does.
    pub fn set_connected(&mut self, connected: bool) {
        if self.connected != connected {
            tracing::info!(
                connected,
                "source connection changed: partitions are idle only while it is up"
            );
        }
        self.connected = connected;
    }

    /// How long `partition` has been idle (`None` if it is not).
    fn idle_for(
        &self,
        partition: i32,
        progress: &PartitionProgress,
        now: Instant,
    ) -> Option<Duration> {
        if !self.connected || self.lagging.contains(&partition) {
            return None;
        }
        let quiet = now.duration_since(progress.last_seen);
        // Nothing read yet and no backlog report: the first fetch may still be on its way,
        // and a backlog taken for idle would be dead-lettered as late. Wait for the report
        // (librdkafka's statistics, every 2 s), within a bound.
        let idle_after =
            if progress.max_event_time == Millis::MIN && !self.reported.contains(&partition) {
                self.idle_after + UNREPORTED_GRACE
            } else {
                self.idle_after
            };
        quiet.checked_sub(idle_after)
    }

    /// Number of partitions tracked (assigned, not yet revoked).
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The partitions tracked, in order.
    pub fn partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self.partitions.keys().copied().collect();
        partitions.sort_unstable();
        partitions
    }

    /// Forgets a partition (revoked in a rebalance).
    pub fn remove(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Recomputes the clocks at `now` (wall clock `wall_now_ms`) and returns the early
    /// watermark. `settled_bound(t)`: the final bound at which every window holding an event
    /// at `t` is final; an idle partition's data settles to it.
    pub fn advance(
        &mut self,
        now: Instant,
        wall_now_ms: Millis,
        settled_bound: impl Fn(Millis) -> Millis,
    ) -> Millis {
        if !self.connected {
            for progress in self.partitions.values_mut() {
                progress.last_seen = now;
            }
        }
        let quiet: HashMap<i32, Duration> = self
            .partitions
            .iter()
            .filter_map(|(&id, p)| Some((id, self.idle_for(id, p, now)?)))
            .collect();
        self.log_newly_idle(&quiet);
        self.idle = quiet.keys().copied().collect();
        for (id, progress) in &mut self.partitions {
            let own = progress
                .max_event_time
                .saturating_sub(self.out_of_orderness);
            progress.final_bound = progress.final_bound.max(own);
            let settled = quiet.get(id).is_some_and(|&q| q >= self.settle_after);
            if settled && progress.max_event_time > Millis::MIN {
                let all_read = settled_bound(progress.max_event_time);
                progress.final_bound = progress.final_bound.max(all_read);
            }
        }
        // Idle partitions hold nothing back (their data is in); with all idle, the most
        // advanced one's data decides.
        let shared = |of: fn(&PartitionProgress, Millis) -> Millis| {
            let active = self
                .partitions
                .iter()
                .filter(|(id, _)| !self.idle.contains(id))
                .map(|(_, p)| of(p, self.out_of_orderness))
                .min();
            active.or_else(|| {
                self.partitions
                    .values()
                    .map(|p| of(p, self.out_of_orderness))
                    .max()
            })
        };
        let data = shared(|p, ooo| p.max_event_time.saturating_sub(ooo));
        let finals = shared(|p, _| p.final_bound);
        self.watermark = self.watermark.max(data.unwrap_or(Millis::MIN));
        self.final_watermark = self.final_watermark.max(finals.unwrap_or(Millis::MIN));
        let all_idle = !self.partitions.is_empty() && self.idle.len() == self.partitions.len();
        self.early_watermark = if all_idle {
            self.watermark
                .max(wall_now_ms.saturating_sub(self.out_of_orderness))
        } else {
            self.watermark
        };
        self.early_watermark
    }

    fn log_newly_idle(&self, quiet: &HashMap<i32, Duration>) {
        for id in quiet.keys() {
            if !self.idle.contains(id) {
                tracing::debug!(
                    partition = id,
                    watermark = self.watermark,
                    "partition idle: it no longer holds the watermark"
                );
            }
        }
    }

    /// `partition`'s emit bound as of the last [`Self::advance`] (`Millis::MIN` if unknown).
    pub fn partition_bound(&self, partition: i32) -> Millis {
        self.partitions.get(&partition).map_or(Millis::MIN, |p| {
            p.max_event_time.saturating_sub(self.out_of_orderness)
        })
    }

    /// `partition`'s early bound: its emit bound, or while it is idle the early watermark.
    pub fn partition_early_bound(&self, partition: i32) -> Millis {
        let own = self.partition_bound(partition);
        if self.idle.contains(&partition) {
            own.max(self.early_watermark)
        } else {
            own
        }
    }

    /// `partition`'s final bound as of the last [`Self::advance`] (`Millis::MIN` if unknown).
    pub fn partition_final_bound(&self, partition: i32) -> Millis {
        self.partitions
            .get(&partition)
            .map_or(Millis::MIN, |p| p.final_bound)
    }

    /// The shared emit bound: complete windows of queries across partitions.
    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// The shared early bound: the watermark, or the wall clock while all are idle.
    pub fn early_watermark(&self) -> Millis {
        self.early_watermark
    }

    /// The shared final bound.
    pub fn final_watermark(&self) -> Millis {
        self.final_watermark
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

    const SETTLE: Duration = Duration::from_secs(60);

    #[test]
    fn slowest_partition_holds_the_watermark_until_idle() {
        let start = Instant::now();
        let mut tracker =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5), SETTLE);
        tracker.observe(0, 10_000, start);
        tracker.observe(1, 2_000, start);
        assert_eq!(tracker.advance(start, 0, |t| t), 1_900);
        tracker.observe(0, 12_000, start + Duration::from_secs(6));
        // Partition 1 has been quiet for 6 s: no longer holds the watermark back.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(6), 0, |t| t),
            11_900
        );
        // Never goes back.
        tracker.observe(1, 3_000, start + Duration::from_secs(6));
        assert_eq!(
            tracker.advance(start + Duration::from_secs(6), 0, |t| t),
            11_900
        );
        // Everything quiet: the wall clock drives it.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(20), 50_000, |t| t),
            49_900
        );
    }

    #[test]
    fn a_partition_assigned_late_keeps_its_own_bound() {
        let start = Instant::now();
        let mut tracker =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5), SETTLE);
        tracker.observe(0, 10_000, start);
        assert_eq!(tracker.advance(start, 0, |t| t), 9_900);
        // Partition 1 arrives with a backlog far behind: the watermark stays, its bound follows
        // its own events.
        tracker.assign(1, start);
        tracker.observe(1, 2_000, start);
        assert_eq!(tracker.advance(start, 0, |t| t), 9_900);
        assert_eq!(tracker.partition_bound(1), 1_900);
        assert_eq!(tracker.partition_bound(0), 9_900);
        // Once quiet its windows come out early, at the watermark; complete ones stay its own.
        tracker.observe(0, 11_000, start + Duration::from_secs(6));
        tracker.advance(start + Duration::from_secs(6), 0, |t| t);
        assert_eq!(tracker.partition_early_bound(1), 10_900);
        assert_eq!(tracker.partition_bound(1), 1_900);
    }

    #[test]
    fn a_quiet_partition_with_a_backlog_is_not_idle() {
        let start = Instant::now();
        let mut tracker =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5), SETTLE);
        tracker.observe(0, 10_000, start);
        tracker.observe(1, 2_000, start);
        tracker.set_lagging([1].into(), [0, 1].into());
        tracker.observe(0, 20_000, start + Duration::from_secs(6));
        // Partition 1 is starved, not done: it still holds the watermark and its own bound.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(6), 0, |t| t),
            1_900
        );
        assert_eq!(tracker.partition_bound(1), 1_900);
    }

    #[test]
    fn a_partition_that_delivered_nothing_waits_for_its_backlog_report() {
        let start = Instant::now();
        let mut tracker =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(1), SETTLE);
        tracker.assign(0, start);
        let wall = 1_000_000;
        // Past the idle time but no report yet: still holding the watermark back.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(2), wall, |t| t),
            Millis::MIN
        );
        // Reported with no backlog: idle, and event time follows the clock.
        tracker.set_lagging([].into(), [0].into());
        assert_eq!(
            tracker.advance(start + Duration::from_secs(2), wall, |t| t),
            wall - 100
        );
        // Never reported: idle once the grace has passed too.
        let mut unreported =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(1), SETTLE);
        unreported.assign(0, start);
        assert_eq!(
            unreported.advance(start + Duration::from_secs(5), wall, |t| t),
            Millis::MIN
        );
        assert_eq!(
            unreported.advance(start + Duration::from_secs(7), wall, |t| t),
            wall - 100
        );
    }

    #[test]
    fn the_wall_clock_emits_but_only_data_or_a_settled_quiet_spell_finalizes() {
        let start = Instant::now();
        let settle = Duration::from_secs(30);
        let mut tracker =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5), settle);
        let wall = 1_000_000;
        // An empty partition, quiet and reported: emitting follows the clock, nothing is final.
        tracker.assign(0, start);
        tracker.set_lagging([].into(), [0].into());
        tracker.advance(start + Duration::from_secs(6), wall, |t| t + 1);
        assert_eq!(tracker.partition_early_bound(0), wall - 100);
        assert_eq!(tracker.partition_bound(0), Millis::MIN);
        assert_eq!(tracker.partition_final_bound(0), Millis::MIN);
        assert_eq!(tracker.final_watermark(), Millis::MIN);
        // Old data arrives (a backfill): its own clock finalizes.
        let now = start + Duration::from_secs(7);
        tracker.observe(0, 5_000, now);
        tracker.advance(now, wall, |t| t + 1);
        assert_eq!(
            tracker.partition_early_bound(0),
            4_900,
            "delivering: not early"
        );
        assert_eq!(tracker.partition_final_bound(0), 4_900);
        // Quiet again: not yet settled, then settled on what it delivered.
        tracker.advance(now + Duration::from_secs(20), wall, |t| t + 1);
        assert_eq!(tracker.partition_final_bound(0), 4_900);
        tracker.advance(now + Duration::from_secs(36), wall, |t| t + 1);
        assert_eq!(tracker.partition_final_bound(0), 5_001);
        assert_eq!(tracker.final_watermark(), 5_001);
    }

    #[test]
    fn no_partition_is_idle_while_the_source_is_disconnected() {
        let start = Instant::now();
        let mut tracker =
            WatermarkTracker::new(Duration::from_millis(100), Duration::from_secs(5), SETTLE);
        tracker.observe(0, 10_000, start);
        tracker.advance(start, 50_000, |t| t);
        tracker.set_connected(false);
        // A minute of outage: the partition still holds the watermark at its data.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(60), 50_000, |t| t),
            9_900
        );
        tracker.set_connected(true);
        // Quiet time counts from the reconnection, not from the last event.
        assert_eq!(
            tracker.advance(start + Duration::from_secs(62), 50_000, |t| t),
            9_900
        );
        assert_eq!(
            tracker.advance(start + Duration::from_secs(66), 50_000, |t| t),
            49_900
        );
    }
}
