//! [`ReplayTracker`]: waits for the broker's verdict on each record of the one batch of
//! replayed spool records in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// Bits of a delivery opaque that hold the record's index in its batch (the rest: the batch).
const INDEX_BITS: u32 = 24;

/// The delivery opaque of record `index` of replay batch `batch` (never [`super::delivery::LIVE`]).
pub fn opaque(batch: usize, index: usize) -> usize {
    (batch << INDEX_BITS) | index
}

/// What the broker made of one replayed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// No verdict yet.
    Waiting,
    /// Acknowledged.
    Delivered,
    /// Failed in a way a later replay may fix.
    Failed,
    /// Refused for good (e.g. too large for the topic), with the reason: set aside.
    Refused(String),
}

#[derive(Debug, Default)]
struct Batch {
    id: usize,
    outcomes: Vec<ReplayOutcome>,
    remaining: usize,
    failed: bool,
}

/// Tracks the one replay batch in flight; delivery callbacks report into it.
#[derive(Debug, Default)]
pub struct ReplayTracker {
    batch: Mutex<Batch>,
    changed: Condvar,
    /// A flush or shutdown is waiting for the sink thread: replays step aside until it is
    /// handled. (Against a dead broker one replay waits up to the message timeout.)
    interrupted: AtomicBool,
}

impl ReplayTracker {
    /// Starts tracking batch `id` of `size` records (fewer than 2^24).
    pub fn begin(&self, id: usize, size: usize) {
        *self.lock() = Batch {
            id,
            outcomes: vec![ReplayOutcome::Waiting; size],
            remaining: size,
            failed: false,
        };
    }

    /// The verdict on the record with delivery opaque `opaque`; reports of older batches are
    /// ignored.
    pub fn report(&self, opaque: usize, outcome: ReplayOutcome) {
        let (id, index) = (opaque >> INDEX_BITS, opaque & ((1 << INDEX_BITS) - 1));
        let mut batch = self.lock();
        if batch.id != id || batch.outcomes.get(index) != Some(&ReplayOutcome::Waiting) {
            return;
        }
        batch.failed |= outcome == ReplayOutcome::Failed;
        batch.outcomes[index] = outcome;
        batch.remaining = batch.remaining.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Marks batch `id` failed without waiting for the rest (a send was refused).
    pub fn fail(&self, id: usize) {
        let mut batch = self.lock();
        if batch.id == id {
            batch.failed = true;
            self.changed.notify_all();
        }
    }

    /// Asks the replay in progress to give up its batch (which stays in the spool, to be
    /// replayed later) and later replays to wait, until [`Self::resume`].
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        // Under the lock, so a waiter cannot miss the wake-up between its check and its wait.
        let _batch = self.lock();
        self.changed.notify_all();
    }

    /// Lets replays run again.
    pub fn resume(&self) {
        self.interrupted.store(false, Ordering::SeqCst);
    }

    /// Whether a flush or shutdown is waiting.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Waits until every record of batch `id` has a verdict, one failed, the deadline passed
    /// or the wait was interrupted; returns each record's outcome so far.
    pub fn wait(&self, id: usize, deadline: Instant) -> Vec<ReplayOutcome> {
        let mut batch = self.lock();
        loop {
            let done = batch.remaining == 0 || batch.failed || self.is_interrupted();
            let now = Instant::now();
            if batch.id != id {
                return Vec::new();
            }
            if done || now >= deadline {
                return batch.outcomes.clone();
            }
            batch = self
                .changed
                .wait_timeout(batch, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }
}
