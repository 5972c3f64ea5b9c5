//! [`ReplayTracker`]: waits for the broker's verdict on one batch of replayed spool records.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

#[derive(Debug, Default)]
struct Batch {
    id: usize,
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
    /// Starts tracking batch `id` of `size` records.
    pub fn begin(&self, id: usize, size: usize) {
        *self.lock() = Batch {
            id,
            remaining: size,
            failed: false,
        };
    }

    /// A delivery report for a record of batch `id`; reports of older batches are ignored.
    pub fn report(&self, id: usize, delivered: bool) {
        let mut batch = self.lock();
        if batch.id != id {
            return;
        }
        batch.remaining = batch.remaining.saturating_sub(1);
        batch.failed |= !delivered;
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

    /// Waits until every record of batch `id` is delivered (`true`), one failed, the
    /// deadline passed or the wait was interrupted (`false`).
    pub fn wait(&self, id: usize, deadline: Instant) -> bool {
        let mut batch = self.lock();
        loop {
            if batch.id != id || batch.failed || self.is_interrupted() {
                return false;
            }
            if batch.remaining == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
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
