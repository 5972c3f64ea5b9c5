//! Checkpoints: how far each partition's windows were emitted, stored as the metadata of the
//! partition's committed offset (the outcome topic's [`PartitionCheckpoint`], and the merge
//! stage's own on the repartition topic). Offset and checkpoint commit in one request, so they can never
//! disagree, and a new owner of the partition gets both from one offset fetch.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::engine::PartitionCheckpoint;

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Offset fetches tried before the processor gives up (and stops rather than start the
/// partitions without their checkpoints).
const FETCH_ATTEMPTS: u32 = 5;
/// Wait before the first retry; each next one waits twice as long.
const FETCH_BACKOFF: Duration = Duration::from_millis(500);

/// The metadata a broker keeps with a committed offset by default (`offset.metadata.max.bytes`).
pub const METADATA_LIMIT: usize = 4096;

/// Adds `partition`'s commit at `offset`, carrying `checkpoint` (as JSON), to `list`.
pub fn add_commit(
    list: &mut TopicPartitionList,
    topic: &str,
    partition: i32,
    offset: i64,
    checkpoint: &impl Serialize,
) -> KafkaResult<()> {
    let mut element = list.add_partition(topic, partition);
    element.set_offset(Offset::Offset(offset))?;
    element.set_metadata(serde_json::to_string(checkpoint).unwrap_or_default());
    Ok(())
}

/// The committed checkpoints of `partitions` (blocking). A timeout or a coordinator error is
/// retried with backoff, then returned (never taken for "no checkpoint"); a partition
/// committed without a checkpoint (or never) is left out.
pub fn load<T: DeserializeOwned, X: ConsumerContext>(
    consumer: &impl Consumer<X>,
    topic: &str,
    partitions: &[i32],
) -> KafkaResult<HashMap<i32, T>> {
    let mut wanted = TopicPartitionList::new();
    for &partition in partitions {
        wanted.add_partition(topic, partition);
    }
    let mut attempt = 1;
    let committed = loop {
        match consumer.committed_offsets(wanted.clone(), FETCH_TIMEOUT) {
            Ok(committed) => break committed,
            Err(err) if attempt < FETCH_ATTEMPTS => {
                tracing::warn!(%err, attempt, "fetching committed checkpoints failed; retrying");
                // A coordinator that is moving or loading answers at once: give it a moment.
                std::thread::sleep(FETCH_BACKOFF * 2u32.pow(attempt - 1));
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    };
    let mut found = HashMap::new();
    for element in committed.elements() {
        if element.metadata().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(element.metadata()) {
            Ok(checkpoint) => {
                found.insert(element.partition(), checkpoint);
            }
            Err(err) => {
                tracing::warn!(%err, partition = element.partition(), "unreadable checkpoint skipped")
            }
        }
    }
    Ok(found)
}

/// Fails when the largest checkpoint `query_names` can produce would not fit the broker's
/// default metadata limit: every commit would then be refused.
pub fn check_size<'a>(query_names: impl IntoIterator<Item = &'a str>) -> KafkaResult<()> {
    let bounds: HashMap<String, i64> = query_names
        .into_iter()
        .map(|name| (name.to_owned(), i64::MIN))
        .collect();
    let largest = PartitionCheckpoint {
        read_through: i64::MIN,
        closed: bounds.clone(),
        finalized: bounds,
    };
    let size = serde_json::to_string(&largest).map_or(0, |text| text.len());
    if size <= METADATA_LIMIT {
        return Ok(());
    }
    Err(KafkaError::ClientCreation(format!(
        "the checkpoint of {} queries takes up to {size} bytes, over the {METADATA_LIMIT} bytes \
         Kafka keeps with a committed offset by default: load fewer queries from \
         PROCESSOR_SQL_DIR, shorten their file names, or raise offset.metadata.max.bytes on the \
         brokers",
        largest.closed.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_number_of_queries_fits_and_a_flood_does_not() {
        let names: Vec<String> = (0..10).map(|n| format!("shipped_query_{n:02}")).collect();
        assert!(check_size(names.iter().map(String::as_str)).is_ok());
        let flood: Vec<String> = (0..200).map(|n| format!("query_number_{n:04}")).collect();
        let err = check_size(flood.iter().map(String::as_str)).unwrap_err();
        assert!(err.to_string().contains("PROCESSOR_SQL_DIR"), "{err}");
    }
}
