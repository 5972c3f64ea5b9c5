//! [`Outbox`]: what the loop writes — result records, alert records, dead letters — queued on
//! the [`Sends`] with their topics, keys and headers, and handed to subscribers.

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};
use tokio::sync::mpsc;

use super::dead_letter::DeadLetter;
use super::results::ResultRecord;
use super::sends::{Outgoing, Sends};
use crate::alerts::AlertRecord;
use crate::config::Topics;
use crate::metrics::ProcessorStats;
use crate::processor::source::ConsumedBatch;

/// The processor's output topics and their subscribers.
pub struct Outbox {
    sends: Sends,
    topics: Topics,
    stats: Arc<ProcessorStats>,
    results: Option<mpsc::UnboundedSender<ResultRecord>>,
    alerts: Option<mpsc::UnboundedSender<AlertRecord>>,
}

impl Outbox {
    /// Writes through `sends` to `topics`.
    pub fn new(sends: Sends, topics: Topics, stats: Arc<ProcessorStats>) -> Self {
        Self {
            sends,
            topics,
            stats,
            results: None,
            alerts: None,
        }
    }

    /// The sends in flight.
    pub fn sends(&self) -> &Sends {
        &self.sends
    }

    /// The sends in flight, to send, collect or settle them.
    pub fn sends_mut(&mut self) -> &mut Sends {
        &mut self.sends
    }

    /// Result records as they are queued.
    pub fn subscribe_results(&mut self) -> mpsc::UnboundedReceiver<ResultRecord> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.results = Some(sender);
        receiver
    }

    /// Alert records as they are queued.
    pub fn subscribe_alerts(&mut self) -> mpsc::UnboundedReceiver<AlertRecord> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.alerts = Some(sender);
        receiver
    }

    /// Queues a window's result records for the metrics topic; `update`: they replace rows
    /// emitted before under the same keys (marked by the `fp.update` header).
    pub fn results(&mut self, records: Vec<ResultRecord>, update: bool) {
        for record in records {
            self.sends.queue(Outgoing {
                topic: self.topics.metrics.clone(),
                partition: None,
                key: Some(record.key.clone().into_bytes()),
                payload: record.value.to_string().into_bytes(),
                headers: update.then(update_header),
            });
            if let Some(results) = &self.results {
                let _ = results.send(record);
            }
        }
    }

    /// Queues alert records for the alert topic, keyed by dedup key so one alert's trigger
    /// and resolve stay in order.
    pub fn alerts(&mut self, records: Vec<AlertRecord>) {
        for record in records {
            tracing::warn!(rule = %record.rule, action = record.action.as_str(), summary = %record.summary, "alert");
            self.stats
                .add_alert_record(&record.rule, record.action.as_str());
            match serde_json::to_vec(&record) {
                Ok(payload) => self.sends.queue(Outgoing {
                    topic: self.topics.alerts.clone(),
                    partition: None,
                    key: Some(record.dedup_key.clone().into_bytes()),
                    payload,
                    headers: None,
                }),
                Err(err) => tracing::error!(%err, "encoding an alert record failed"),
            }
            if let Some(sink) = &self.alerts {
                let _ = sink.send(record);
            }
        }
    }

    /// Queues a record for partition `partition` of the repartition topic `topic`.
    pub fn repartition(
        &mut self,
        topic: &str,
        partition: i32,
        headers: OwnedHeaders,
        payload: Vec<u8>,
    ) {
        self.sends.queue(Outgoing {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: None,
            payload,
            headers: Some(headers),
        });
    }

    /// Queues message `index` of `batch` for the dead-letter topic.
    pub fn dead_letter(
        &mut self,
        batch: &ConsumedBatch,
        index: usize,
        reason: &'static str,
        detail: String,
    ) {
        let message = &batch.messages()[index];
        let letter = DeadLetter {
            reason,
            detail,
            topic: self.topics.outcomes.clone(),
            partition: message.partition,
            offset: message.offset,
            key: batch.key(message).map(<[u8]>::to_vec),
            payload: batch.payload(message).unwrap_or_default().to_vec(),
            truncated: None,
        }
        .bounded(self.sends.max_message_bytes());
        self.stats.add_dead_letter(letter.reason);
        tracing::debug!(reason = letter.reason, detail = %letter.detail, partition = letter.partition, offset = letter.offset, "dead-lettered");
        let headers = letter.headers();
        self.sends.queue(Outgoing {
            topic: self.topics.dead_letters.clone(),
            partition: None,
            key: letter.key,
            payload: letter.payload,
            headers: Some(headers),
        });
    }
}

/// The header that marks a result record as an update of one emitted before under its key.
fn update_header() -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: "fp.update",
        value: Some("true"),
    })
}
