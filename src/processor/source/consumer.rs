//! The source: a consumer in the processor's group on `agent-outcomes`, with manual commits
//! and rebalances handed to the processing loop.

use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

use super::forwarding::{QueueHandle, forward_partition};
use crate::metrics::ProcessorStats;

/// A partition assignment change the loop must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassignment {
    /// Partitions now ours: restore their checkpoints before reading them.
    Assigned(Vec<i32>),
    /// Partitions taken away: drop their state.
    Revoked(Vec<i32>),
}

/// Consumer context that queues rebalances for the processing loop and turns librdkafka's
/// statistics into the consumer-lag gauge.
pub struct SourceContext {
    changes: Mutex<Vec<Reassignment>>,
    /// Signalled on every queued change.
    change_queued: tokio::sync::Notify,
    stats: Arc<ProcessorStats>,
    /// Where assigned partitions' messages go; `None`: the consumer's own queue.
    fetch_queue: Mutex<Option<QueueHandle>>,
}

impl SourceContext {
    /// Takes the queued changes, oldest first.
    pub fn take_changes(&self) -> Vec<Reassignment> {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether changes are queued.
    pub fn has_changes(&self) -> bool {
        !self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Completes once a change is queued after the last wait (or one was queued since).
    pub async fn changed(&self) {
        self.change_queued.notified().await;
    }

    /// Sets the queue that partitions assigned from now on are forwarded to.
    ///
    /// # Panics
    /// If one is set already: librdkafka keeps a partition's fetch queue away from the
    /// consumer's own queue once an application forwarded it, so two queues, or one dropped
    /// and not replaced, would strand messages.
    pub(super) fn attach(&self, queue: QueueHandle) {
        let mut slot = self.fetch_queue.lock().unwrap_or_else(|p| p.into_inner());
        assert!(slot.is_none(), "a consumer feeds one fetch queue");
        *slot = Some(queue);
    }

    /// Stops forwarding to `queue` (it is being dropped).
    pub(super) fn detach(&self, queue: QueueHandle) {
        let mut slot = self.fetch_queue.lock().unwrap_or_else(|p| p.into_inner());
        if *slot == Some(queue) {
            *slot = None;
        }
    }

    fn push(&self, change: Reassignment) {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(change);
        self.change_queued.notify_one();
    }
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.stats.set_source_connected(false);
        }
        crate::kafka::log_client_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.stats
            .set_source_connected(reaches_a_broker(&statistics));
        for (topic, topic_stats) in &statistics.topics {
            for (&partition, partition_stats) in &topic_stats.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if partition >= 0
                    && let Some(backlog) = backlog(
                        partition_stats.app_offset,
                        partition_stats.committed_offset,
                        partition_stats.lo_offset,
                        partition_stats.hi_offset,
                    )
                {
                    self.stats.set_consumer_lag(topic, partition, backlog);
                }
            }
        }
    }
}

/// Whether any broker the cluster named (not only a bootstrap address) has a connection up.
fn reaches_a_broker(statistics: &Statistics) -> bool {
    statistics
        .brokers
        .values()
        .any(|broker| broker.nodeid >= 0 && broker.state == "UP")
}

/// Messages between a partition's read position and its end, from librdkafka's statistics
/// (negative offsets are unknown); `None` when either end is unknown.
///
/// librdkafka's own `consumer_lag` counts from the committed offset, which this processor holds
/// back until windows are out. Before a partition's first message reaches the application its
/// read position (`app_offset`) is unknown: all from the committed offset (or the log start) is
/// still to read, so a starved new partition counts as lagging too.
fn backlog(app_offset: i64, committed_offset: i64, lo_offset: i64, hi_offset: i64) -> Option<i64> {
    let position = [app_offset, committed_offset, lo_offset]
        .into_iter()
        .find(|&offset| offset >= 0)?;
    (hi_offset >= 0).then(|| (hi_offset - position).max(0))
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => self.push(Reassignment::Revoked(
                list.elements().iter().map(|e| e.partition()).collect(),
            )),
            // Before librdkafka assigns (and starts fetching), so no message of these
            // partitions lands on the consumer's own queue first.
            Rebalance::Assign(list) => {
                let queue = self.fetch_queue.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(queue) = *queue {
                    for element in list.elements() {
                        // SAFETY: the client handle is live while it calls us; the queue is
                        // live while it is set here (its drop clears it under this lock).
                        unsafe {
                            forward_partition(
                                consumer.client().native_ptr(),
                                queue,
                                element.topic(),
                                element.partition(),
                            )
                        };
                    }
                }
            }
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            self.push(Reassignment::Assigned(
                list.elements().iter().map(|e| e.partition()).collect(),
            ));
        }
    }
}

/// The processor's consumer.
pub type OutcomeConsumer = StreamConsumer<SourceContext>;

/// Creates the consumer: manual commits, reading from the earliest offset when the group has
/// none (a new group processes the retained history); statistics every 2 s feed the lag gauge.
pub fn create_consumer(
    mut config: ClientConfig,
    group_id: &str,
    stats: Arc<ProcessorStats>,
) -> KafkaResult<OutcomeConsumer> {
    config
        .set("group.id", group_id)
        .set("statistics.interval.ms", "2000")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range");
    config.create_with_context(SourceContext {
        changes: Mutex::default(),
        change_queued: tokio::sync::Notify::new(),
        stats,
        fetch_queue: Mutex::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::backlog;

    #[test]
    fn backlog_counts_from_the_read_position_or_the_first_known_offset_before_it() {
        // Reading: from the application's position.
        assert_eq!(backlog(900, 500, 0, 1000), Some(100));
        // No message delivered yet: from the committed offset, else the log start.
        assert_eq!(backlog(-1001, 500, 0, 1000), Some(500));
        assert_eq!(backlog(-1001, -1001, 200, 1000), Some(800));
        // End unknown, or nothing known at all.
        assert_eq!(backlog(900, 500, 0, -1), None);
        assert_eq!(backlog(-1, -1, -1, 1000), None);
        // A position past a stale end is no backlog, not a negative one.
        assert_eq!(backlog(1200, 500, 0, 1000), Some(0));
    }
}
