//! Writing single records to a topic and reading a topic back in tests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

use feedback_pipeline::event::OutcomeEvent;

/// Sends one record and waits for the broker's acknowledgement; panics if there is none.
pub async fn send_one(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(err, _)| err)
        .unwrap();
}

/// Sends `records` (key, payload), `chunk` at a time, each chunk's acknowledgements awaited
/// within `timeout`; panics if any send fails.
pub async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
    chunk: usize,
    timeout: Duration,
) {
    for records in records.chunks(chunk) {
        let sends = records.iter().map(|(key, payload)| {
            producer.send(FutureRecord::to(topic).key(key).payload(payload), timeout)
        });
        for result in futures::future::join_all(sends).await {
            if let Err((err, _)) = result {
                panic!("producing failed: {err}");
            }
        }
    }
}

/// Consumes `topic` from the beginning until `expected` distinct event ids were seen or
/// `timeout` passed; returns the events by id and the total number of messages read.
pub async fn read_events(
    servers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> (HashMap<String, OutcomeEvent>, usize) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set(
            "group.id",
            format!("reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut events = HashMap::new();
    let mut messages = 0;
    while events.len() < expected && Instant::now() < deadline {
        let Some(message) = next_message(&consumer).await else {
            continue;
        };
        let event = OutcomeEvent::from_json_slice(message.payload().unwrap_or_default())
            .expect("valid event on the topic");
        assert_eq!(
            message.key(),
            Some(event.agent_name.as_bytes()),
            "keyed by agent_name"
        );
        messages += 1;
        events.insert(event.event_id.clone(), event);
    }
    (events, messages)
}

/// One message read back: key, payload and headers.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
    /// Headers as text.
    pub headers: HashMap<String, String>,
}

/// Consumes `topic` from the beginning until `expected` messages were read or `timeout` passed.
pub async fn read_raw(
    servers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<RawMessage> {
    use rdkafka::message::Headers;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", format!("raw-{}", uuid::Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while messages.len() < expected && Instant::now() < deadline {
        let Some(message) = next_message(&consumer).await else {
            continue;
        };
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        messages.push(RawMessage {
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    messages
}

/// The next message within half a second, if any; a topic that does not exist yet, or a broker
/// that is down (a cluster with a node killed), reads as empty (callers poll until there is
/// one); any other consumer error fails the test.
async fn next_message(consumer: &StreamConsumer) -> Option<rdkafka::message::BorrowedMessage<'_>> {
    match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
        Err(_) => None,
        Ok(Ok(message)) => Some(message),
        Ok(Err(rdkafka::error::KafkaError::MessageConsumption(
            rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition
            | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
            | rdkafka::types::RDKafkaErrorCode::AllBrokersDown,
        ))) => None,
        Ok(Err(err)) => panic!("consumer error: {err}"),
    }
}

/// The committed offsets of `group` on `topic`'s `partitions`, added up (0 if unknown).
pub fn committed_offsets(servers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    committed(servers, group, topic, partitions)
        .iter()
        .filter_map(|(offset, _)| match offset {
            rdkafka::Offset::Offset(offset) => Some(*offset),
            _ => None,
        })
        .sum()
}

/// The metadata `group` committed with its offsets on `topic`'s `partitions`, where any.
pub fn committed_metadata(servers: &str, group: &str, topic: &str, partitions: i32) -> Vec<String> {
    committed(servers, group, topic, partitions)
        .into_iter()
        .filter_map(|(_, metadata)| (!metadata.is_empty()).then_some(metadata))
        .collect()
}

/// `group`'s committed (offset, metadata) per partition of `topic` (none if unknown).
/// Fetching committed offsets does not join the group.
fn committed(
    servers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(rdkafka::Offset, String)> {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    match consumer.committed_offsets(list, Duration::from_secs(5)) {
        Ok(list) => list
            .elements()
            .iter()
            .map(|e| (e.offset(), e.metadata().to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The state of consumer group `group` as its coordinator tells it (`"Stable"` once every
/// member holds its assignment) and its number of members; `None` when unknown.
pub fn group_state(servers: &str, group: &str) -> Option<(String, usize)> {
    let client: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("client");
    let list = client
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()?;
    let found = list.groups().iter().find(|g| g.name() == group)?;
    Some((found.state().to_owned(), found.members().len()))
}
