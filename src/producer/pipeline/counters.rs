//! [`PipelineCounters`]: what happened to the events a pipeline was given.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated from the caller, the sink thread and librdkafka's delivery callbacks.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    recorded: AtomicU64,
    published: AtomicU64,
    failed: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    spool_corrupt: AtomicU64,
}

/// A copy of the counters at one moment.
///
/// Once the pipeline is idle, `recorded == published + dropped + rejected + spool_pending`
/// (with Kafka on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Events accepted by `record_outcome`.
    pub recorded: u64,
    /// Events acknowledged by the broker, replayed ones included.
    pub published: u64,
    /// Delivery attempts that failed (the event then went to the spool, or was dropped).
    pub failed: u64,
    /// Events written to the disk spool.
    pub spooled: u64,
    /// Spooled events later acknowledged by the broker.
    pub replayed: u64,
    /// Events lost: spool full or unusable, or refused for good with nowhere to set them aside.
    pub dropped: u64,
    /// Events the broker refused for good (e.g. over a topic's `max.message.bytes`), set aside
    /// in the spool directory's `spool.rejected` with the reason.
    pub rejected: u64,
    /// Spooled records found corrupted on disk (lost; also counted in `dropped`).
    pub spool_corrupt: u64,
    /// Events in the spool waiting for replay.
    pub spool_pending: u64,
}

macro_rules! incrementers {
    ($($name:ident => $field:ident),* $(,)?) => {
        $(
            #[doc = concat!("Adds `n` to `", stringify!($field), "`.")]
            pub fn $name(&self, n: u64) {
                self.$field.fetch_add(n, Ordering::Relaxed);
            }
        )*
    };
}

impl PipelineCounters {
    incrementers! {
        add_recorded => recorded,
        add_published => published,
        add_failed => failed,
        add_spooled => spooled,
        add_replayed => replayed,
        add_dropped => dropped,
        add_rejected => rejected,
        add_spool_corrupt => spool_corrupt,
    }

    /// Reads every counter; `spool_pending` comes from the spool.
    pub fn snapshot(&self, spool_pending: u64) -> CounterSnapshot {
        CounterSnapshot {
            recorded: self.recorded.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            spool_corrupt: self.spool_corrupt.load(Ordering::Relaxed),
            spool_pending,
        }
    }
}
