//! Which offsets are safe to commit: an event's offset may be committed only once every
//! window containing it has been emitted, so a crash replays instead of losing.

use std::collections::{HashMap, VecDeque};

use crate::window::Millis;

/// Per partition: runs of consumed offsets and the watermark that releases them.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionOffsets>,
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// `(first offset, release watermark)`, release watermarks strictly increasing: a later
    /// event released earlier than the run before it waits with that run (safe, and keeps
    /// this as small as the number of windows in flight).
    pending: VecDeque<(i64, Millis)>,
    next_offset: Option<i64>,
}

impl OffsetTracker {
    /// Notes a consumed message that is released once the watermark reaches `release`
    /// (`Millis::MIN` for one handled at once, e.g. sent to the dead-letter topic).
    pub fn record(&mut self, partition: i32, offset: i64, release: Millis) {
        let state = self.partitions.entry(partition).or_default();
        state.next_offset = Some(state.next_offset.unwrap_or(0).max(offset + 1));
        if state.pending.back().is_none_or(|&(_, last)| release > last) && release > Millis::MIN {
            state.pending.push_back((offset, release));
        }
    }

    /// Offsets to commit (next offset to read, per partition) when each partition's events
    /// are released up to `watermark(partition)`.
    pub fn positions(&mut self, watermark: impl Fn(i32) -> Millis) -> HashMap<i32, i64> {
        let mut positions = HashMap::new();
        for (&partition, state) in &mut self.partitions {
            let watermark = watermark(partition);
            while state
                .pending
                .front()
                .is_some_and(|&(_, release)| release <= watermark)
            {
                state.pending.pop_front();
            }
            let position = match state.pending.front() {
                Some(&(offset, _)) => Some(offset),
                None => state.next_offset,
            };
            if let Some(position) = position {
                positions.insert(partition, position);
            }
        }
        positions
    }

    /// The next offset to read, per partition seen.
    pub fn read_positions(&self) -> HashMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|(&p, state)| state.next_offset.map(|o| (p, o)))
            .collect()
    }

    /// Forgets a partition (revoked).
    pub fn remove(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_stop_at_the_first_unreleased_event() {
        let mut tracker = OffsetTracker::default();
        tracker.record(0, 10, 100);
        tracker.record(0, 11, 200);
        tracker.record(0, 12, 150); // waits with offset 11's run
        tracker.record(0, 13, Millis::MIN);
        assert_eq!(tracker.positions(|_| 50)[&0], 10);
        assert_eq!(tracker.positions(|_| 100)[&0], 11);
        assert_eq!(tracker.positions(|_| 199)[&0], 11);
        assert_eq!(tracker.positions(|_| 200)[&0], 14);
    }
}
