//! The dead-letter topic: input the processor cannot use, with the original bytes as the
//! payload and why, from where, in headers (the Kafka Connect convention) — so nothing is lost
//! and a fixed consumer can replay it.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use sha2::{Digest, Sha256};

/// Bytes of the original kept in a dead letter whose original is too large to send whole.
pub const TRUNCATED_PAYLOAD_BYTES: usize = 64 * 1024;

/// Room left under the producer's message limit for the headers and record overhead.
const RECORD_OVERHEAD_BYTES: usize = 8 * 1024;

/// One rejected message.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Stable reason: one of [`crate::event::reasons::ALL`].
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
    /// Original bytes, or their first [`TRUNCATED_PAYLOAD_BYTES`] (see [`Self::bounded`]).
    pub payload: Vec<u8>,
    /// Set when `payload` is a prefix: the original's size and SHA-256 (hex).
    pub truncated: Option<(usize, String)>,
}

impl DeadLetter {
    /// Keeps the letter within `max_message_bytes` (the producer's `message.max.bytes`): an
    /// original too large to send whole is cut to a prefix, with its size and SHA-256 in
    /// headers, so one huge message can never block the dead-letter topic.
    pub fn bounded(mut self, max_message_bytes: usize) -> Self {
        let key = self.key.as_ref().map_or(0, Vec::len);
        let room = max_message_bytes.saturating_sub(RECORD_OVERHEAD_BYTES + self.detail.len());
        if key + self.payload.len() <= room {
            return self;
        }
        let size = self.payload.len();
        let digest = Sha256::digest(&self.payload);
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        let keep = TRUNCATED_PAYLOAD_BYTES
            .min(room.saturating_sub(key))
            .min(size);
        self.payload.truncate(keep);
        self.truncated = Some((size, hex));
        if key > room / 2 {
            self.key = self.key.map(|mut k| {
                k.truncate(room / 2);
                k
            });
        }
        self
    }

    /// Headers describing the rejection.
    pub fn headers(&self) -> OwnedHeaders {
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        let headers = OwnedHeaders::new()
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
            });
        match &self.truncated {
            None => headers,
            Some((size, sha256)) => headers
                .insert(Header {
                    key: "dlq.truncated",
                    value: Some("true"),
                })
                .insert(Header {
                    key: "dlq.original.size",
                    value: Some(&size.to_string()),
                })
                .insert(Header {
                    key: "dlq.original.sha256",
                    value: Some(sha256),
                }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(payload: Vec<u8>) -> DeadLetter {
        DeadLetter {
            reason: "too_large",
            detail: "event is too large".into(),
            topic: "agent-outcomes".into(),
            partition: 0,
            offset: 7,
            key: Some(b"react_agent".to_vec()),
            payload,
            truncated: None,
        }
    }

    #[test]
    fn a_letter_over_the_limit_keeps_a_prefix_its_size_and_digest() {
        let small = letter(b"{}".to_vec()).bounded(1_000_000);
        assert_eq!(small.payload, b"{}");
        assert!(small.truncated.is_none());
        let original = vec![b'x'; 5_000_000];
        let cut = letter(original.clone()).bounded(1_000_000);
        assert_eq!(cut.payload.len(), TRUNCATED_PAYLOAD_BYTES);
        assert!(original.starts_with(&cut.payload));
        let (size, sha256) = cut.truncated.clone().unwrap();
        assert_eq!(size, 5_000_000);
        let expected: String = Sha256::digest(&original)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha256, expected);
        // A producer allowed large messages sends the original whole.
        assert!(letter(original).bounded(10_000_000).truncated.is_none());
    }
}
