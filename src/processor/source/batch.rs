//! [`ConsumedBatch`]: the messages of one loop turn, copied out of librdkafka into one buffer.
//!
//! Keys and payloads share a byte buffer that is reused from turn to turn, so reading a batch
//! allocates nothing per message, and decoded events can borrow their text from it.

use std::ops::Range;

use rdkafka::message::Message;

/// Where one message's parts lie in the batch's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    key: Option<Range<usize>>,
    payload: Option<Range<usize>>,
}

/// The messages of one turn, in the order they were read.
#[derive(Debug, Default)]
pub struct ConsumedBatch {
    bytes: Vec<u8>,
    messages: Vec<Consumed>,
}

impl ConsumedBatch {
    /// An empty batch with room for `messages` messages.
    pub fn with_capacity(messages: usize) -> Self {
        Self {
            bytes: Vec::new(),
            messages: Vec::with_capacity(messages),
        }
    }

    /// Copies a message in.
    pub fn push(&mut self, message: &impl Message) {
        self.push_parts(
            message.partition(),
            message.offset(),
            message.key(),
            message.payload(),
        );
    }

    /// Copies a message in, given by its parts.
    pub fn push_parts(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) {
        let key = key.map(|key| self.append(key));
        let payload = payload.map(|payload| self.append(payload));
        self.messages.push(Consumed {
            partition,
            offset,
            key,
            payload,
        });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// Empties the batch, keeping its memory for the next turn.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.messages.clear();
    }

    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages, in reading order.
    pub fn messages(&self) -> &[Consumed] {
        &self.messages
    }

    /// Drops the messages of partitions that are no longer ours.
    pub fn remove_partitions(&mut self, partitions: &[i32]) {
        self.messages
            .retain(|message| !partitions.contains(&message.partition));
    }

    /// A message's key.
    pub fn key(&self, message: &Consumed) -> Option<&[u8]> {
        message.key.clone().map(|range| &self.bytes[range])
    }

    /// A message's payload.
    pub fn payload(&self, message: &Consumed) -> Option<&[u8]> {
        message.payload.clone().map(|range| &self.bytes[range])
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    use super::*;

    fn message(
        partition: i32,
        offset: i64,
        key: Option<&str>,
        payload: Option<&str>,
    ) -> OwnedMessage {
        OwnedMessage::new(
            payload.map(|p| p.as_bytes().to_vec()),
            key.map(|k| k.as_bytes().to_vec()),
            "t".into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    #[test]
    fn parts_read_back_and_survive_clearing_and_removal() {
        let mut batch = ConsumedBatch::with_capacity(4);
        batch.push(&message(0, 7, Some("agent_a"), Some("{\"a\":1}")));
        batch.push(&message(1, 3, None, None));
        batch.push(&message(0, 8, Some(""), Some("x")));
        let parts: Vec<_> = batch
            .messages()
            .iter()
            .map(|m| (m.partition, m.offset, batch.key(m), batch.payload(m)))
            .collect();
        assert_eq!(
            parts,
            [
                (0, 7, Some(&b"agent_a"[..]), Some(&b"{\"a\":1}"[..])),
                (1, 3, None, None),
                (0, 8, Some(&b""[..]), Some(&b"x"[..])),
            ]
        );
        batch.remove_partitions(&[0]);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.messages()[0].offset, 3);
        batch.clear();
        assert!(batch.is_empty());
        batch.push(&message(2, 1, Some("k"), Some("p")));
        assert_eq!(batch.payload(&batch.messages()[0]), Some(&b"p"[..]));
    }
}
