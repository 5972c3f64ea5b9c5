//! Fitting an event into what the broker takes: a text over its limit is cut with a marker
//! and an output too large becomes a preview, so one big event never blocks the ones after it
//! and is never dropped for its size alone.

use std::io;

use serde::Serialize;
use serde_json::Value;

use super::error::{EventError, EventErrorKind};
use super::limits::{MAX_MESSAGE_CHARS, MAX_STACK_TRACE_CHARS};
use super::outcome::OutcomeEvent;

/// How much of an output's JSON text a preview keeps, in bytes.
pub const OUTPUT_PREVIEW_BYTES: usize = 4 * 1024;

/// What every field but the measured ones can take encoded, at most: a dozen names of 256
/// characters, four bytes each and escaped, plus numbers and keys.
const BOUNDED_FIELDS_BYTES: usize = 96 * 1024;

impl OutcomeEvent {
    /// Fits the event into `max_bytes` of JSON: cuts `error_message` and `stack_trace` to
    /// their limits (ending in a marker that says how much was cut), and, if the event is
    /// still larger, replaces `output` with a preview of its JSON text, setting
    /// `output_truncated` and `output_original_bytes`. Fails (`too_large`) only when the
    /// event is over the limit even then.
    pub fn fit(&mut self, max_bytes: usize) -> Result<(), EventError> {
        self.cut_long_texts();
        if self.measured_bytes() + BOUNDED_FIELDS_BYTES <= max_bytes {
            return Ok(());
        }
        if encoded_len(self) <= max_bytes {
            return Ok(());
        }
        if let Some(output) = self.output.take() {
            let original = encoded_len(&output);
            self.output = Some(Value::String(preview(&output)));
            self.output_truncated = Some(true);
            self.output_original_bytes = Some(original as u64);
        }
        let size = encoded_len(self);
        if size <= max_bytes {
            return Ok(());
        }
        Err(EventError::whole(
            EventErrorKind::TooLarge,
            format!(
                "event is {size} bytes with its output cut to a preview; the limit is \
                 {max_bytes} (shrink metadata or tags)"
            ),
        ))
    }

    /// Cuts `error_message` and `stack_trace` to their limits, ending in a marker that says
    /// how much was cut (the first step of [`Self::fit`]).
    pub fn cut_long_texts(&mut self) {
        cut_text(&mut self.error_message, MAX_MESSAGE_CHARS);
        cut_text(&mut self.stack_trace, MAX_STACK_TRACE_CHARS);
    }

    /// Encoded size of the fields without a small bound.
    fn measured_bytes(&self) -> usize {
        encoded_len(&self.error_message)
            + encoded_len(&self.stack_trace)
            + encoded_len(&self.tags)
            + encoded_len(&self.metadata)
            + encoded_len(&self.output)
    }
}

/// Cuts `text` to `max_chars` characters, the last of them a marker naming how many were cut.
fn cut_text(text: &mut Option<String>, max_chars: usize) {
    let Some(text) = text else {
        return;
    };
    // Bytes bound characters: most texts are decided without counting.
    if text.len() <= max_chars {
        return;
    }
    let chars = text.chars().count();
    if chars <= max_chars {
        return;
    }
    // The marker's own length depends on the count it shows; a few digits more are safe.
    let marker_len = format!(" [… {chars} characters cut]").chars().count();
    let keep = max_chars.saturating_sub(marker_len);
    let cut_at = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    text.truncate(cut_at);
    text.push_str(&format!(" [… {} characters cut]", chars - keep));
}

/// The first [`OUTPUT_PREVIEW_BYTES`] of `output`'s JSON text, cut on a character boundary.
fn preview(output: &Value) -> String {
    let mut text = output.to_string();
    if text.len() > OUTPUT_PREVIEW_BYTES {
        let mut end = OUTPUT_PREVIEW_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Bytes `value` takes as JSON, counted without building the text.
fn encoded_len(value: &impl Serialize) -> usize {
    let mut counter = ByteCounter(0);
    // Serializing our own types cannot fail (no maps with non-string keys).
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::limits::MAX_EVENT_BYTES;

    #[test]
    fn a_big_output_becomes_a_preview_and_long_texts_are_cut_with_a_marker() {
        let mut event = OutcomeEvent::builder("a", "act").build().unwrap();
        event.output = Some(Value::String("é".repeat(700_000)));
        event.error_message = Some("x".repeat(MAX_MESSAGE_CHARS + 10));
        event.fit(1_000_000).unwrap();
        event.validate().unwrap();
        assert!(serde_json::to_vec(&event).unwrap().len() <= 1_000_000);
        assert_eq!(event.output_truncated, Some(true));
        assert_eq!(event.output_original_bytes, Some(1_400_002));
        let preview = event.output.as_ref().unwrap().as_str().unwrap();
        assert!(preview.len() <= OUTPUT_PREVIEW_BYTES && preview.starts_with("\"éé"));
        let message = event.error_message.as_deref().unwrap();
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(message.ends_with(" [… 35 characters cut]"), "{message}");
    }

    #[test]
    fn an_event_that_fits_is_left_as_it_is() {
        let mut event = OutcomeEvent::builder("a", "act").build().unwrap();
        event.output = Some(serde_json::json!({"text": "ok"}));
        let before = event.clone();
        event.fit(MAX_EVENT_BYTES).unwrap();
        assert_eq!(event, before);
        // Just over the bounded estimate, exactly measured: still as it is.
        event.output = Some(Value::String("y".repeat(MAX_EVENT_BYTES - 100 * 1024)));
        let before = event.clone();
        event.fit(MAX_EVENT_BYTES).unwrap();
        assert_eq!(event, before);
    }
}
