//! Events produced with rdkafka to a real broker (Apache Kafka over TCP) and to librdkafka's
//! in-process mock cluster come back byte-for-byte and field-for-field, keyed and partitioned by
//! agent.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

use common::broker::KafkaCluster;
use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::kafka::{EmbeddedCluster, TopicSpec, ensure_topics, partition_count};
use feedback_pipeline::simulate::Fleet;

const PARTITIONS: i32 = 4;

/// Produces `count` simulated events with the project's producer settings and checks that a
/// consumer group reads every one back intact, each agent on a single partition.
///
/// `create_topic` is false for the mock cluster, whose topics are made when it starts.
async fn round_trip(
    servers: &str,
    topic: &str,
    compression: &str,
    count: usize,
    create_topic: bool,
) {
    let config = common::config(
        servers,
        &[("KAFKA_COMPRESSION", compression), ("KAFKA_LINGER_MS", "5")],
    );
    if create_topic {
        ensure_topics(
            &config.kafka.client_config(servers),
            &[TopicSpec::new(topic, PARTITIONS)],
            Duration::from_secs(10),
        )
        .await
        .expect("topic created");
    }

    let producer: FutureProducer = config.kafka.producer_config(servers).create().unwrap();
    let mut fleet = Fleet::standard(42);
    let mut sent: HashMap<String, OutcomeEvent> = HashMap::new();
    for _ in 0..count {
        let event = fleet.next_event(Utc::now());
        let payload = event.to_json_vec().unwrap();
        let record = FutureRecord::to(topic)
            .key(&event.agent_name)
            .payload(&payload);
        producer
            .send(record, Duration::from_secs(10))
            .await
            .expect("broker acknowledged the event");
        sent.insert(event.event_id.clone(), event);
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set(
            "group.id",
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();

    let mut received: HashMap<String, OutcomeEvent> = HashMap::new();
    let mut partitions_of_agent: HashMap<String, HashSet<i32>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.len() < count {
        assert!(
            Instant::now() < deadline,
            "timed out with {} of {count} events consumed",
            received.len()
        );
        let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await
        else {
            continue;
        };
        let message = message.expect("consumer error");
        let key = std::str::from_utf8(message.key().unwrap())
            .unwrap()
            .to_owned();
        let event = OutcomeEvent::from_json_slice(message.payload().unwrap()).unwrap();
        assert_eq!(key, event.agent_name, "messages are keyed by agent_name");
        partitions_of_agent
            .entry(key)
            .or_default()
            .insert(message.partition());
        received.insert(event.event_id.clone(), event);
    }

    assert_eq!(received, sent, "every event arrives once, unchanged");
    for (agent, partitions) in partitions_of_agent {
        assert_eq!(partitions.len(), 1, "{agent} spread over {partitions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_round_trip_through_a_real_broker() {
    let broker = KafkaCluster::start();
    round_trip(
        &broker.bootstrap_servers(),
        "agent-outcomes",
        "gzip",
        200,
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips_through_the_mock_cluster() {
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let topics: Vec<TopicSpec> = codecs
        .iter()
        .map(|codec| TopicSpec::new(format!("outcomes-{codec}"), PARTITIONS))
        .collect();
    let cluster = EmbeddedCluster::start(1, &topics).unwrap();
    for (codec, topic) in codecs.iter().zip(&topics) {
        round_trip(cluster.bootstrap_servers(), &topic.name, codec, 50, false).await;
    }
}

/// The processor asks for the repartition topic's partitions right after creating it, when a
/// broker may not list it yet: a topic created while `partition_count` waits is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_count_waits_for_a_topic_being_created() {
    let broker = KafkaCluster::start();
    let client = broker.client_config();
    let creating = {
        let client = client.clone();
        tokio::spawn(async move {
            // The topic appears two seconds into the wait.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let spec = TopicSpec::new("created-later", 3);
            ensure_topics(&client, &[spec], Duration::from_secs(10))
                .await
                .unwrap();
        })
    };
    let count = partition_count(&client, "created-later", Duration::from_secs(30))
        .await
        .unwrap();
    creating.await.unwrap();
    assert_eq!(count, 3);
    let absent = partition_count(&client, "never-created", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(absent, 0);
}
