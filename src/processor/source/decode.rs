//! Decoding a consumed batch: each message becomes an event of its partition, or a rejection
//! with its dead-letter reason (no payload, not a valid event, dated too far ahead).

use std::collections::BTreeMap;
use std::time::Duration;

use super::batch::ConsumedBatch;
use crate::event::{OutcomeEventView, reasons};

/// One partition's decoded events of a batch, `(offset, event)`, and each one's index in the
/// batch.
pub type PartitionEvents<'a> = (Vec<(i64, OutcomeEventView<'a>)>, Vec<usize>);

/// A message that is no usable event: its index in the batch, reason and detail.
pub type Undecodable = (usize, &'static str, String);

/// The batch's events by partition (borrowing from the batch) and the messages refused.
/// Events dated after `wall_now + max_future_ms` are refused: they would carry event time
/// (and every window's closing) far ahead of every other producer's events.
pub fn decode_batch(
    batch: &ConsumedBatch,
    wall_now: i64,
    max_future_ms: i64,
) -> (BTreeMap<i32, PartitionEvents<'_>>, Vec<Undecodable>) {
    let mut by_partition = sized_by_partition(batch);
    let horizon = wall_now.saturating_add(max_future_ms);
    let mut refused = Vec::new();
    for (index, message) in batch.messages().iter().enumerate() {
        let decoded = match batch.payload(message) {
            None | Some([]) => Err((reasons::EMPTY, "the message has no payload".to_owned())),
            Some(bytes) => OutcomeEventView::from_json_slice(bytes)
                .map_err(|err| (err.kind().as_str(), err.to_string()))
                .and_then(|event| reject_future(event, wall_now, horizon)),
        };
        match decoded {
            Ok(event) => {
                let (events, indexes) = by_partition
                    .get_mut(&message.partition)
                    .expect("every partition of the batch has an entry");
                events.push((message.offset, event));
                indexes.push(index);
            }
            Err((reason, detail)) => refused.push((index, reason, detail)),
        }
    }
    (by_partition, refused)
}

/// An empty entry per partition of the batch, sized up front: growing them was a measurable
/// share of a batch.
fn sized_by_partition(batch: &ConsumedBatch) -> BTreeMap<i32, PartitionEvents<'_>> {
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for message in batch.messages() {
        *counts.entry(message.partition).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(partition, n)| (partition, (Vec::with_capacity(n), Vec::with_capacity(n))))
        .collect()
}

/// Rejects an event dated after `horizon`.
fn reject_future(
    event: OutcomeEventView<'_>,
    wall_now: i64,
    horizon: i64,
) -> Result<OutcomeEventView<'_>, (&'static str, String)> {
    let time = event.timestamp.timestamp_millis();
    if time <= horizon {
        return Ok(event);
    }
    let ahead = Duration::from_millis(time.saturating_sub(wall_now).unsigned_abs());
    Err((
        reasons::FUTURE_TIMESTAMP,
        format!(
            "event time {} is {} ahead of the processor's clock, over WINDOW_MAX_FUTURE_MS \
             ({} ms): check the producer's clock",
            crate::window::millis_to_text(time),
            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
            horizon - wall_now
        ),
    ))
}
