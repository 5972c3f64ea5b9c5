//! The processor service against a real broker: windows by event time over out-of-order
//! events from several partitions, results on the metrics topic equal to a plain loop, bad
//! input and late events on the dead-letter topic with reasons, the service alive throughout.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::Value;

use common::broker::KafkaCluster;
use common::rng::Rng;
use common::topic::{read_raw, send_all, send_one};
use common::wait_until;
use common::windows::start;
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::processor::Processor;
use feedback_pipeline::processor::QueryDefinition;

const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const WINDOW: i64 = 10_000;

fn event(rng: &mut Rng, n: usize) -> OutcomeEvent {
    let agent = rng.below(6);
    let mut event = OutcomeEvent::builder(format!("agent_{agent}"), "act")
        .status(if rng.below(4) == 0 {
            OutcomeStatus::Failure
        } else {
            OutcomeStatus::Success
        })
        .build()
        .unwrap();
    // 60 s of event time, up to 3 s out of order.
    let time = BASE + (n as i64 * 60_000) / 3_000 - rng.below(3_000) as i64;
    event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
    event.latency_ms = 1.0 + rng.below(10_000) as f64 / 7.0;
    event
}

/// A few thousand kinds of bad input.
fn garbage(rng: &mut Rng, n: usize, good: &[u8]) -> Vec<u8> {
    match n % 6 {
        0 => (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
        1 => good[..rng.below(good.len() as u64) as usize].to_vec(),
        2 => br#"{"event_id":"x","run_id":"r","agent_name":"a","action_type":"t","timestamp":"2026-01-01T00:00:00Z","duration_ms":"slow","latency_ms":1,"status":"success","severity":"info"}"#.to_vec(),
        3 => br#"{"event_id":"x","run_id":"r","action_type":"t","timestamp":"2026-01-01T00:00:00Z","duration_ms":1,"latency_ms":1,"status":"success","severity":"info"}"#.to_vec(),
        4 => br#"{"event_id":"x","run_id":"r","agent_name":"a","action_type":"t","timestamp":"2026-01-01T00:00:00Z","duration_ms":1,"latency_ms":1,"status":"exploded","severity":"info"}"#.to_vec(),
        _ => {
            let mut big = b"{\"event_id\":\"".to_vec();
            big.extend(std::iter::repeat_n(b'x', 1_100_000));
            big.extend(b"\"}");
            big
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_match_a_plain_loop_and_bad_input_goes_to_the_dead_letter_topic() {
    let broker = KafkaCluster::start();
    let servers = broker.bootstrap_servers();
    let sql_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        sql_dir.path().join("per_agent.sql"),
        "SELECT agent_name, COUNT(*) AS n, AVG(latency_ms) AS avg_latency, \
         COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate \
         FROM agent_outcomes WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY agent_name",
    )
    .unwrap();
    let group = format!("processor-{}", uuid::Uuid::new_v4().simple());
    let config = common::config(
        &servers,
        &[
            ("KAFKA_CONSUMER_GROUP", group.as_str()),
            ("PROCESSOR_SQL_DIR", sql_dir.path().to_str().unwrap()),
            ("WINDOW_OUT_OF_ORDER_MS", "4000"),
            ("WINDOW_GRACE_MS", "0"),
            ("WINDOW_IDLE_CLOSE_MS", "1500"),
            // Quiet windows are final once idle: the late event below is late at once.
            ("WINDOW_ALLOWED_LATENESS_MS", "0"),
            ("PROCESSOR_TICK_MS", "50"),
            // Room for the oversized (over 1 MiB) input below.
            ("KAFKA_PROPERTY_MESSAGE_MAX_BYTES", "3000000"),
        ],
    );
    let topics = &config.topics;
    ensure_topics(
        &config.kafka.client_config(&servers),
        &[
            TopicSpec::new(&topics.outcomes, 4),
            TopicSpec::new(&topics.metrics, 1),
            TopicSpec::new(&topics.dead_letters, 1),
        ],
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    // 3000 good events interleaved with 600 bad messages.
    let producer: FutureProducer = config.kafka.producer_config(&servers).create().unwrap();
    let mut rng = Rng(42);
    let mut good = Vec::new();
    let mut sends = Vec::new();
    for n in 0..3_000 {
        let event = event(&mut rng, n);
        let payload = event.to_json_vec().unwrap();
        if n % 5 == 0 {
            let bad = garbage(&mut rng, n / 5, &payload);
            sends.push((event.agent_name.clone(), bad));
        }
        sends.push((event.agent_name.clone(), payload));
        good.push(event);
    }
    send_all(
        &producer,
        &topics.outcomes,
        &sends,
        500,
        Duration::from_secs(10),
    )
    .await;
    let bad_count = sends.len() - good.len();

    let queries = QueryDefinition::load_dir(sql_dir.path()).await.unwrap();
    let processor = Processor::new(&config, &servers, &queries).unwrap();
    let stats = processor.stats();
    let (stop, running) = start(processor);

    // Expected: per (window start, agent): count, latency sum, failures.
    let mut expected: BTreeMap<(i64, String), (u64, f64, u64)> = BTreeMap::new();
    for event in &good {
        let start = event.timestamp.timestamp_millis().div_euclid(WINDOW) * WINDOW;
        let entry = expected
            .entry((start, event.agent_name.clone()))
            .or_default();
        entry.0 += 1;
        entry.1 += event.latency_ms;
        entry.2 += u64::from(event.status == OutcomeStatus::Failure);
    }
    // Every window closes: the last ones by the idle timeout, as no more events come.
    let results = read_raw(
        &servers,
        &topics.metrics,
        expected.len(),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(
        results.len(),
        expected.len(),
        "one record per (window, agent): {:?}",
        stats.snapshot()
    );
    let mut seen = HashMap::new();
    for message in &results {
        let value: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(value["query"], "per_agent");
        let start = chrono::DateTime::parse_from_rfc3339(value["window_start"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let agent = value["agent_name"].as_str().unwrap().to_owned();
        let key = String::from_utf8(message.key.clone().unwrap()).unwrap();
        assert!(
            key.starts_with("per_agent|") && key.ends_with(&agent),
            "{key}"
        );
        let (count, latency_sum, failures) = expected[&(start, agent.clone())];
        assert_eq!(value["n"].as_u64().unwrap(), count, "{value}");
        let avg = value["avg_latency"].as_f64().unwrap();
        assert!((avg - latency_sum / count as f64).abs() < 1e-9, "{value}");
        let rate = value["failure_rate"].as_f64().unwrap();
        assert!(
            (rate - failures as f64 / count as f64).abs() < 1e-12,
            "{value}"
        );
        assert!(
            seen.insert((start, agent), ()).is_none(),
            "emitted once: {value}"
        );
    }

    // A late event: its window closed long ago.
    let mut late = good[0].clone();
    late.event_id = "late-event".into();
    let payload = late.to_json_vec().unwrap();
    send_one(&producer, &topics.outcomes, &late.agent_name, &payload).await;

    let dead = read_raw(
        &servers,
        &topics.dead_letters,
        bad_count + 1,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(dead.len(), bad_count + 1);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for message in &dead {
        let reason = message.headers["dlq.reason"].clone();
        assert!(message.headers.contains_key("dlq.source.offset"));
        assert!(!message.headers["dlq.detail"].is_empty());
        *reasons.entry(reason).or_default() += 1;
    }
    assert_eq!(reasons.get("late"), Some(&1), "{reasons:?}");
    for reason in [
        "malformed_json",
        "wrong_type",
        "missing_field",
        "invalid_value",
        "too_large",
    ] {
        assert!(
            reasons.get(reason).is_some_and(|&n| n > 0),
            "{reason} in {reasons:?}"
        );
    }
    let late_message = dead
        .iter()
        .find(|m| m.headers["dlq.reason"] == "late")
        .unwrap();
    assert_eq!(late_message.payload, payload, "the original bytes are kept");
    let snapshot = wait_until(Duration::from_secs(10), "counters to catch up", || {
        let stats = Arc::clone(&stats);
        async move {
            let s = stats.snapshot();
            (s.dead_letters.values().sum::<u64>() == (bad_count + 1) as u64).then_some(s)
        }
    })
    .await;
    assert_eq!(snapshot.dead_letters_for("late"), 1);
    assert!(!running.is_finished(), "the service is still running");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
