//! Restart and scale-out: after a kill -9 and a restart, and with two instances in one
//! consumer group, the (key → value) results equal those of one uninterrupted instance.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::Value;

use common::broker::TansuBroker;
use common::topic::{read_raw, send_all};
use common::wait_until;
use feedback_pipeline::config::{Config, VarSource};
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::processor::query::QueryDefinition;
use feedback_pipeline::processor::service::Processor;

const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const EVENTS: usize = 3_000;
const QUERY: &str = "SELECT agent_name, COUNT(*) AS n, SUM(latency_ms) AS total_latency, \
    COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate \
    FROM agent_outcomes WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY agent_name";

fn events() -> Vec<OutcomeEvent> {
    let mut state = 7u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    (0..EVENTS)
        .map(|n| {
            let mut event = OutcomeEvent::builder(format!("agent_{}", next(8)), "act")
                .status(if next(5) == 0 {
                    OutcomeStatus::Failure
                } else {
                    OutcomeStatus::Success
                })
                .build()
                .unwrap();
            let time = BASE + (n as i64 * 90_000) / EVENTS as i64 - next(2_000) as i64;
            event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
            event.latency_ms = next(100_000) as f64 / 8.0;
            event
        })
        .collect()
}

struct Setup {
    _broker: TansuBroker,
    servers: String,
    sql_dir: tempfile::TempDir,
    producer: FutureProducer,
}

impl Setup {
    async fn new() -> Self {
        let broker = TansuBroker::start();
        let servers = broker.bootstrap_servers();
        let sql_dir = tempfile::tempdir().unwrap();
        std::fs::write(sql_dir.path().join("per_agent.sql"), QUERY).unwrap();
        let producer = ClientConfigExt::producer(&servers);
        Self {
            _broker: broker,
            servers,
            sql_dir,
            producer,
        }
    }

    fn vars(&self, topic: &str, group: &str, metrics: &str) -> Vec<(String, String)> {
        [
            ("KAFKA_BOOTSTRAP_SERVERS", self.servers.as_str()),
            ("KAFKA_OUTCOME_TOPIC", topic),
            ("KAFKA_METRICS_TOPIC", metrics),
            ("KAFKA_CONSUMER_GROUP", group),
            ("PROCESSOR_SQL_DIR", self.sql_dir.path().to_str().unwrap()),
            ("WINDOW_OUT_OF_ORDER_MS", "3000"),
            ("WINDOW_GRACE_MS", "0"),
            ("WINDOW_IDLE_CLOSE_MS", "10000"),
            ("PROCESSOR_TICK_MS", "50"),
            ("SPOOL_DIR", "off"),
            ("METRICS_ADDR", "127.0.0.1:0"),
            // A killed member is replaced after 6 s instead of librdkafka's default 45 s.
            ("KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "6000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn config(&self, topic: &str, group: &str, metrics: &str) -> Config {
        Config::from_source(&VarSource::new(self.vars(topic, group, metrics))).unwrap()
    }

    async fn topics(&self, names: &[&str]) {
        let specs: Vec<_> = names.iter().map(|n| TopicSpec::new(*n, 4)).collect();
        let config = self.config("x", "x", "x");
        ensure_topics(
            &config.kafka.client_config(&self.servers),
            &specs,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }

    async fn produce(&self, topic: &str, events: &[OutcomeEvent]) {
        let records: Vec<_> = events
            .iter()
            .map(|e| (e.agent_name.clone(), e.to_json_vec().unwrap()))
            .collect();
        send_all(
            &self.producer,
            topic,
            &records,
            500,
            Duration::from_secs(10),
        )
        .await;
    }

    /// Runs one in-process instance over everything on `topic`; returns key → value.
    async fn reference(&self, topic: &str, events: &[OutcomeEvent]) -> BTreeMap<String, Value> {
        let metrics = format!("{topic}-reference");
        self.topics(&[&metrics]).await;
        let config = self.config(topic, &format!("{topic}-reference"), &metrics);
        let queries = QueryDefinition::load_dir(self.sql_dir.path())
            .await
            .unwrap();
        let processor = Processor::new(&config, &self.servers, &queries).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(processor.run(async move {
            let _ = stopped.await;
        }));
        let expected = expected_keys(events);
        let results = self.results(&metrics, expected.len()).await;
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        let keys: BTreeSet<_> = results.keys().cloned().collect();
        assert_eq!(keys.len(), expected.len(), "one result per (window, agent)");
        results
    }

    /// Reads `metrics` until `count` distinct keys were seen; every key's values must agree.
    async fn results(&self, metrics: &str, count: usize) -> BTreeMap<String, Value> {
        let mut by_key: BTreeMap<String, Value> = BTreeMap::new();
        let messages = wait_until(
            Duration::from_secs(120),
            "every window's result",
            || async {
                let messages =
                    read_raw(&self.servers, metrics, usize::MAX, Duration::from_secs(2)).await;
                let keys: BTreeSet<_> = messages.iter().map(|m| m.key.clone()).collect();
                (keys.len() >= count).then_some(messages)
            },
        )
        .await;
        for message in messages {
            let key = String::from_utf8(message.key.unwrap()).unwrap();
            let value: Value = serde_json::from_slice(&message.payload).unwrap();
            if let Some(previous) = by_key.insert(key.clone(), value.clone()) {
                assert_eq!(
                    previous, value,
                    "a re-emitted result must not change: {key}"
                );
            }
        }
        by_key
    }
}

/// (window, agent) pairs the data covers: 10 s windows every 5 s.
fn expected_keys(events: &[OutcomeEvent]) -> BTreeSet<(i64, String)> {
    let mut keys = BTreeSet::new();
    for event in events {
        let t = event.timestamp.timestamp_millis();
        let last = t.div_euclid(5_000) * 5_000;
        for start in [last - 5_000, last] {
            keys.insert((start, event.agent_name.clone()));
        }
    }
    keys
}

struct ClientConfigExt;
impl ClientConfigExt {
    fn producer(servers: &str) -> FutureProducer {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", servers)
            .set("linger.ms", "5")
            // One record per batch: tansu 0.6 answers a fetch from the middle of a batch with
            // the next batch, so a restart at a committed offset inside a batch would skip
            // the rest of it (Kafka returns the whole batch and the client skips ahead).
            .set("batch.num.messages", "1")
            .create()
            .unwrap()
    }
}

fn spawn_serve(vars: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .arg("serve")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "RUST_LOG",
            std::env::var("SERVE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting feedback-pipeline serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_and_restart_gives_the_results_of_an_uninterrupted_run() {
    let setup = Setup::new().await;
    let topic = "outcomes-restart";
    let metrics = "metrics-restart";
    setup.topics(&[topic, metrics]).await;
    let events = events();
    let (first, rest) = events.split_at(EVENTS / 3);

    // The crashing run: a third of the events; once windows were emitted and offsets
    // committed, the rest is produced and the process is killed (SIGKILL) mid-stream.
    setup.produce(topic, first).await;
    let vars = setup.vars(topic, "restart-group", metrics);
    let mut serve = spawn_serve(&vars);
    // Watch the checkpoint topic (written before each commit) rather than the group itself:
    // a client in the group, even one only fetching offsets, disturbs the group on tansu.
    wait_until(Duration::from_secs(60), "a first checkpoint", || async {
        let saved = read_raw(
            &setup.servers,
            "restart-group-checkpoints",
            1,
            Duration::from_millis(300),
        )
        .await;
        (!saved.is_empty()).then_some(())
    })
    .await;
    setup.produce(topic, rest).await;
    serve.kill().unwrap(); // no shutdown, no final commit
    serve.wait().unwrap();
    let mut serve = spawn_serve(&vars);
    let expected = expected_keys(&events);
    let crashed = setup.results(metrics, expected.len()).await;
    serve.kill().unwrap();
    serve.wait().unwrap();

    let reference = setup.reference(topic, &events).await;
    assert_eq!(
        crashed.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "same windows and groups"
    );
    for (key, value) in &reference {
        let mut value = value.clone();
        let mut other = crashed[key].clone();
        // Identical apart from nothing: compare the whole record.
        value.as_object_mut().unwrap().remove("__");
        other.as_object_mut().unwrap().remove("__");
        assert_eq!(other, value, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_give_the_results_of_one() {
    let setup = Setup::new().await;
    let topic = "outcomes-pair";
    let metrics = "metrics-pair";
    setup.topics(&[topic, metrics]).await;
    let config = setup.config(topic, "pair-group", metrics);
    let queries = QueryDefinition::load_dir(setup.sql_dir.path())
        .await
        .unwrap();
    let mut stops = Vec::new();
    let mut runs = Vec::new();
    let mut stats = Vec::new();
    for _ in 0..2 {
        let processor = Processor::new(&config, &setup.servers, &queries).unwrap();
        stats.push(processor.stats());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        runs.push(tokio::spawn(processor.run(async move {
            let _ = stopped.await;
        })));
        // Let the first one join before the second, as a rolling start would.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_until(
        Duration::from_secs(60),
        "both instances to hold partitions",
        || async {
            stats
                .iter()
                .all(|s| s.snapshot().rebalances >= 1)
                .then_some(())
        },
    )
    .await;
    let events = events();
    setup.produce(topic, &events).await;
    let expected = expected_keys(&events);
    let together = setup.results(metrics, expected.len()).await;
    let consumed: Vec<u64> = stats.iter().map(|s| s.snapshot().consumed).collect();
    for stop in stops {
        let _ = stop.send(());
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let reference = setup.reference(topic, &events).await;
    assert_eq!(
        together, reference,
        "two instances = one (consumed per instance: {consumed:?})"
    );
}
