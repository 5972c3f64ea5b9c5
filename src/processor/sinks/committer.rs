//! [`Committer`]: offset commits, each carrying its partition's checkpoint, made only once
//! every record queued before them is acknowledged, and never waited on by the loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::{Offset, TopicPartitionList};

use super::commit_queue::CommitQueue;
use super::sends::Sends;
use crate::metrics::ProcessorStats;
use crate::metrics::server::Readiness;
use crate::processor::source::OutcomeConsumer;
use crate::processor::windows::{WindowEngine, checkpoint};

/// A commit waiting (for sends or for the coordinator) longer than this makes the processor
/// not ready, unless the commit interval is longer.
const COMMIT_BLOCKED_AFTER: Duration = Duration::from_secs(15);

/// A commit taken at one turn, made once every record queued up to then is acknowledged.
struct PendingCommit {
    list: TopicPartitionList,
    /// The send sequence of the turn it was taken at.
    sequence: u64,
    since: Instant,
}

/// The commit state of one processor.
pub struct Committer {
    queue: CommitQueue,
    pending: Option<PendingCommit>,
    /// Whether commits are reported blocked (logged once per episode).
    blocked: bool,
    last: HashMap<i32, i64>,
    interval: Duration,
    last_at: Instant,
    topic: String,
    stats: Arc<ProcessorStats>,
    readiness: Arc<Readiness>,
}

impl Committer {
    /// Commits offsets of `topic` through `consumer` every `interval`.
    pub fn new(
        consumer: Arc<OutcomeConsumer>,
        topic: String,
        interval: Duration,
        stats: Arc<ProcessorStats>,
        readiness: Arc<Readiness>,
    ) -> Self {
        Self {
            queue: CommitQueue::new(consumer),
            pending: None,
            blocked: false,
            last: HashMap::new(),
            interval,
            last_at: Instant::now(),
            topic,
            stats,
            readiness,
        }
    }

    /// Drops the commit taken before a rebalance: it may name partitions no longer ours.
    pub fn drop_pending(&mut self) {
        self.pending = None;
    }

    /// Forgets a revoked partition's last commit.
    pub fn forget(&mut self, partition: i32) {
        self.last.remove(&partition);
    }

    /// Every commit interval, takes the offsets every emitted window allows (each with its
    /// checkpoint) and commits them asynchronously once every record queued up to then is
    /// acknowledged. Never waits: the loop keeps serving rebalances and shutdown.
    pub fn turn(&mut self, engine: &mut WindowEngine, sends: &Sends) {
        self.take_results();
        if self.pending.is_none() && self.last_at.elapsed() >= self.interval {
            self.last_at = Instant::now();
            self.pending = self.commit_list(engine).map(|list| PendingCommit {
                list,
                sequence: sends.sequence() - 1,
                since: Instant::now(),
            });
        }
        self.report_blocked(sends);
        let ready = self.pending.as_ref().is_some_and(|pending| {
            self.queue.unanswered() == 0 && sends.acknowledged_through() >= pending.sequence
        });
        if let Some(pending) = self.pending.take_if(|_| ready) {
            self.commit_async(&pending.list);
        }
    }

    /// On shutdown, with every send settled: commits what the windows allow and waits at most
    /// `timeout` for the answer, so a broker outage cannot hold the process.
    pub async fn finish(&mut self, engine: &mut WindowEngine, sends: &Sends, timeout: Duration) {
        self.take_results();
        if !sends.is_idle() {
            tracing::warn!(
                "processor stopping with records unacknowledged; offsets stay at the last commit and are read again on restart"
            );
            return;
        }
        if let Some(list) = self.commit_list(engine) {
            self.commit_async(&list);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while self.queue.unanswered() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.take_results();
        }
        if self.queue.unanswered() == 0 {
            tracing::info!("processor stopping; safe offsets committed");
        } else {
            tracing::warn!("processor stopping; the last commit was not answered in time");
        }
    }

    /// The offsets to commit now, each with its checkpoint; `None` when nothing moved.
    fn commit_list(&mut self, engine: &mut WindowEngine) -> Option<TopicPartitionList> {
        let positions = engine.commit_positions();
        let read = engine.read_positions();
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in &positions {
            if self.last.get(&partition) == Some(&offset) {
                continue;
            }
            let read_through = read.get(&partition).copied().unwrap_or(offset);
            let checkpoint = engine.checkpoint(partition, read_through);
            if let Err(err) =
                checkpoint::add_commit(&mut list, &self.topic, partition, offset, &checkpoint)
            {
                tracing::warn!(%err, partition, "cannot commit this offset");
            }
        }
        (list.count() > 0).then_some(list)
    }

    fn commit_async(&mut self, list: &TopicPartitionList) {
        tracing::trace!(?list, "committing offsets with their checkpoints");
        if let Err(err) = self.queue.commit(list) {
            self.stats.add_commit(false);
            tracing::warn!(%err, "committing offsets failed; will retry");
        }
    }

    /// Takes in the answers to the commits made so far.
    fn take_results(&mut self) {
        for (result, list) in self.queue.answers() {
            self.stats.add_commit(result.is_ok());
            match result {
                Ok(()) => {
                    for element in list.elements() {
                        if let Offset::Offset(offset) = element.offset() {
                            self.last.insert(element.partition(), offset);
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "committing offsets failed; will retry"),
            }
        }
    }

    /// Turns `/readyz` not ready (and logs once) while commits wait too long, and back.
    fn report_blocked(&mut self, sends: &Sends) {
        let limit = COMMIT_BLOCKED_AFTER.max(self.interval * 3);
        let unanswered = self.queue.oldest_unanswered().map(|at| at.elapsed());
        let waiting = self.pending.as_ref().map(|p| p.since.elapsed());
        let problem = match (unanswered, waiting) {
            (Some(waited), _) if waited >= limit => Some(format!(
                "an offset commit has been unanswered for {} s: is the group coordinator \
                 reachable?",
                waited.as_secs()
            )),
            (_, Some(waited)) if waited >= limit => Some(format!(
                "commits have waited {} s for records to be acknowledged ({} waiting to be \
                 sent again; see feedback_pipeline_processor_send_failures_total)",
                waited.as_secs(),
                sends.waiting_for_retry()
            )),
            _ => None,
        };
        match (&problem, self.blocked) {
            (Some(problem), false) => tracing::warn!(%problem, "commits blocked; not ready"),
            (None, true) => tracing::info!("commits moving again; ready"),
            _ => {}
        }
        self.blocked = problem.is_some();
        self.readiness.set_problem(problem);
    }
}
