//! The producer library against a real broker: each outcome kind puts exactly one event with
//! the right fields on the outcome topic; a workflow puts one per agent plus its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};

use common::agents::{Behaviour, ScriptedAgent};
use common::broker::KafkaCluster;
use common::topic::read_events;
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
    let mut vars = vec![
        ("KAFKA_OUTCOME_TOPIC", topic),
        ("KAFKA_LINGER_MS", "5"),
        ("SPOOL_DIR", spool.to_str().unwrap()),
    ];
    vars.extend_from_slice(extra);
    let config = common::config(&servers, &vars);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_outputs_go_out_as_previews_and_hold_back_no_other_event() {
    const TOPIC: &str = "big-outputs";
    let broker = KafkaCluster::start();
    let spool = tempfile::tempdir().unwrap();
    let pipeline = kafka_pipeline(&broker, TOPIC, spool.path(), &[]).await;
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    // Outputs of 1.2 MB and 2.5 MB, over librdkafka's 1 000 000-byte message.max.bytes.
    let mut big = Vec::new();
    for (name, bytes) in [("big_1_2mb", 1_200_000), ("big_2_5mb", 2_500_000)] {
        let output = json!({ "text": "x".repeat(bytes) });
        let agent = ScriptedAgent::new(name, Behaviour::Output(output));
        let result = dispatcher
            .dispatch(agent.as_ref(), "act", json!({}), Map::new(), &[])
            .await;
        big.push((result.event_id, bytes));
    }
    let agents: Vec<_> = (0..4)
        .map(|n| ScriptedAgent::new(&format!("agent_{n}"), Behaviour::Succeed))
        .collect();
    let mut sent: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in 0..1_000 {
        let agent = &agents[n % agents.len()];
        let result = dispatcher
            .dispatch(agent.as_ref(), "act", json!({ "n": n }), Map::new(), &[])
            .await;
        sent.entry(agent.name.clone())
            .or_default()
            .push(result.event_id);
    }
    let outcome = tokio::task::block_in_place(|| pipeline.flush(Duration::from_secs(30)));
    let counters = pipeline.counters();
    assert!(outcome.delivered, "{outcome:?} {counters:?}");
    assert_eq!(
        (counters.dropped, counters.spool_pending),
        (0, 0),
        "{counters:?}"
    );

    let servers = broker.bootstrap_servers();
    let messages = common::topic::read_raw(&servers, TOPIC, 1_002, Duration::from_secs(60)).await;
    assert_eq!(messages.len(), 1_002, "every event once");
    let mut read: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut previews = std::collections::HashMap::new();
    for message in &messages {
        assert!(message.payload.len() < 1_000_000);
        let event = OutcomeEvent::from_json_slice(&message.payload).unwrap();
        if event.output_truncated == Some(true) {
            previews.insert(event.event_id.clone(), event.output_original_bytes);
        } else {
            read.entry(event.agent_name)
                .or_default()
                .push(event.event_id);
        }
    }
    assert_eq!(read, sent, "every ordinary event, in order per agent");
    for (id, bytes) in big {
        // The output's JSON text: {"text":"xx..."}.
        assert_eq!(previews[&id], Some(bytes as u64 + 11), "{id}");
    }
}
