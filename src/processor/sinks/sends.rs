//! [`Sends`]: the records the processor writes (results, alerts, dead letters), handed to the
//! producer without holding the loop, retried with backoff while the cause is transient, and
//! reported as a stop when it is not.
//!
//! Every record carries the sequence number of the turn that queued it, so a commit taken at
//! one turn knows when everything queued before it is acknowledged
//! ([`Sends::acknowledged_through`]) while later turns keep sending.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::metrics::ProcessorStats;

/// How long librdkafka may try one record before it reports a failure.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before records that failed are sent again; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A record for one of the processor's output topics.
pub struct Outgoing {
    /// Destination topic.
    pub topic: String,
    /// Destination partition; `None`: by key, as the producer's partitioner picks.
    pub partition: Option<i32>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Vec<u8>,
    /// Record headers.
    pub headers: Option<OwnedHeaders>,
}

impl Outgoing {
    fn size(&self) -> usize {
        self.payload.len() + self.key.as_ref().map_or(0, Vec::len)
    }
}

/// A send failure no retry can fix: the processor stops with it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "sending to {topic} failed permanently ({reason}): {error}; the processor stops rather \
     than hold its commits behind a record that can never be written{hint}"
)]
pub struct PermanentSendError {
    /// The topic.
    pub topic: String,
    /// librdkafka's error name.
    pub reason: String,
    /// The error's text.
    pub error: String,
    /// What to change.
    pub hint: &'static str,
}

struct Queued {
    sequence: u64,
    record: Outgoing,
}

struct InFlight {
    first_sequence: u64,
    task: tokio::task::JoinHandle<Vec<(Queued, KafkaError)>>,
}

/// The processor's pending output.
pub struct Sends {
    producer: FutureProducer,
    max_message_bytes: usize,
    stats: Arc<ProcessorStats>,
    sequence: u64,
    unsent: Vec<Queued>,
    in_flight: Vec<InFlight>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// (topic, reason) pairs already logged: a cause is logged once, then counted.
    logged: HashSet<(String, String)>,
}

impl Sends {
    /// Sends through `producer`, whose `message.max.bytes` is `max_message_bytes`.
    pub fn new(
        producer: FutureProducer,
        max_message_bytes: usize,
        stats: Arc<ProcessorStats>,
    ) -> Self {
        Self {
            producer,
            max_message_bytes,
            stats,
            sequence: 1,
            unsent: Vec::new(),
            in_flight: Vec::new(),
            backoff: FIRST_BACKOFF,
            retry_at: None,
            logged: HashSet::new(),
        }
    }

    /// The largest record the producer accepts.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Queues `record`. One over the producer's limit is never sent (the producer would refuse
    /// it on every retry): it is counted as `too_large` and logged once per topic.
    pub fn queue(&mut self, record: Outgoing) {
        if record.size() > self.max_message_bytes {
            let detail = format!(
                "{} bytes, over message.max.bytes ({})",
                record.size(),
                self.max_message_bytes
            );
            self.failed(&record.topic, "too_large", &detail);
            return;
        }
        self.unsent.push(Queued {
            sequence: self.sequence,
            record,
        });
    }

    /// Hands what is queued to the producer (unless a retry is backing off) and starts the
    /// next sequence. `results`: the records include window results (their latency is timed).
    pub fn send(&mut self, results: bool) {
        self.sequence += 1;
        if self.unsent.is_empty() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let pending = std::mem::take(&mut self.unsent);
        let first_sequence = pending.iter().map(|q| q.sequence).min().unwrap_or(0);
        let producer = self.producer.clone();
        let stats = Arc::clone(&self.stats);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let sends = pending.iter().map(|queued| {
                let out = &queued.record;
                let mut record: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&out.topic).payload(out.payload.as_slice());
                if let Some(key) = &out.key {
                    record = record.key(key.as_slice());
                }
                if let Some(headers) = &out.headers {
                    record = record.headers(headers.clone());
                }
                if let Some(partition) = out.partition {
                    record = record.partition(partition);
                }
                producer.send(record, DELIVERY_TIMEOUT)
            });
            let outcomes = futures::future::join_all(sends).await;
            if results {
                stats.observe_emit(started.elapsed().as_secs_f64());
            }
            pending
                .into_iter()
                .zip(outcomes)
                .filter_map(|(queued, outcome)| outcome.err().map(|(err, _)| (queued, err)))
                .collect()
        });
        self.in_flight.push(InFlight {
            first_sequence,
            task,
        });
    }

    /// Takes in the sends that have finished, without waiting. Records that failed for a
    /// transient cause are queued again (sent after a backoff); a permanent failure is
    /// returned.
    pub fn collect(&mut self) -> Result<(), PermanentSendError> {
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|flight| flight.task.is_finished());
        self.in_flight = running;
        let failed = finished
            .into_iter()
            .filter_map(|flight| futures::FutureExt::now_or_never(flight.task))
            .flat_map(Result::unwrap_or_default)
            .collect();
        self.requeue(failed)
    }

    /// Waits up to `timeout` for the sends in flight to finish, then takes them in like
    /// [`Self::collect`]; what is still running after `timeout` stays in flight.
    pub async fn settle(&mut self, timeout: Duration) -> Result<(), PermanentSendError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut failed = Vec::new();
        for mut flight in std::mem::take(&mut self.in_flight) {
            match tokio::time::timeout_at(deadline, &mut flight.task).await {
                Ok(result) => failed.extend(result.unwrap_or_default()),
                Err(_) => self.in_flight.push(flight),
            }
        }
        self.requeue(failed)
    }

    fn requeue(&mut self, failed: Vec<(Queued, KafkaError)>) -> Result<(), PermanentSendError> {
        if failed.is_empty() {
            self.backoff = FIRST_BACKOFF;
            self.retry_at = None;
            return Ok(());
        }
        for (queued, err) in failed {
            let reason = reason_of(&err);
            self.failed(&queued.record.topic, &reason, &err.to_string());
            if let Some(hint) = permanent_hint(&err) {
                return Err(PermanentSendError {
                    topic: queued.record.topic,
                    reason,
                    error: err.to_string(),
                    hint,
                });
            }
            self.unsent.push(queued);
        }
        self.unsent.sort_by_key(|q| q.sequence);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }

    fn failed(&mut self, topic: &str, reason: &str, detail: &str) {
        self.stats.add_send_failure(topic, reason);
        if self.logged.insert((topic.to_owned(), reason.to_owned())) {
            tracing::warn!(
                topic,
                reason,
                detail,
                "a record could not be sent (further failures of this cause are only counted)"
            );
        }
    }

    /// Every record queued at a sequence up to this one is acknowledged.
    pub fn acknowledged_through(&self) -> u64 {
        self.unsent
            .iter()
            .map(|q| q.sequence)
            .chain(self.in_flight.iter().map(|f| f.first_sequence))
            .min()
            .unwrap_or(self.sequence)
            .saturating_sub(1)
    }

    /// The sequence records queued now get.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Records queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.unsent.is_empty() && self.in_flight.is_empty()
    }

    /// Records waiting to be sent again after a failure.
    pub fn waiting_for_retry(&self) -> usize {
        if self.retry_at.is_some() {
            self.unsent.len()
        } else {
            0
        }
    }
}

/// librdkafka's name of the error, as a bounded metric label.
fn reason_of(err: &KafkaError) -> String {
    match err.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "Other".to_owned(),
    }
}

/// What to change, for an error no retry can fix; `None` for a transient one.
fn permanent_hint(err: &KafkaError) -> Option<&'static str> {
    use RDKafkaErrorCode as Code;
    match err.rdkafka_error_code()? {
        Code::MessageSizeTooLarge | Code::InvalidMessageSize | Code::MessageBatchTooLarge => Some(
            " (raise the topic's max.message.bytes, or lower KAFKA_PROPERTY_MESSAGE_MAX_BYTES \
             to what the broker accepts)",
        ),
        Code::TopicAuthorizationFailed | Code::ClusterAuthorizationFailed => {
            Some(" (grant this principal WRITE on the topic)")
        }
        Code::InvalidTopic | Code::InvalidRecord | Code::PolicyViolation => {
            Some(" (check the topic's configuration and policies)")
        }
        Code::InvalidRequiredAcks | Code::Fatal => {
            Some(" (check the KAFKA_PROPERTY_* producer settings)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_authorization_errors_are_permanent_and_timeouts_are_not() {
        let produce = |code| KafkaError::MessageProduction(code);
        assert!(permanent_hint(&produce(RDKafkaErrorCode::MessageSizeTooLarge)).is_some());
        assert!(permanent_hint(&produce(RDKafkaErrorCode::TopicAuthorizationFailed)).is_some());
        assert!(permanent_hint(&produce(RDKafkaErrorCode::MessageTimedOut)).is_none());
        assert!(permanent_hint(&produce(RDKafkaErrorCode::NotEnoughReplicas)).is_none());
        assert_eq!(
            reason_of(&produce(RDKafkaErrorCode::MessageSizeTooLarge)),
            "MessageSizeTooLarge"
        );
    }
}
