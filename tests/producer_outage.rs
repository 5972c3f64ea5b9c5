//! A broker outage loses nothing: events recorded while the broker is down are spooled to
//! disk and replayed when it is back, and recording never waits on the network.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, json};

use common::agents::{Behaviour, ScriptedAgent};
use common::broker::KafkaCluster;
use common::topic::read_events;
use common::wait_until;
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::producer::{ActionDispatcher, FeedbackPipeline, PipelineOptions};

const TOPIC: &str = "agent-outcomes";
const PER_PHASE: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_during_an_outage_all_reach_the_topic() {
    let data = tempfile::tempdir().unwrap();
    let mut broker = KafkaCluster::start();
    let servers = broker.bootstrap_servers();
    let spool_dir = data.path().join("spool");
    let config = common::config(
        &servers,
        &[
            ("KAFKA_LINGER_MS", "5"),
            // Short, so the outage outlasts librdkafka's own retries and the spool is exercised.
            ("KAFKA_MESSAGE_TIMEOUT_MS", "1500"),
            ("SPOOL_DIR", spool_dir.to_str().unwrap()),
        ],
    );
    ensure_topics(
        &config.kafka.client_config(&servers),
        &[TopicSpec::new(TOPIC, 4)],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let pipeline =
        Arc::new(FeedbackPipeline::new(PipelineOptions::from_config(&config, None)).unwrap());
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let agents: Vec<_> = (0..4)
        .map(|i| ScriptedAgent::new(&format!("agent_{i}"), Behaviour::Succeed))
        .collect();

    let mut ids = HashSet::new();
    let mut slowest = Duration::ZERO;
    let mut dispatch_phase = async |pace: Duration, ids: &mut HashSet<String>| {
        for n in 0..PER_PHASE {
            let agent = &agents[n % agents.len()];
            let started = Instant::now();
            let result = dispatcher
                .dispatch(agent.as_ref(), "act", json!({"n": n}), Map::new(), &[])
                .await;
            slowest = slowest.max(started.elapsed());
            ids.insert(result.event_id);
            tokio::time::sleep(pace).await;
        }
    };

    dispatch_phase(Duration::from_millis(2), &mut ids).await;
    broker.kill();
    // ~3 s of dispatching against a dead broker: longer than the 1.5 s message timeout.
    dispatch_phase(Duration::from_millis(20), &mut ids).await;
    wait_until(
        Duration::from_secs(20),
        "failed deliveries to reach the spool",
        || async { (pipeline.counters().spooled > 0).then_some(()) },
    )
    .await;
    broker.restart();
    dispatch_phase(Duration::from_millis(2), &mut ids).await;

    let total = (3 * PER_PHASE) as u64;
    wait_until(
        Duration::from_secs(90),
        "every event acknowledged",
        || async {
            pipeline.flush(Duration::from_secs(5));
            let counters = pipeline.counters();

            (counters.published >= total && counters.spool_pending == 0).then_some(())
        },
    )
    .await;
    let counters = pipeline.counters();
    println!("outage counters: {counters:?}; slowest dispatch {slowest:?}");
    assert_eq!(counters.recorded, total);
    assert_eq!(counters.dropped, 0);
    assert!(counters.replayed > 0, "{counters:?}");

    let (events, messages) = read_events(&servers, TOPIC, ids.len(), Duration::from_secs(90)).await;
    let on_topic: HashSet<String> = events.into_keys().collect();
    assert_eq!(
        on_topic, ids,
        "every dispatched event is on the topic ({messages} messages read)"
    );
    // Recording never waited on the dead broker (which would take seconds): a generous bound.
    assert!(
        slowest < Duration::from_millis(500),
        "a dispatch blocked for {slowest:?}"
    );
}

/// Creates `topic` (4 partitions) whose records may take at most `max_bytes`.
async fn topic_with_record_limit(servers: &str, topic: &str, max_bytes: usize) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    let limit = max_bytes.to_string();
    let new = NewTopic::new(topic, 4, TopicReplication::Fixed(1)).set("max.message.bytes", &limit);
    for result in admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap()
    {
        result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_topic_refuses_are_set_aside_and_the_replay_goes_on() {
    const TOPIC: &str = "small-records";
    let data = tempfile::tempdir().unwrap();
    let spool_dir = data.path().join("spool");
    let mut broker = KafkaCluster::start();
    let servers = broker.bootstrap_servers();
    topic_with_record_limit(&servers, TOPIC, 2_048).await;
    let config = common::config(
        &servers,
        &[
            ("KAFKA_OUTCOME_TOPIC", TOPIC),
            ("KAFKA_LINGER_MS", "5"),
            ("KAFKA_MESSAGE_TIMEOUT_MS", "1500"),
            // One record per batch, uncompressed: the topic's limit then applies to each event.
            ("KAFKA_BATCH_SIZE", "1"),
            ("KAFKA_COMPRESSION", "none"),
            ("SPOOL_DIR", spool_dir.to_str().unwrap()),
        ],
    );
    let pipeline = FeedbackPipeline::new(PipelineOptions::from_config(&config, None)).unwrap();

    // Through an outage every event goes to the spool; one in ten is over the topic's limit.
    tokio::task::block_in_place(|| broker.kill());
    let mut ordinary: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in 0..200 {
        let agent = format!("agent_{}", n % 4);
        let mut event = feedback_pipeline::event::OutcomeEvent::builder(&agent, "act")
            .build()
            .unwrap();
        if n % 10 == 0 {
            event.output = Some(json!({ "text": "z".repeat(3_000) }));
        } else {
            ordinary
                .entry(agent)
                .or_default()
                .push(event.event_id.clone());
        }
        pipeline.record_outcome(event).unwrap();
    }
    wait_until(Duration::from_secs(30), "all 200 in the spool", || async {
        (pipeline.counters().spool_pending == 200).then_some(())
    })
    .await;
    tokio::task::block_in_place(|| broker.restart());

    wait_until(Duration::from_secs(90), "the spool replayed", || async {
        tokio::task::block_in_place(|| pipeline.flush(Duration::from_secs(5)));
        (pipeline.counters().spool_pending == 0).then_some(())
    })
    .await;
    let counters = pipeline.counters();
    assert_eq!(
        (counters.published, counters.rejected, counters.dropped),
        (180, 20, 0),
        "{counters:?}"
    );
    let messages = common::topic::read_raw(&servers, TOPIC, 180, Duration::from_secs(30)).await;
    let mut read: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for message in &messages {
        let event =
            feedback_pipeline::event::OutcomeEvent::from_json_slice(&message.payload).unwrap();
        read.entry(event.agent_name)
            .or_default()
            .push(event.event_id);
    }
    assert_eq!(read, ordinary, "every other event once, in order per agent");
    let rejected = std::fs::read_to_string(spool_dir.join("spool.rejected")).unwrap();
    assert_eq!(rejected.lines().count(), 20);
    for line in rejected.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            record["reason"].as_str().unwrap().contains("too large"),
            "{line}"
        );
        assert!(record["payload"].as_str().unwrap().contains("zzzz"));
    }
}
