//! A windowed run over a topic and its (key -> value) results, for the tests that compare a
//! disturbed run (a crash, a second instance, a broker failure) with an uninterrupted one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::Value;

use super::rng::Rng;
use super::topic::{read_raw, send_all};
use super::wait_until;
use feedback_pipeline::config::Config;
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::metrics::Metrics;
use feedback_pipeline::metrics::ProcessorStats;
use feedback_pipeline::processor::QueryDefinition;
use feedback_pipeline::processor::{Processor, ProcessorError};

/// 2026-01-01T00:00:00Z: the events' event time starts here and spans 90 s.
const BASE: i64 = 1_767_225_600_000;
/// The query every run computes: hopping windows per agent.
pub const QUERY: &str = "SELECT agent_name, COUNT(*) AS n, SUM(latency_ms) AS total_latency, \
    COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate \
    FROM agent_outcomes WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY agent_name";

/// `count` events of 8 agents over 90 s of event time, up to 2 s out of order (seeded).
pub fn events(count: usize) -> Vec<OutcomeEvent> {
    let mut rng = Rng(7);
    (0..count)
        .map(|n| {
            let mut event = OutcomeEvent::builder(format!("agent_{}", rng.below(8)), "act")
                .status(if rng.below(5) == 0 {
                    OutcomeStatus::Failure
                } else {
                    OutcomeStatus::Success
                })
                .build()
                .unwrap();
            let time = BASE + (n as i64 * 90_000) / count as i64 - rng.below(2_000) as i64;
            event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
            event.latency_ms = rng.below(100_000) as f64 / 8.0;
            event
        })
        .collect()
}

/// A one-node cluster of the caller's own with `topics` made, and a run against it.
pub async fn own_cluster(topics: &[&str]) -> (super::broker::KafkaCluster, WindowRun) {
    super::init_logs();
    let broker = super::broker::KafkaCluster::start();
    let run = WindowRun::new(&broker.bootstrap_servers());
    run.topics(topics).await;
    (broker, run)
}

/// Every record on `metrics` now, as each key's latest value, and how many records carried
/// the `fp.update` header (updates of a window emitted before).
pub async fn latest_results(servers: &str, metrics: &str) -> (BTreeMap<String, Value>, usize) {
    let mut latest = BTreeMap::new();
    let mut updates = 0;
    for message in read_raw(servers, metrics, usize::MAX, Duration::from_secs(3)).await {
        let key = String::from_utf8(message.key.unwrap()).unwrap();
        latest.insert(key, serde_json::from_slice(&message.payload).unwrap());
        updates += usize::from(
            message
                .headers
                .get("fp.update")
                .is_some_and(|v| v == "true"),
        );
    }
    (latest, updates)
}

/// A cluster's address, the query's directory and a producer with ordinary batching.
pub struct WindowRun {
    /// The cluster's bootstrap servers.
    pub servers: String,
    /// Holds [`QUERY`] as `per_agent.sql`.
    pub sql_dir: tempfile::TempDir,
    producer: FutureProducer,
}

impl WindowRun {
    /// A run against `servers`.
    pub fn new(servers: &str) -> Self {
        let servers = servers.to_owned();
        let sql_dir = tempfile::tempdir().unwrap();
        std::fs::write(sql_dir.path().join("per_agent.sql"), QUERY).unwrap();
        let producer = batching_producer(&servers);
        Self {
            servers,
            sql_dir,
            producer,
        }
    }

    /// The processor's variables for `topic`, `group` and `metrics`.
    pub fn vars(&self, topic: &str, group: &str, metrics: &str) -> Vec<(String, String)> {
        std::iter::once(("KAFKA_BOOTSTRAP_SERVERS", self.servers.as_str()))
            .chain(self.settings(topic, group, metrics))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// [`Self::vars`] without the servers, which [`super::config`] sets first.
    fn settings<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        metrics: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("KAFKA_OUTCOME_TOPIC", topic),
            ("KAFKA_METRICS_TOPIC", metrics),
            ("KAFKA_CONSUMER_GROUP", group),
            ("PROCESSOR_SQL_DIR", self.sql_dir.path().to_str().unwrap()),
            ("WINDOW_OUT_OF_ORDER_MS", "3000"),
            ("WINDOW_GRACE_MS", "0"),
            ("WINDOW_IDLE_CLOSE_MS", "10000"),
            // Short, so quiet partitions commit through their last message soon.
            ("WINDOW_ALLOWED_LATENESS_MS", "2000"),
            ("PROCESSOR_TICK_MS", "50"),
            ("SPOOL_DIR", "off"),
            ("METRICS_ADDR", "127.0.0.1:0"),
            // A killed member is replaced after 6 s instead of librdkafka's default 45 s.
            ("KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "6000"),
        ]
    }

    /// [`Self::vars`] as a configuration.
    pub fn config(&self, topic: &str, group: &str, metrics: &str) -> Config {
        self.config_with(topic, group, metrics, &[])
    }

    /// [`Self::vars`] with `extra` variables over them, as a configuration.
    fn config_with(
        &self,
        topic: &str,
        group: &str,
        metrics: &str,
        extra: &[(&str, &str)],
    ) -> Config {
        let mut vars = self.settings(topic, group, metrics);
        vars.extend_from_slice(extra);
        super::config(&self.servers, &vars)
    }

    /// Creates `names` with 4 partitions each.
    pub async fn topics(&self, names: &[&str]) {
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

    /// Produces `events` keyed by agent, every acknowledgement awaited.
    pub async fn produce(&self, topic: &str, events: &[OutcomeEvent]) {
        let records: Vec<_> = events
            .iter()
            .map(|e| (e.agent_name.clone(), e.to_json_vec().unwrap()))
            .collect();
        send_all(
            &self.producer,
            topic,
            &records,
            records.len(),
            Duration::from_secs(30),
        )
        .await;
    }

    /// Runs one in-process instance over everything on `topic`; returns key → value.
    pub async fn reference(&self, topic: &str, events: &[OutcomeEvent]) -> BTreeMap<String, Value> {
        let metrics = format!("{topic}-reference");
        self.topics(&[&metrics]).await;
        let running = self
            .spawn(topic, &format!("{topic}-reference"), &metrics)
            .await;
        let expected = expected_keys(events);
        let results = self.results(&metrics, expected.len()).await;
        running.stop().await;
        let keys: BTreeSet<_> = results.keys().cloned().collect();
        assert_eq!(keys.len(), expected.len(), "one result per (window, agent)");
        results
    }

    /// Reads `metrics` until `count` distinct keys were seen; every key's values must agree.
    pub async fn results(&self, metrics: &str, count: usize) -> BTreeMap<String, Value> {
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

/// The task of a processor started by [`start`]: its `run` result.
pub type Running = tokio::task::JoinHandle<Result<(), ProcessorError>>;

/// Runs `processor` on a tokio task until the returned sender is used (or dropped).
pub fn start(processor: Processor) -> (tokio::sync::oneshot::Sender<()>, Running) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(processor.run(async move {
        let _ = stopped.await;
    }));
    (stop, run)
}

/// An in-process processor on a tokio task, with its counters and metrics.
pub struct RunningProcessor {
    stop: tokio::sync::oneshot::Sender<()>,
    task: Running,
    /// Its counters.
    pub stats: std::sync::Arc<ProcessorStats>,
    /// Everything it exports on `/metrics`.
    pub metrics: std::sync::Arc<Metrics>,
}

impl RunningProcessor {
    /// Stops it; panics if it had failed.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    /// The partitions it owns, as it exports them.
    pub fn assigned_partitions(&self) -> i64 {
        self.metrics
            .render()
            .lines()
            .find_map(|line| {
                line.strip_prefix("feedback_pipeline_processor_assigned_partitions ")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    /// The consumer lag it exports, added up over `topic`'s partitions, once it exports one
    /// for each of `partitions`.
    pub fn consumer_lag(&self, topic: &str, partitions: usize) -> Option<i64> {
        let prefix = "feedback_pipeline_processor_consumer_lag_messages{";
        let topic_label = format!("topic=\"{topic}\"");
        let lags: Vec<i64> = self
            .metrics
            .render()
            .lines()
            .filter(|line| line.starts_with(prefix) && line.contains(&topic_label))
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        (lags.len() >= partitions).then(|| lags.iter().sum())
    }
}

impl WindowRun {
    /// Starts a processor on `topic` in `group`, writing results to `metrics`.
    pub async fn spawn(&self, topic: &str, group: &str, metrics: &str) -> RunningProcessor {
        self.spawn_with(topic, group, metrics, &[]).await
    }

    /// [`Self::spawn`] with `extra` variables over [`Self::vars`].
    pub async fn spawn_with(
        &self,
        topic: &str,
        group: &str,
        metrics: &str,
        extra: &[(&str, &str)],
    ) -> RunningProcessor {
        self.spawn_alerting(topic, group, metrics, extra, Vec::new())
            .await
    }

    /// [`Self::spawn_with`], evaluating alert `rules` on its windows.
    pub async fn spawn_alerting(
        &self,
        topic: &str,
        group: &str,
        metrics: &str,
        extra: &[(&str, &str)],
        rules: Vec<feedback_pipeline::alerts::AlertRule>,
    ) -> RunningProcessor {
        let config = self.config_with(topic, group, metrics, extra);
        let queries = QueryDefinition::load_dir(&config.processor.sql_dir)
            .await
            .unwrap();
        let processor = Processor::new(&config, &self.servers, &queries)
            .unwrap()
            .with_alerts(rules);
        let (stats, exported) = (processor.stats(), processor.metrics());
        let (stop, task) = start(processor);
        RunningProcessor {
            stop,
            task,
            stats,
            metrics: exported,
        }
    }
}

/// (window, agent) pairs the data covers: 10 s windows every 5 s.
pub fn expected_keys(events: &[OutcomeEvent]) -> BTreeSet<(i64, String)> {
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

/// A producer batching as users' producers do: thousands of records per batch, linger on,
/// idempotent (a retry across a leader change writes nothing twice).
fn batching_producer(servers: &str) -> FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        // A restart then resumes at a committed offset inside a batch of thousands, which the
        // broker returns whole and the client skips into.
        .set("enable.idempotence", "true")
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("batch.size", "4000000")
        .create()
        .unwrap()
}

/// [`QUERY`]'s rows computed by a plain loop over `events`: result key → (n, total latency,
/// failure rate).
pub fn plain_loop(events: &[OutcomeEvent]) -> BTreeMap<String, (i64, f64, f64)> {
    use feedback_pipeline::window::millis_to_text;
    let mut sums: BTreeMap<String, (i64, f64, i64)> = BTreeMap::new();
    for event in events {
        let t = event.timestamp.timestamp_millis();
        let last = t.div_euclid(5_000) * 5_000;
        for start in [last - 5_000, last] {
            let key = format!("per_agent|{}|{}", millis_to_text(start), event.agent_name);
            let entry = sums.entry(key).or_default();
            entry.0 += 1;
            entry.1 += event.latency_ms;
            entry.2 += i64::from(event.status == OutcomeStatus::Failure);
        }
    }
    sums.into_iter()
        .map(|(key, (n, total, failures))| (key, (n, total, failures as f64 / n as f64)))
        .collect()
}

/// Asserts that `results` (from [`WindowRun::results`]) are [`plain_loop`]'s rows over
/// `events`, key for key: counts exact, sums and rates to 1e-9.
pub fn assert_plain_loop(results: &BTreeMap<String, Value>, events: &[OutcomeEvent]) {
    if let Some(mismatch) = plain_loop_mismatch(results, events) {
        panic!("{mismatch}");
    }
}

/// The first way `results` differ from [`plain_loop`]'s rows over `events`, if any.
pub fn plain_loop_mismatch(
    results: &BTreeMap<String, Value>,
    events: &[OutcomeEvent],
) -> Option<String> {
    let expected = plain_loop(events);
    if !results.keys().eq(expected.keys()) {
        let missing = expected
            .keys()
            .filter(|k| !results.contains_key(*k))
            .count();
        let extra = results
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .count();
        return Some(format!(
            "one row per (window, agent): {missing} missing, {extra} unexpected"
        ));
    }
    for (key, (n, total, rate)) in expected {
        let row = &results[&key];
        if row["n"].as_i64() != Some(n) {
            return Some(format!("{key}: n {} vs {n}", row["n"]));
        }
        for (field, want) in [("total_latency", total), ("failure_rate", rate)] {
            let got = row[field].as_f64().unwrap_or(f64::NAN);
            let close = (got - want).abs() <= 1e-9 * want.abs().max(1.0);
            if !close {
                return Some(format!("{key} {field}: {got} vs {want}"));
            }
        }
    }
    None
}
