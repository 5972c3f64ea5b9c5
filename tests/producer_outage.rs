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
use feedback_pipeline::config::{Config, VarSource};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::producer::{ActionDispatcher, FeedbackPipeline, PipelineOptions};

const TOPIC: &str = "agent-outcomes";
const PER_PHASE: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_during_an_outage_all_reach_the_topic() {
    let data = tempfile::tempdir().unwrap();
    let mut broker = KafkaCluster::start();
    let servers = broker.bootstrap_servers();
    let config = Config::from_source(&VarSource::new([
        ("KAFKA_BOOTSTRAP_SERVERS", servers.as_str()),
        ("KAFKA_LINGER_MS", "5"),
        // Short, so the outage outlasts librdkafka's own retries and the spool is exercised.
        ("KAFKA_MESSAGE_TIMEOUT_MS", "1500"),
        ("SPOOL_DIR", data.path().join("spool").to_str().unwrap()),
    ]))
    .unwrap();
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
