//! The processor against what a hostile or broken producer sends, on a real broker: clock
//! skew of millennia, a message far over the producer's limit that compresses small. Good
//! events around them keep their exact results, commits keep moving, a restart resumes.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::broker::KafkaCluster;
use common::hostile::{expected_reason, hostile, oversized};
use common::rng::Rng;
use common::topic::{committed_offsets, read_raw, send_all};
use common::wait_until;
use common::windows::{WindowRun, assert_plain_loop, events, expected_keys, own_cluster};
use feedback_pipeline::event::OutcomeEvent;

const OUTCOMES: &str = "hostile-outcomes";
const METRICS: &str = "hostile-metrics";
const DEAD_LETTERS: &str = "agent-outcomes-dlq";

/// An ordinary event of `react_agent` with `timestamp` as given (any text).
fn dated(timestamp: &str) -> Vec<u8> {
    let event = OutcomeEvent::builder("react_agent", "reason")
        .build()
        .unwrap();
    let mut json: Value = serde_json::from_slice(&event.to_json_vec().unwrap()).unwrap();
    json["timestamp"] = Value::String(timestamp.to_owned());
    serde_json::to_vec(&json).unwrap()
}

/// A cluster of its own, with the topics made.
async fn setup() -> (KafkaCluster, WindowRun) {
    own_cluster(&[OUTCOMES, METRICS, DEAD_LETTERS]).await
}

/// Waits until `group` has committed `total` offsets over the outcome topic.
async fn commits_reach(run: &WindowRun, group: &str, total: i64) {
    wait_until(
        Duration::from_secs(60),
        "commits through the last message",
        || async { (committed_offsets(&run.servers, group, OUTCOMES, 4) == total).then_some(()) },
    )
    .await;
}

/// Where [`events`] start: 2026-01-01T00:00:00Z.
fn later_base() -> i64 {
    1_767_225_600_000
}

fn records(payloads: &[Vec<u8>], key: &str) -> Vec<(String, Vec<u8>)> {
    payloads
        .iter()
        .map(|p| (key.to_owned(), p.clone()))
        .collect()
}

fn good_records(events: &[OutcomeEvent]) -> Vec<(String, Vec<u8>)> {
    events
        .iter()
        .map(|e| (e.agent_name.clone(), e.to_json_vec().unwrap()))
        .collect()
}

fn plain_producer(servers: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("linger.ms", "20");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_clocks_neither_stall_the_processor_nor_make_good_events_late() {
    let (_broker, run) = setup().await;
    let two_hours_ahead = (Utc::now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    // 1970 first: on its partition it comes before every good event, so its window is open.
    let hostile = [
        dated("1970-01-01T00:00:00Z"),
        dated("9999-12-31T23:59:59Z"),
        dated("+262143-01-01T00:00:00Z"),
        dated(&two_hours_ahead),
    ];
    let good = events(40_000);
    let producer = plain_producer(&run.servers, &[]);
    for (block, payload) in good.chunks(10_000).zip(&hostile) {
        let timeout = Duration::from_secs(30);
        send_all(
            &producer,
            OUTCOMES,
            &records(std::slice::from_ref(payload), "react_agent"),
            1,
            timeout,
        )
        .await;
        send_all(&producer, OUTCOMES, &good_records(block), 10_000, timeout).await;
    }
    let counted: Vec<OutcomeEvent> = hostile
        .iter()
        .filter(|p| expected_reason(p).is_none())
        .map(|p| OutcomeEvent::from_json_slice(p).unwrap())
        .chain(good.iter().cloned())
        .collect();
    let rejected: Vec<String> = hostile.iter().filter_map(|p| expected_reason(p)).collect();
    assert_eq!(rejected.len(), 3, "only the 1970 event is a good one");

    let group = "hostile-clocks";
    let processor = run.spawn(OUTCOMES, group, METRICS).await;
    let results = run.results(METRICS, expected_keys(&counted).len()).await;
    assert_plain_loop(&results, &counted);
    let letters = read_raw(&run.servers, DEAD_LETTERS, 3, Duration::from_secs(30)).await;
    let mut reasons: Vec<_> = letters
        .iter()
        .map(|l| l.headers["dlq.reason"].clone())
        .collect();
    reasons.sort();
    let mut wanted = rejected.clone();
    wanted.sort();
    assert_eq!(
        reasons, wanted,
        "each hostile message dead-lettered with its reason"
    );
    let snapshot = processor.stats.snapshot();
    assert_eq!(
        snapshot.dead_letters_for("late"),
        0,
        "no good event is late"
    );
    assert_eq!(snapshot.dead_letters_for("future_timestamp"), 2);
    let total = (good.len() + hostile.len()) as i64;
    commits_reach(&run, group, total).await;
    processor.stop().await;

    // A restart in the same group processes new events (dated from now on) at once.
    let restarted = run.spawn(OUTCOMES, group, METRICS).await;
    let mut later = events(2_000);
    let now = Utc::now().timestamp_millis();
    for event in &mut later {
        let offset = (event.timestamp.timestamp_millis() - later_base()) / 3;
        event.timestamp = Utc.timestamp_millis_opt(now + offset).unwrap();
    }
    send_all(
        &producer,
        OUTCOMES,
        &good_records(&later),
        2_000,
        Duration::from_secs(30),
    )
    .await;
    let new_keys = expected_keys(&later).len();
    let all = run
        .results(METRICS, expected_keys(&counted).len() + new_keys)
        .await;
    let fresh: std::collections::BTreeMap<_, _> = all
        .into_iter()
        .filter(|(key, _)| !results.contains_key(key))
        .collect();
    assert_plain_loop(&fresh, &later);
    assert_eq!(restarted.stats.snapshot().dead_letters_for("late"), 0);
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_message_is_dead_lettered_as_a_bounded_prefix_and_commits_go_on() {
    let (_broker, run) = setup().await;
    // 5 MB of JSON that gzip makes small: the broker takes it, our producer could not resend it.
    let mut huge = br#"{"event_id":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 5_000_000));
    huge.extend(br#""}"#);
    let producer = plain_producer(
        &run.servers,
        &[
            ("compression.type", "gzip"),
            ("message.max.bytes", "6000000"),
        ],
    );
    let timeout = Duration::from_secs(30);
    send_all(
        &producer,
        OUTCOMES,
        &records(std::slice::from_ref(&huge), "react_agent"),
        1,
        timeout,
    )
    .await;
    let good = events(2_000);
    send_all(&producer, OUTCOMES, &good_records(&good), 2_000, timeout).await;

    let group = "hostile-size";
    let processor = run.spawn(OUTCOMES, group, METRICS).await;
    let results = run.results(METRICS, expected_keys(&good).len()).await;
    assert_plain_loop(&results, &good);
    let letters = read_raw(&run.servers, DEAD_LETTERS, 1, Duration::from_secs(30)).await;
    let letter = letters.first().expect("the huge message is dead-lettered");
    assert_eq!(letter.headers["dlq.reason"], "too_large");
    assert_eq!(letter.headers["dlq.truncated"], "true");
    assert_eq!(letter.headers["dlq.original.size"], huge.len().to_string());
    let digest: String = Sha256::digest(&huge)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(letter.headers["dlq.original.sha256"], digest);
    assert!(letter.payload.len() <= 64 * 1024 && huge.starts_with(&letter.payload));
    let total = (good.len() + 1) as i64;
    commits_reach(&run, group, total).await;
    let keys: BTreeSet<_> = results.keys().collect();
    assert_eq!(keys.len(), expected_keys(&good).len());
    assert_eq!(processor.stats.send_failures_for(DEAD_LETTERS), 0);
    processor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_messages_each_get_their_reason_and_good_events_stay_exact() {
    let (_broker, run) = setup().await;
    // Seeded: a failure reproduces with the same messages.
    let mut rng = Rng(0xF0_2251);
    let good = events(10_000);
    let mut sent = Vec::new();
    for (n, event) in good.iter().enumerate() {
        let bad = if n % 500 == 7 {
            oversized(event)
        } else {
            hostile(&mut rng, n as u64, event)
        };
        sent.push((event.agent_name.clone(), bad));
        sent.push((event.agent_name.clone(), event.to_json_vec().unwrap()));
    }
    let mut wanted: std::collections::BTreeMap<String, u64> = Default::default();
    let mut counted = Vec::new();
    for (_, payload) in &sent {
        match expected_reason(payload) {
            Some(reason) => *wanted.entry(reason).or_default() += 1,
            None => counted.push(OutcomeEvent::from_json_slice(payload).unwrap()),
        }
    }
    let bad: u64 = wanted.values().sum();
    assert!(
        bad >= 9_000 && wanted.len() >= 7,
        "the mix covers many reasons: {wanted:?}"
    );
    // Room for the 2 MB messages; gzip makes them small for the broker.
    let producer = plain_producer(
        &run.servers,
        &[
            ("compression.type", "gzip"),
            ("message.max.bytes", "3000000"),
        ],
    );
    send_all(&producer, OUTCOMES, &sent, 2_000, Duration::from_secs(60)).await;

    let group = "hostile-fuzz";
    let processor = run.spawn(OUTCOMES, group, METRICS).await;
    let results = run.results(METRICS, expected_keys(&counted).len()).await;
    assert_plain_loop(&results, &counted);
    let snapshot = wait_until(Duration::from_secs(60), "every dead letter", || async {
        let snapshot = processor.stats.snapshot();
        (snapshot.dead_letters.values().sum::<u64>() >= bad).then_some(snapshot)
    })
    .await;
    let got: std::collections::BTreeMap<String, u64> = snapshot
        .dead_letters
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| (reason.to_string(), *n))
        .collect();
    assert_eq!(got, wanted, "dead letters per reason equal what was sent");
    let letters = read_raw(
        &run.servers,
        DEAD_LETTERS,
        bad as usize,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        letters.len() as u64,
        bad,
        "every bad message is on the dead-letter topic"
    );
    commits_reach(&run, group, sent.len() as i64).await;
    processor.stop().await;
}
