//! [`ReplayTracker`]: waits for the broker's verdict on one batch of replayed spool records.

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

    /// Waits until every record of batch `id` is delivered (`true`), one failed or the
    /// deadline passed (`false`).
    pub fn wait(&self, id: usize, deadline: Instant) -> bool {
        let mut batch = self.lock();
        loop {
            if batch.id != id || batch.failed {
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
