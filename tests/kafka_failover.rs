//! Broker failures on a 3-node Apache Kafka cluster (replication factor 3, min.insync.replicas 2):
//! a partition leader killed (SIGKILL) while the producer library publishes, or while the
//! processor consumes, and a broker restarted under a running processor.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use common::broker::KafkaCluster;
use common::topic::read_raw;
use common::wait_until;
use common::windows::{WindowRun, events, expected_keys};
use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::producer::{FeedbackPipeline, PipelineOptions};

/// Each test runs its own 3-node cluster; one at a time fits 2 cores.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every partition of `topic` has 3 replicas (what the failover relies on).
fn assert_replicated(cluster: &KafkaCluster, topic: &str) {
    let consumer: BaseConsumer = cluster.client_config().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    for partition in metadata.topics()[0].partitions() {
        assert_eq!(partition.replicas().len(), 3, "{topic}/{}", partition.id());
    }
}

/// The high watermarks of `topic`'s partitions, added up: every record it holds.
fn end_offsets(cluster: &KafkaCluster, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = cluster.client_config().create().unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

/// A 3-node cluster with `topic` and `metrics` on it (4 partitions, 3 replicas each).
async fn three_nodes_with(topic: &str, metrics: &str) -> (KafkaCluster, WindowRun) {
    let cluster = KafkaCluster::start_with(3, None);
    let run = WindowRun::new(&cluster.bootstrap_servers());
    run.topics(&[topic, metrics]).await;
    assert_replicated(&cluster, topic);
    (cluster, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_while_the_producer_publishes_loses_and_repeats_nothing() {
    const TOPIC: &str = "agent-outcomes";
    const TOTAL: usize = 50_000;
    common::init_logs();
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = KafkaCluster::start_with(3, None);
    let servers = cluster.bootstrap_servers();
    let spool = tempfile::tempdir().unwrap();
    let config = common::config(
        &servers,
        &[
            ("KAFKA_OUTCOME_TOPIC", TOPIC),
            ("KAFKA_LINGER_MS", "5"),
            ("SPOOL_DIR", spool.path().to_str().unwrap()),
        ],
    );
    let client = config.kafka.client_config(&servers);
    ensure_topics(
        &client,
        &[TopicSpec::new(TOPIC, 4)],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_replicated(&cluster, TOPIC);
    let pipeline =
        Arc::new(FeedbackPipeline::new(PipelineOptions::from_config(&config, None)).unwrap());

    let mut ids = HashSet::new();
    for chunk in 0..50 {
        if chunk == 10 {
            let leader = cluster.leader_of(TOPIC, 0);
            tokio::task::block_in_place(|| cluster.kill_node(leader));
        }
        for n in 0..TOTAL / 50 {
            let event = OutcomeEvent::builder(format!("agent_{}", n % 8), "act")
                .build()
                .unwrap();
            ids.insert(pipeline.record_outcome(event).unwrap().event_id.clone());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One flush with room for the failover (seconds): librdkafka retries across the leader
    // change, nothing needs the spool.
    let outcome = tokio::task::block_in_place(|| pipeline.flush(Duration::from_secs(90)));
    assert!(outcome.delivered, "{outcome:?}");
    let total = TOTAL as u64;
    let counters = pipeline.counters();
    println!("producer counters through the failover: {counters:?}");
    assert_eq!((counters.recorded, counters.dropped), (total, 0));
    assert_eq!(counters.spool_pending, 0, "the spool drained");

    let records = end_offsets(&cluster, TOPIC, 4);
    let messages = read_raw(&servers, TOPIC, records as usize, Duration::from_secs(90)).await;
    assert_eq!(messages.len() as i64, records, "every record was read back");
    let mut on_topic = HashSet::new();
    for message in &messages {
        let event = OutcomeEvent::from_json_slice(&message.payload).unwrap();
        assert!(on_topic.insert(event.event_id), "an event landed twice");
    }
    assert_eq!(on_topic, ids, "every recorded event landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_while_the_processor_consumes_changes_no_result() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (topic, metrics) = ("outcomes-failover", "metrics-failover");
    let (cluster, run) = three_nodes_with(topic, metrics).await;
    let events = events(60_000);
    let (first, rest) = events.split_at(events.len() / 3);

    run.produce(topic, first).await;
    // Longer than a leader election: the partitions it stalls must not count as idle, or
    // their windows go out early and later rows update them.
    let extra = [("WINDOW_IDLE_CLOSE_MS", "30000")];
    let processor = run
        .spawn_with(topic, "failover-group", metrics, &extra)
        .await;
    wait_until(
        Duration::from_secs(60),
        "the first third consumed",
        || async { (processor.stats.consumed() >= first.len() as u64).then_some(()) },
    )
    .await;
    let leader = cluster.leader_of(topic, 0);
    tokio::task::block_in_place(|| cluster.kill_node(leader));
    // The rest arrives through the new leaders while the processor goes on consuming.
    run.produce(topic, rest).await;
    let expected = expected_keys(&events);
    let failed_over = run.results(metrics, expected.len()).await;
    processor.stop().await;

    tokio::task::block_in_place(|| cluster.restart_node(leader));
    let reference = run.reference(topic, &events).await;
    assert_eq!(
        failed_over, reference,
        "a leader failover changes no window result"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_processor_lag_returns_to_zero() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (topic, metrics) = ("outcomes-restart", "metrics-restart");
    let (cluster, run) = three_nodes_with(topic, metrics).await;
    let events = events(30_000);
    let (first, rest) = events.split_at(events.len() / 2);
    let processor = run.spawn(topic, "restart-group", metrics).await;

    run.produce(topic, first).await;
    let restarted = cluster.leader_of(topic, 1);
    tokio::task::block_in_place(|| cluster.kill_node(restarted));
    run.produce(topic, rest).await;
    tokio::task::block_in_place(|| cluster.restart_node(restarted));
    cluster.wait_for_brokers(3);

    let total = events.len() as u64;
    let lag = wait_until(
        Duration::from_secs(120),
        "every event consumed and a lag of 0 on every partition",
        || async {
            let lag = processor.consumer_lag(topic, 4)?;
            (processor.stats.consumed() >= total && lag == 0).then_some(lag)
        },
    )
    .await;
    assert_eq!(lag, 0);
    processor.stop().await;
}
