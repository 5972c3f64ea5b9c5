//! The producer library against a real broker: each outcome kind puts exactly one event with
//! the right fields on the outcome topic; a workflow puts one per agent plus its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};

use common::agents::{Behaviour, ScriptedAgent};
use common::broker::KafkaCluster;
use common::topic::read_events;
use feedback_pipeline::config::{Config, VarSource};
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::producer::{
    ActionDispatcher, Agent, FeedbackPipeline, OrchestrationDispatcher, PipelineOptions,
};

/// A pipeline publishing to `topic` (created with 4 partitions), with `extra` settings.
async fn kafka_pipeline(
    broker: &KafkaCluster,
    topic: &str,
    spool: &std::path::Path,
    extra: &[(&str, &str)],
) -> Arc<FeedbackPipeline> {
    let servers = broker.bootstrap_servers();
    let base = [
        ("KAFKA_BOOTSTRAP_SERVERS", servers.as_str()),
        ("KAFKA_OUTCOME_TOPIC", topic),
        ("KAFKA_LINGER_MS", "5"),
        ("SPOOL_DIR", spool.to_str().unwrap()),
    ];
    let config = Config::from_source(&VarSource::new(base.iter().chain(extra).copied())).unwrap();
    ensure_topics(
        &config.kafka.client_config(&servers),
        &[TopicSpec::new(topic, 4)],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    Arc::new(FeedbackPipeline::new(PipelineOptions::from_config(&config, None)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_kind_puts_one_event_on_the_topic() {
    let broker = KafkaCluster::start();
    let spool = tempfile::tempdir().unwrap();
    let pipeline = kafka_pipeline(&broker, "agent-outcomes", spool.path(), &[]).await;
    let dispatcher =
        Arc::new(ActionDispatcher::new(pipeline.clone()).with_timeout(Duration::from_millis(200)));

    let cases = [
        (
            "success_agent",
            Behaviour::Succeed,
            OutcomeStatus::Success,
            None,
        ),
        (
            "failure_agent",
            Behaviour::Fail,
            OutcomeStatus::Failure,
            Some("ValueError"),
        ),
        (
            "panic_agent",
            Behaviour::Panic,
            OutcomeStatus::Failure,
            Some("panic"),
        ),
        (
            "timeout_agent",
            Behaviour::Sleep(Duration::from_secs(30)),
            OutcomeStatus::Timeout,
            Some("Timeout"),
        ),
    ];
    let mut expected = Vec::new();
    for (name, behaviour, status, error_type) in cases {
        let agent = ScriptedAgent::new(name, behaviour);
        let result = dispatcher
            .dispatch(agent.as_ref(), "act", json!({"n": 1}), Map::new(), &["t"])
            .await;
        assert_eq!(result.status, status, "{name}");
        expected.push((result.event_id, name, status, error_type));
    }
    // Cancellation: the dispatch future is dropped while the agent sleeps.
    let sleeper = ScriptedAgent::new("cancelled_agent", Behaviour::Sleep(Duration::from_secs(30)));
    let no_timeout = ActionDispatcher::new(pipeline.clone());
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        no_timeout.dispatch(sleeper.as_ref(), "act", json!({}), Map::new(), &[]),
    )
    .await;
    assert!(dropped.is_err());
    let cancelled = pipeline.get_recent_events(1, Some(OutcomeStatus::Cancelled), None);
    expected.push((
        cancelled[0].event_id.clone(),
        "cancelled_agent",
        OutcomeStatus::Cancelled,
        Some("Cancelled"),
    ));

    assert!(pipeline.flush(Duration::from_secs(20)).delivered);
    let (events, messages) = read_events(
        &broker.bootstrap_servers(),
        "agent-outcomes",
        5,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        (events.len(), messages),
        (5, 5),
        "exactly one event per dispatch"
    );
    for (event_id, name, status, error_type) in expected {
        let event = &events[&event_id];
        assert_eq!(event.agent_name, name);
        assert_eq!(event.agent_type.as_deref(), Some("scripted"));
        assert_eq!(event.status, status, "{name}");
        assert_eq!(event.error_type.as_deref(), error_type, "{name}");
        assert_eq!(
            event.input_tokens,
            Some(100),
            "{name}: usage travels with the event"
        );
    }
    let counters = pipeline.counters();
    assert_eq!(
        (counters.recorded, counters.published, counters.dropped),
        (5, 5, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_puts_one_event_per_agent_plus_its_own_sharing_ids() {
    let broker = KafkaCluster::start();
    let spool = tempfile::tempdir().unwrap();
    let pipeline = kafka_pipeline(&broker, "workflow-outcomes", spool.path(), &[]).await;
    let orchestrator = OrchestrationDispatcher::new(ActionDispatcher::new(pipeline.clone()));
    let agents: Vec<Arc<dyn Agent>> = vec![
        ScriptedAgent::new("react_agent", Behaviour::Succeed),
        ScriptedAgent::new("evaluator_agent", Behaviour::Succeed),
        ScriptedAgent::new("writer_agent", Behaviour::Succeed),
    ];
    let result = orchestrator
        .execute_workflow(&agents, "Process compliance report", &["compliance"])
        .await;
    assert!(pipeline.flush(Duration::from_secs(20)).delivered);

    let (events, _) = read_events(
        &broker.bootstrap_servers(),
        "workflow-outcomes",
        4,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(events.len(), 4);
    for event in events.values() {
        assert_eq!(
            event.workflow_id.as_deref(),
            Some(result.workflow_id.as_str())
        );
        assert_eq!(
            event.correlation_id.as_deref(),
            Some(result.correlation_id.as_str())
        );
        assert_eq!(event.tags.as_deref(), Some(&["compliance".to_owned()][..]));
    }
    let workflow = &events[&result.event_id];
    assert_eq!(workflow.action_type, "workflow");
    assert_eq!(workflow.duration_ms, result.duration_ms);
    for step in &result.outputs {
        assert_eq!(events[&step.event_id].agent_name, step.agent);
    }
}

/// A burst much larger than the queue, with the broker up: callers wait for room instead of
/// spooling, so nothing goes through the disk and every event arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_queue_is_paced_to_the_broker_not_spooled() {
    const BURST: usize = 3_000;
    let broker = KafkaCluster::start();
    let spool = tempfile::tempdir().unwrap();
    let pipeline = kafka_pipeline(
        &broker,
        "burst-outcomes",
        spool.path(),
        &[
            ("PIPELINE_QUEUE_CAPACITY", "16"),
            // The longest allowed: far longer than the broker needs to take 16 events.
            ("PIPELINE_ENQUEUE_TIMEOUT_MS", "250"),
        ],
    )
    .await;
    let recording = pipeline.clone();
    tokio::task::spawn_blocking(move || {
        for n in 0..BURST {
            let event = OutcomeEvent::builder(format!("burst_agent_{}", n % 7), "act")
                .build()
                .unwrap();
            recording.record_outcome(event).unwrap();
        }
    })
    .await
    .unwrap();
    assert!(pipeline.flush(Duration::from_secs(30)).delivered);
    let counters = pipeline.counters();
    assert_eq!(
        (
            counters.recorded,
            counters.published,
            counters.spooled,
            counters.dropped
        ),
        (BURST as u64, BURST as u64, 0, 0),
        "{counters:?}"
    );
    let (events, messages) = read_events(
        &broker.bootstrap_servers(),
        "burst-outcomes",
        BURST,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!((events.len(), messages), (BURST, BURST));
}
