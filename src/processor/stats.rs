//! Counters of the processor's own work, readable from code (tests, the embedded run) and
//! exported on `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// What the processor has done so far.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    consumed: AtomicU64,
    windows_emitted: AtomicU64,
    result_records: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    rebalances: AtomicU64,
    watermark_ms: AtomicI64,
    dead_letters: Mutex<BTreeMap<&'static str, u64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages read from the outcome topic.
    pub consumed: u64,
    /// Windows closed with at least one row.
    pub windows_emitted: u64,
    /// Result records sent to the metrics topic.
    pub result_records: u64,
    /// Offset commits made.
    pub commits: u64,
    /// Offset commits that failed.
    pub commit_failures: u64,
    /// Partition assignment changes.
    pub rebalances: u64,
    /// Current watermark, ms since the epoch.
    pub watermark_ms: i64,
    /// Dead-lettered messages by reason.
    pub dead_letters: BTreeMap<&'static str, u64>,
}

impl StatsSnapshot {
    /// Dead letters of one reason.
    pub fn dead_letters_for(&self, reason: &str) -> u64 {
        self.dead_letters.get(reason).copied().unwrap_or(0)
    }
}

impl ProcessorStats {
    pub(crate) fn add_consumed(&self, n: u64) {
        self.consumed.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_window(&self, records: u64) {
        self.windows_emitted.fetch_add(1, Ordering::Relaxed);
        self.result_records.fetch_add(records, Ordering::Relaxed);
    }
    pub(crate) fn add_commit(&self, ok: bool) {
        let counter = if ok {
            &self.commits
        } else {
            &self.commit_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_rebalance(&self) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_watermark(&self, ms: i64) {
        self.watermark_ms.store(ms, Ordering::Relaxed);
    }
    pub(crate) fn add_dead_letter(&self, reason: &'static str) {
        *self
            .dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            consumed: self.consumed.load(Ordering::Relaxed),
            windows_emitted: self.windows_emitted.load(Ordering::Relaxed),
            result_records: self.result_records.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            commit_failures: self.commit_failures.load(Ordering::Relaxed),
            rebalances: self.rebalances.load(Ordering::Relaxed),
            watermark_ms: self.watermark_ms.load(Ordering::Relaxed),
            dead_letters: self
                .dead_letters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
