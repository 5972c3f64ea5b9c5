//! The alerts firing according to the alert topic: the last record of each dedup key, read
//! from the topic's start to its end offsets at the call. A processor seeds its evaluator
//! with them whenever it is assigned partitions, so a restart or a rebalance neither forgets
//! a firing alert (which would then never resolve) nor fires it a second time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::record::{AlertAction, AlertRecord};

/// Where a processor reads the alert topic back, and for how long at most.
#[derive(Clone)]
pub struct AlertHistory {
    /// Client settings of the brokers.
    pub client: ClientConfig,
    /// The alert topic.
    pub topic: String,
    /// The longest read.
    pub timeout: Duration,
}

impl AlertHistory {
    /// The alerts firing according to the topic (see [`firing_alerts`]).
    pub fn firing(&self) -> KafkaResult<Vec<AlertRecord>> {
        firing_alerts(&self.client, &self.topic, self.timeout)
    }
}

/// The alerts whose last record on `topic` is a trigger. Reading stops at `timeout`; what
/// was read by then is returned, with a warning (an alert resolved after the cut may then
/// be resolved again, which receivers ignore).
pub fn firing_alerts(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> KafkaResult<Vec<AlertRecord>> {
    let consumer: BaseConsumer = client
        .clone()
        .set("group.id", "feedback-pipeline-alert-history")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            ends.insert(partition.id(), high);
            assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    let mut last: HashMap<String, AlertRecord> = HashMap::new();
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        if let Some(Ok(record)) = message.payload().map(AlertRecord::from_json) {
            last.insert(record.dedup_key.clone(), record);
        }
        if ends
            .get(&message.partition())
            .is_some_and(|&end| message.offset() + 1 >= end)
        {
            ends.remove(&message.partition());
        }
    }
    if !ends.is_empty() {
        tracing::warn!(
            topic,
            partitions = ?ends.keys().collect::<Vec<_>>(),
            "the alert topic was not read to its end in time; alert state may be incomplete"
        );
    }
    Ok(last
        .into_values()
        .filter(|record| record.action == AlertAction::Trigger)
        .collect())
}
