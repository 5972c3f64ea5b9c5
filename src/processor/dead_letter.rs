//! The dead-letter topic: input the processor cannot use, with the original bytes as the
//! payload and why, from where, in headers (the Kafka Connect convention) — so nothing is lost
//! and a fixed consumer can replay it.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

/// Reason of a late event.
pub const LATE: &str = "late";
/// Reason of a message with no payload.
pub const EMPTY: &str = "empty_payload";

/// One rejected message.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Stable reason: an [`crate::event::EventErrorKind`] name, `late` or `empty_payload`.
    pub reason: &'static str,
    /// Human-readable detail (the field and problem, or the closed queries).
    pub detail: String,
    /// Where it came from.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Original key.
    pub key: Option<Vec<u8>>,
    /// Original bytes.
    pub payload: Vec<u8>,
}

impl DeadLetter {
    /// Headers describing the rejection.
    pub fn headers(&self) -> OwnedHeaders {
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        OwnedHeaders::new()
            .insert(Header {
                key: "dlq.reason",
                value: Some(self.reason),
            })
            .insert(Header {
                key: "dlq.detail",
                value: Some(&self.detail),
            })
            .insert(Header {
                key: "dlq.source.topic",
                value: Some(&self.topic),
            })
            .insert(Header {
                key: "dlq.source.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "dlq.source.offset",
                value: Some(&offset),
            })
    }

    /// The record to send to `topic`.
    pub fn record<'a>(&'a self, topic: &'a str) -> FutureRecord<'a, [u8], [u8]> {
        let mut record = FutureRecord::to(topic)
            .payload(self.payload.as_slice())
            .headers(self.headers());
        if let Some(key) = &self.key {
            record = record.key(key.as_slice());
        }
        record
    }
}
