//! Checkpoints: how far each partition's windows were emitted, written to a small topic of
//! the consumer group before its offsets are committed, and read back when a partition is
//! assigned. (Offset commit metadata would do, but not every broker keeps it.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::engine::PartitionCheckpoint;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The checkpoint topic of a consumer group.
pub fn checkpoint_topic(group: &str) -> String {
    format!("{group}-checkpoints")
}

fn key(source_topic: &str, partition: i32) -> String {
    format!("{source_topic}/{partition}")
}

/// Writes checkpoints and waits for the broker's acknowledgement.
pub async fn save(
    producer: &FutureProducer,
    topic: &str,
    source_topic: &str,
    checkpoints: &[(i32, PartitionCheckpoint)],
) -> KafkaResult<()> {
    let records: Vec<(String, String)> = checkpoints
        .iter()
        .map(|(partition, checkpoint)| {
            (
                key(source_topic, *partition),
                serde_json::to_string(checkpoint).unwrap_or_default(),
            )
        })
        .collect();
    let sends = records.iter().map(|(key, value)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(30),
        )
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(err, _)| err)?;
    }
    Ok(())
}

/// Reads the latest checkpoint of each of `partitions` (blocking; the topic is small).
pub fn load(
    config: &ClientConfig,
    topic: &str,
    source_topic: &str,
    partitions: &[i32],
) -> KafkaResult<HashMap<i32, PartitionCheckpoint>> {
    let wanted: HashMap<String, i32> = partitions
        .iter()
        .map(|&p| (key(source_topic, p), p))
        .collect();
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let (low, high) = match consumer.fetch_watermarks(topic, 0, READ_TIMEOUT) {
        Ok(marks) => marks,
        // No checkpoint topic yet: nothing was ever committed by this group.
        Err(KafkaError::MetadataFetch(_)) => return Ok(HashMap::new()),
        Err(err) => return Err(err),
    };
    let mut found = HashMap::new();
    if high <= low {
        return Ok(found);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + READ_TIMEOUT;
    // Read past the high watermark until the topic goes quiet: some brokers (tansu 0.6)
    // report the end of a multi-record batch as its first offset + 1.
    let mut reached_end = false;
    while Instant::now() < deadline {
        let wait = if reached_end {
            Duration::from_millis(300)
        } else {
            Duration::from_millis(500)
        };
        let Some(message) = consumer.poll(wait) else {
            if reached_end {
                return Ok(found);
            }
            continue;
        };
        let message = message?;
        let partition = message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| wanted.get(k));
        if let (Some(&partition), Some(payload)) = (partition, message.payload()) {
            match serde_json::from_slice::<PartitionCheckpoint>(payload) {
                Ok(checkpoint) => {
                    found.insert(partition, checkpoint);
                }
                Err(err) => tracing::warn!(%err, partition, "unreadable checkpoint skipped"),
            }
        }
        reached_end |= message.offset() + 1 >= high;
    }
    Err(KafkaError::MetadataFetch(
        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
    ))
}
