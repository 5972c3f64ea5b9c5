//! Scale-out for every query: instances in one consumer group give, key for key, the
//! results one instance computes over all the events, also for the queries whose groups
//! span partitions (merged through the repartition topic), through a crash and a join.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::Value;

use common::broker::KafkaCluster;
use common::rng::Rng;
use common::serve::spawn_serve;
use common::topic::{committed_metadata, committed_offsets};
use common::windows::{RunningProcessor, WindowRun, latest_results};
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::processor::merge::{MergeCheckpoint, repartition_topic};
use feedback_pipeline::processor::sinks::window_records;
use feedback_pipeline::processor::{EngineSettings, QueryDefinition, WindowEngine};

/// The shipped queries: all ten, four of them across agents.
const SQL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;
const PARTITIONS: i32 = 8;
/// Each test runs its own cluster and three instances: one at a time, so a 2-core machine
/// running them is not starved into rebalancing for minutes.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const AGENTS: u64 = 50;

/// `count` events of 50 agents (four agent types, three models) over 12 minutes of event
/// time, up to 2 s out of order; failures, timeouts, workflows, tokens and costs mixed in.
fn fleet(count: usize, seed: u64) -> Vec<OutcomeEvent> {
    let mut rng = Rng(seed);
    let types = ["planner", "coder", "reviewer", "tester"];
    let models = ["model-a", "model-b", "model-c"];
    (0..count)
        .map(|n| {
            let agent = rng.below(AGENTS);
            let status = match rng.below(20) {
                0 | 1 => OutcomeStatus::Failure,
                2 => OutcomeStatus::Timeout,
                3 => OutcomeStatus::Partial,
                _ => OutcomeStatus::Success,
            };
            let action = if rng.below(10) == 0 {
                "workflow"
            } else {
                "act"
            };
            let mut event = OutcomeEvent::builder(format!("agent_{agent:02}"), action)
                .agent_type(types[(agent % 4) as usize])
                .status(status)
                .model(models[rng.below(3) as usize], "provider")
                .tokens_used(rng.below(5_000))
                .cost_estimate(rng.below(1_000) as f64 / 10_000.0)
                .build()
                .unwrap();
            let time = BASE + (n as i64 * 720_000) / count as i64 - rng.below(2_000) as i64;
            event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
            event.latency_ms = rng.below(9_000) as f64 + 0.25;
            event.duration_ms = rng.below(20_000) as f64 + 0.5;
            event
        })
        .collect()
}

/// What one instance computes over all of `events`, in process: every window query's
/// records (key → value), with nothing late.
async fn one_instance(events: &[OutcomeEvent]) -> BTreeMap<String, Value> {
    let queries = QueryDefinition::load_dir(Path::new(SQL)).await.unwrap();
    let year = Duration::from_secs(365 * 24 * 3600);
    let settings = EngineSettings {
        out_of_orderness: year,
        grace: Duration::ZERO,
        idle_after: year,
        max_groups_per_window: usize::MAX,
        allowed_lateness: Duration::ZERO,
    };
    let mut engine = WindowEngine::new(&queries, settings).unwrap();
    let now = Instant::now();
    engine.assign(&[0], now);
    let numbered: Vec<_> = (0..).zip(events.iter().cloned()).collect();
    engine.ingest_events(0, &numbered, now).unwrap();
    let later = now + Duration::from_secs(400 * 24 * 3600);
    let closed = engine
        .advance(later, Utc::now().timestamp_millis())
        .unwrap();
    closed
        .iter()
        .flat_map(window_records)
        .map(|record| (record.key, record.value))
        .collect()
}

/// Whether two result values agree: the same fields, numbers to 1e-9 (relative), the p95
/// columns within 5 % (a t-digest merged from partitions is not the digest of all events).
fn same(expected: &Value, actual: &Value) -> bool {
    let (Some(expected), Some(actual)) = (expected.as_object(), actual.as_object()) else {
        return expected == actual;
    };
    expected.len() == actual.len()
        && expected.iter().all(|(field, want)| {
            let Some(got) = actual.get(field) else {
                return false;
            };
            match (want.as_f64(), got.as_f64()) {
                (Some(want), Some(got)) => {
                    let bound = if field.starts_with("p95") { 0.05 } else { 1e-9 };
                    (want - got).abs() <= bound * want.abs().max(1.0)
                }
                _ => want == got,
            }
        })
}

/// What differs between the expected and the actual results, at most `most` lines.
fn differences(
    expected: &BTreeMap<String, Value>,
    actual: &BTreeMap<String, Value>,
    most: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => lines.push(format!("missing {key}")),
            Some(got) if !same(want, got) => lines.push(format!("{key}: {got} instead of {want}")),
            Some(_) => {}
        }
    }
    let extra = actual.keys().filter(|key| !expected.contains_key(*key));
    lines.extend(extra.map(|key| format!("unexpected {key}")));
    let total = lines.len();
    lines.truncate(most);
    if total > most {
        lines.push(format!("... {} more", total - most));
    }
    lines
}

/// Waits (up to 3 minutes) until the latest record of every key on `metrics` agrees with
/// `expected`; panics with the differences left.
async fn await_results(servers: &str, metrics: &str, expected: &BTreeMap<String, Value>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (latest, _) = latest_results(servers, metrics).await;
        let left = differences(expected, &latest, 12);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after 3 minutes, {} results differ from one instance's {}:\n{}",
            differences(expected, &latest, usize::MAX).len(),
            expected.len(),
            left.join("\n")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until every instance holds partitions and together they hold all.
async fn all_hold_partitions(instances: &[RunningProcessor]) {
    common::wait_until(
        Duration::from_secs(120),
        "every instance to hold partitions",
        || async {
            let held: Vec<i64> = instances.iter().map(|i| i.assigned_partitions()).collect();
            let settled = |held: &[i64]| {
                held.iter().all(|&n| n > 0) && held.iter().sum::<i64>() == i64::from(PARTITIONS)
            };
            settled(&held).then_some(())
        },
    )
    .await;
}

/// Waits until `group`'s merge group is stable with `members` members: a merged window
/// then has one owner from the start.
async fn merge_group_settled(servers: &str, group: &str, members: usize) {
    let merge_group = format!("{group}-merge");
    common::wait_until(
        Duration::from_secs(120),
        "the merge group to settle",
        || async {
            let state = common::topic::group_state(servers, &merge_group);
            (state == Some(("Stable".to_owned(), members))).then_some(())
        },
    )
    .await;
}

/// A one-node cluster with an 8-partition outcome topic and a results topic.
async fn cluster(topic: &str, metrics: &str) -> (KafkaCluster, WindowRun) {
    common::init_logs();
    let cluster = KafkaCluster::start();
    let run = WindowRun::new(&cluster.bootstrap_servers());
    let client = run.config("x", "x", "x").kafka.client_config(&run.servers);
    let specs = [
        TopicSpec::new(topic, PARTITIONS),
        TopicSpec::new(metrics, 4),
    ];
    ensure_topics(&client, &specs, Duration::from_secs(10))
        .await
        .unwrap();
    (cluster, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_give_the_results_of_one_for_every_query() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (topic, metrics) = ("outcomes-three", "metrics-three");
    let (_cluster, run) = cluster(topic, metrics).await;
    let sql = [("PROCESSOR_SQL_DIR", SQL)];
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(run.spawn_with(topic, "three-group", metrics, &sql).await);
    }
    all_hold_partitions(&instances).await;
    let events = fleet(12_000, 11);
    run.produce(topic, &events).await;
    let expected = one_instance(&events).await;
    await_results(&run.servers, metrics, &expected).await;
    let consumed: Vec<u64> = instances.iter().map(|i| i.stats.consumed()).collect();
    assert!(
        consumed.iter().all(|&n| n > 0),
        "all three did work: {consumed:?}"
    );
    for instance in instances {
        instance.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_a_join_change_no_result_of_any_query() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (topic, metrics) = ("outcomes-churn", "metrics-churn");
    let (_cluster, run) = cluster(topic, metrics).await;
    let mut vars = run.vars(topic, "churn-group", metrics);
    vars.push(("PROCESSOR_SQL_DIR".into(), SQL.into()));
    let events = fleet(12_000, 12);
    let (first, rest) = events.split_at(events.len() / 2);
    let mut serves: Vec<_> = (0..2).map(|_| spawn_serve(&vars)).collect();
    run.produce(topic, first).await;
    common::wait_until(Duration::from_secs(90), "a first commit", || async {
        (committed_offsets(&run.servers, "churn-group", topic, PARTITIONS) > 0).then_some(())
    })
    .await;
    serves[0].kill(); // mid-stream: no shutdown, no final commit
    run.produce(topic, rest).await;
    serves.push(spawn_serve(&vars)); // another joins later
    let expected = one_instance(&events).await;
    await_results(&run.servers, metrics, &expected).await;
}

/// One event of each of 48 agents per minute of event time over minutes `from..to` (the
/// `i`-th agent's at second `i`), failing for the agents below `failing`.
fn minutes(from: i64, to: i64, failing: usize) -> Vec<OutcomeEvent> {
    let mut events = Vec::new();
    for minute in from..to {
        for agent in 0..48 {
            let status = if agent < failing {
                OutcomeStatus::Failure
            } else {
                OutcomeStatus::Success
            };
            let mut event = OutcomeEvent::builder(format!("agent_{agent:02}"), "act")
                .status(status)
                .build()
                .unwrap();
            let time = BASE + minute * 60_000 + agent as i64 * 1_000;
            event.timestamp = Utc.timestamp_millis_opt(time).unwrap();
            event.latency_ms = 100.0;
            events.push(event);
        }
    }
    events
}

/// The shipped alert rules.
fn builtin_rules() -> Vec<feedback_pipeline::alerts::AlertRule> {
    use feedback_pipeline::alerts::rules::{BUILTIN_RULES, parse_rules};
    parse_rules("builtin", BUILTIN_RULES).unwrap()
}

/// Every record on `alerts` as (rule, action), in order.
async fn alert_actions(servers: &str, alerts: &str) -> Vec<(String, String)> {
    let records = alert_records(servers, alerts).await;
    let field = |record: &Value, name: &str| record[name].as_str().unwrap().to_owned();
    records
        .iter()
        .map(|record| (field(record, "rule"), field(record, "action")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overall_alert_fires_once_for_a_burst_only_the_sum_of_partitions_shows() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (topic, metrics) = ("outcomes-burst", "metrics-burst");
    let alerts = "alerts-burst";
    let (_cluster, run) = cluster(topic, metrics).await;
    run.topics(&[alerts]).await;
    let rules = builtin_rules();
    let extra = [("PROCESSOR_SQL_DIR", SQL), ("KAFKA_ALERTS_TOPIC", alerts)];
    let mut instances = Vec::new();
    for _ in 0..3 {
        let rules = rules.clone();
        instances.push(
            run.spawn_alerting(topic, "burst-group", metrics, &extra, rules)
                .await,
        );
    }
    all_hold_partitions(&instances).await;
    merge_group_settled(&run.servers, "burst-group", instances.len()).await;
    // Minute 0: 48 executions, 19 failed (40 %): over the rule's 20 executions only when all
    // partitions count together; no agent alone has 10. Then four clean minutes resolve it.
    let mut events = minutes(0, 1, 19);
    events.extend(minutes(1, 5, 0));
    run.produce(topic, &events).await;
    let actions = common::wait_until(Duration::from_secs(120), "the alert to resolve", || async {
        let actions = alert_actions(&run.servers, alerts).await;
        actions
            .iter()
            .any(|(_, action)| action == "resolve")
            .then_some(actions)
    })
    .await;
    let overall: Vec<&str> = actions
        .iter()
        .filter(|(rule, _)| rule == "OverallFailureRateHigh")
        .map(|(_, action)| action.as_str())
        .collect();
    assert_eq!(overall, ["trigger", "resolve"], "all alerts: {actions:?}");
    assert_eq!(actions.len(), 2, "no other alert: {actions:?}");
    for instance in instances {
        instance.stop().await;
    }
}

/// The time `field` of an alert or result record names, in ms.
fn millis_of(record: &Value, field: &str) -> i64 {
    let text = record[field].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

/// Every record on `alerts`, decoded.
async fn alert_records(servers: &str, alerts: &str) -> Vec<Value> {
    let records = common::topic::read_raw(servers, alerts, usize::MAX, Duration::from_secs(3));
    records
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

/// Waits until `group`'s merge stage has committed a checkpoint saying `query`'s windows
/// were emitted through `through`.
async fn await_merge_checkpoint(servers: &str, group: &str, query: &str, through: i64) {
    let topic = repartition_topic(group);
    let merge_group = format!("{group}-merge");
    common::wait_until(Duration::from_secs(60), "a merge checkpoint", || async {
        committed_metadata(servers, &merge_group, &topic, PARTITIONS)
            .iter()
            .filter_map(|text| serde_json::from_str::<MergeCheckpoint>(text).ok())
            .any(|c| c.emitted_through(query).is_some_and(|t| t >= through))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_of_the_merge_judges_no_window_its_predecessor_judged() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (topic, metrics) = ("outcomes-handover", "metrics-handover");
    let (alerts, group) = ("alerts-handover", "handover-group");
    let (_cluster, run) = cluster(topic, metrics).await;
    run.topics(&[alerts]).await;
    let rules = builtin_rules();
    // Windows stay open for 10 minutes after they close: the next owner replays them all.
    let extra = [
        ("PROCESSOR_SQL_DIR", SQL),
        ("KAFKA_ALERTS_TOPIC", alerts),
        ("WINDOW_ALLOWED_LATENESS_MS", "600000"),
    ];
    let first = run
        .spawn_alerting(topic, group, metrics, &extra, rules.clone())
        .await;
    all_hold_partitions(std::slice::from_ref(&first)).await;
    let mut events = minutes(0, 1, 19);
    events.extend(minutes(1, 5, 0));
    run.produce(topic, &events).await;
    let resolve = common::wait_until(Duration::from_secs(120), "the alert to resolve", || async {
        let records = alert_records(&run.servers, alerts).await;
        records.into_iter().find(|r| r["action"] == "resolve")
    })
    .await;
    let judged_through = millis_of(&resolve, "window_end");
    await_merge_checkpoint(&run.servers, group, "failure_rate_overall", judged_through).await;
    first.stop().await;

    let second = run
        .spawn_alerting(topic, group, metrics, &extra, rules)
        .await;
    all_hold_partitions(std::slice::from_ref(&second)).await;
    run.produce(topic, &minutes(6, 8, 0)).await;
    // The new owner merged minute 6, so it has replayed every partial handed over before.
    let minute_6 = BASE + 6 * 60_000;
    common::wait_until(Duration::from_secs(120), "minute 6 merged", || async {
        let (latest, _) = latest_results(&run.servers, metrics).await;
        latest
            .values()
            .any(|v| {
                v["query"] == "failure_rate_overall" && millis_of(v, "window_start") == minute_6
            })
            .then_some(())
    })
    .await;
    let actions: Vec<String> = alert_records(&run.servers, alerts)
        .await
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["rule"].as_str().unwrap(),
                r["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "OverallFailureRateHigh trigger",
            "OverallFailureRateHigh resolve"
        ]
    );
    second.stop().await;
}
