//! [`CommitQueue`]: asynchronous offset commits whose answers land on a queue of their own,
//! read without waiting.
//!
//! A synchronous commit waits for the group coordinator, up to `socket.timeout.ms` (60 s)
//! when none is known, and the loop would serve no rebalance or shutdown meanwhile. An
//! asynchronous one through rust-rdkafka reports through a callback librdkafka only calls
//! when `offset_commit_cb` is configured, which rust-rdkafka does not do; so commits are sent
//! with `rd_kafka_commit_queue` and their results read from this queue each turn.

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::TopicPartitionList;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;

use crate::processor::source::OutcomeConsumer;

/// Commits in flight, answered in the order they were made.
pub struct CommitQueue {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    /// Each commit sent and not answered yet, with when it was sent.
    sent: VecDeque<(Instant, TopicPartitionList)>,
    /// Dropped after the queue: librdkafka's handle must outlive it.
    consumer: Arc<OutcomeConsumer>,
}

// SAFETY: librdkafka's queues are thread-safe; the pointer is only used through `&mut self`
// or to destroy the queue.
unsafe impl Send for CommitQueue {}
// SAFETY: as above; `&self` reaches no queue call.
unsafe impl Sync for CommitQueue {}

impl CommitQueue {
    /// A queue for `consumer`'s commits.
    pub fn new(consumer: Arc<OutcomeConsumer>) -> Self {
        // SAFETY: the consumer's handle is live, and kept so by `self.consumer`.
        let raw = unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) };
        Self {
            queue: NonNull::new(raw).expect("rd_kafka_queue_new never fails"),
            sent: VecDeque::new(),
            consumer,
        }
    }

    /// Sends a commit of `list`; its answer comes from [`Self::answers`].
    pub fn commit(&mut self, list: &TopicPartitionList) -> KafkaResult<()> {
        // SAFETY: handle, list and queue are live for the call; librdkafka copies the list.
        let code = unsafe {
            rdsys::rd_kafka_commit_queue(
                self.consumer.client().native_ptr(),
                list.ptr(),
                self.queue.as_ptr(),
                None,
                std::ptr::null_mut(),
            )
        };
        if code != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(KafkaError::ConsumerCommit(code.into()));
        }
        self.sent.push_back((Instant::now(), list.clone()));
        Ok(())
    }

    /// Commits sent and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.sent.len()
    }

    /// When the oldest unanswered commit was sent.
    pub fn oldest_unanswered(&self) -> Option<Instant> {
        self.sent.front().map(|(at, _)| *at)
    }

    /// The commits answered since the last call, oldest first, with their offsets.
    pub fn answers(&mut self) -> Vec<(KafkaResult<()>, TopicPartitionList)> {
        let mut answers = Vec::new();
        loop {
            // SAFETY: the queue is live; a returned event is destroyed below.
            let event = unsafe { rdsys::rd_kafka_queue_poll(self.queue.as_ptr(), 0) };
            if event.is_null() {
                return answers;
            }
            // SAFETY: `event` is a live event until destroyed.
            let (kind, code) = unsafe {
                (
                    rdsys::rd_kafka_event_type(event),
                    rdsys::rd_kafka_event_error(event),
                )
            };
            // SAFETY: as above; not used afterwards.
            unsafe { rdsys::rd_kafka_event_destroy(event) };
            if kind != rdsys::RD_KAFKA_EVENT_OFFSET_COMMIT {
                continue;
            }
            let Some((_, list)) = self.sent.pop_front() else {
                continue;
            };
            let result = match RDKafkaErrorCode::from(code) {
                RDKafkaErrorCode::NoError => Ok(()),
                error => Err(KafkaError::ConsumerCommit(error)),
            };
            answers.push((result, list));
        }
    }
}

impl Drop for CommitQueue {
    fn drop(&mut self) {
        // SAFETY: the queue was made by `rd_kafka_queue_new` and is destroyed once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}
