//! Restart and scale-out: after a kill -9 and a restart, and with two instances in one
//! consumer group, the (key → value) results equal those of one uninterrupted instance.

mod common;

use std::time::Duration;

use common::broker::KafkaCluster;
use common::serve::spawn_serve;
use common::topic::committed_offsets;
use common::wait_until;
use common::windows::{WindowRun, events, expected_keys};

/// Events per run: enough that the producer's batches hold thousands of records.
const EVENTS: usize = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_and_restart_gives_the_results_of_an_uninterrupted_run() {
    let cluster = KafkaCluster::start();
    let setup = WindowRun::new(&cluster.bootstrap_servers());
    let topic = "outcomes-restart";
    let metrics = "metrics-restart";
    setup.topics(&[topic, metrics]).await;
    let events = events(EVENTS);
    let (first, rest) = events.split_at(EVENTS / 3);

    // The crashing run: a third of the events; once windows were emitted and offsets
    // committed, the rest is produced and the process is killed (SIGKILL) mid-stream.
    setup.produce(topic, first).await;
    let vars = setup.vars(topic, "restart-group", metrics);
    let mut serve = spawn_serve(&vars);
    // Once offsets are committed (asked for without joining the group), a restart resumes
    // from inside the first third's batches.
    wait_until(Duration::from_secs(60), "a first commit", || async {
        (committed_offsets(&setup.servers, "restart-group", topic, 4) > 0).then_some(())
    })
    .await;
    setup.produce(topic, rest).await;
    serve.kill(); // no shutdown, no final commit
    let mut serve = spawn_serve(&vars);
    let expected = expected_keys(&events);
    let crashed = setup.results(metrics, expected.len()).await;
    serve.kill();

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
    let cluster = KafkaCluster::start();
    let setup = WindowRun::new(&cluster.bootstrap_servers());
    let topic = "outcomes-pair";
    let metrics = "metrics-pair";
    setup.topics(&[topic, metrics]).await;
    let mut instances = Vec::new();
    for _ in 0..2 {
        instances.push(setup.spawn(topic, "pair-group", metrics).await);
        // Let the first one join before the second, as a rolling start would.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_until(
        Duration::from_secs(60),
        "both instances to hold partitions",
        || async {
            instances
                .iter()
                .all(|i| i.stats.snapshot().rebalances >= 1)
                .then_some(())
        },
    )
    .await;
    let events = events(EVENTS);
    setup.produce(topic, &events).await;
    let expected = expected_keys(&events);
    let together = setup.results(metrics, expected.len()).await;
    let consumed: Vec<u64> = instances.iter().map(|i| i.stats.consumed()).collect();
    for instance in instances {
        instance.stop().await;
    }
    let reference = setup.reference(topic, &events).await;
    assert_eq!(
        together, reference,
        "two instances = one (consumed per instance: {consumed:?})"
    );
}

/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;

/// Fires for an agent whose failure rate in a window is above 0.5 (3 events at least) and
/// resolves in the first window that is not.
const RULE: &str = "[[rule]]\nname = \"AgentFailing\"\nquery = \"per_agent\"\n\
    column = \"failure_rate\"\nabove = 0.5\nmin_events = { column = \"n\", at_least = 3 }\n\
    for = \"0s\"\nkeep_firing_for = \"0s\"\nseverity = \"error\"\n";

/// Events of `agent` every 250 ms of event time over `from_ms..to_ms` after [`BASE`].
fn agent_events(
    agent: &str,
    from_ms: i64,
    to_ms: i64,
    status: feedback_pipeline::event::OutcomeStatus,
) -> Vec<feedback_pipeline::event::OutcomeEvent> {
    (from_ms..to_ms)
        .step_by(250)
        .map(|t| {
            let mut event = feedback_pipeline::event::OutcomeEvent::builder(agent, "act")
                .status(status)
                .build()
                .unwrap();
            event.timestamp =
                chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, BASE + t).unwrap();
            event
        })
        .collect()
}

/// The actions on `alerts` so far, in order.
async fn alert_actions(servers: &str, alerts: &str) -> Vec<String> {
    common::topic::read_raw(servers, alerts, usize::MAX, Duration::from_secs(3))
        .await
        .iter()
        .map(|m| {
            let record: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            record["action"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_while_an_alert_fires_then_recovery_sends_exactly_one_resolve() {
    use feedback_pipeline::event::OutcomeStatus;
    let cluster = KafkaCluster::start();
    let setup = WindowRun::new(&cluster.bootstrap_servers());
    let (topic, metrics, alerts) = ("outcomes-alerting", "metrics-alerting", "alerts-alerting");
    setup.topics(&[topic, metrics, alerts]).await;
    let rules = setup.sql_dir.path().join("rules.toml");
    std::fs::write(&rules, RULE).unwrap();
    let mut vars = setup.vars(topic, "alerting-group", metrics);
    vars.push(("KAFKA_ALERTS_TOPIC".into(), alerts.into()));
    vars.push(("ALERT_RULES_FILE".into(), rules.to_str().unwrap().into()));

    // 20 s of failures: the alert fires; the process is killed while it does.
    let failing = agent_events("agent_a", 0, 20_000, OutcomeStatus::Failure);
    setup.produce(topic, &failing).await;
    let mut serve = spawn_serve(&vars);
    wait_until(Duration::from_secs(60), "the alert firing", || async {
        (alert_actions(&setup.servers, alerts).await == ["trigger"]).then_some(())
    })
    .await;
    serve.kill();

    // Recovered: 40 s of successes, read by a restarted instance.
    let recovered = agent_events("agent_a", 20_000, 60_000, OutcomeStatus::Success);
    setup.produce(topic, &recovered).await;
    let mut serve = spawn_serve(&vars);
    let all: Vec<_> = failing.iter().chain(&recovered).cloned().collect();
    setup.results(metrics, expected_keys(&all).len()).await;
    let actions = wait_until(Duration::from_secs(60), "the resolve", || async {
        let actions = alert_actions(&setup.servers, alerts).await;
        actions.contains(&"resolve".to_owned()).then_some(actions)
    })
    .await;
    serve.kill();
    assert_eq!(actions, ["trigger", "resolve"], "one trigger, one resolve");
}

/// Each dedup key's actions on `alerts` so far, in order.
async fn actions_by_alert(
    servers: &str,
    alerts: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for m in common::topic::read_raw(servers, alerts, usize::MAX, Duration::from_secs(3)).await {
        let record: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let key = record["dedup_key"].as_str().unwrap().to_owned();
        by_key
            .entry(key)
            .or_default()
            .push(record["action"].as_str().unwrap().to_owned());
    }
    by_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_leaving_while_alerts_fire_sends_no_false_resolve_nor_second_trigger() {
    use feedback_pipeline::event::OutcomeStatus;
    let cluster = KafkaCluster::start();
    let setup = WindowRun::new(&cluster.bootstrap_servers());
    let (topic, metrics, alerts) = ("outcomes-moving", "metrics-moving", "alerts-moving");
    setup.topics(&[topic, metrics, alerts]).await;
    let rules = feedback_pipeline::alerts::rules::parse_rules("rules.toml", RULE).unwrap();
    let extra = [("KAFKA_ALERTS_TOPIC", alerts)];
    let group = "moving-group";
    let first = setup
        .spawn_alerting(topic, group, metrics, &extra, rules.clone())
        .await;
    let second = setup
        .spawn_alerting(topic, group, metrics, &extra, rules)
        .await;
    wait_until(
        Duration::from_secs(60),
        "both holding partitions",
        || async {
            (first.assigned_partitions() > 0
                && second.assigned_partitions() > 0
                && first.assigned_partitions() + second.assigned_partitions() == 4)
                .then_some(())
        },
    )
    .await;
    let agents: Vec<String> = (0..8).map(|n| format!("agent_{n}")).collect();
    let phase = |from: i64, to: i64, status: OutcomeStatus| -> Vec<_> {
        agents
            .iter()
            .flat_map(|agent| agent_events(agent, from, to, status))
            .collect()
    };
    setup
        .produce(topic, &phase(0, 20_000, OutcomeStatus::Failure))
        .await;
    wait_until(
        Duration::from_secs(60),
        "every agent's alert firing",
        || async {
            let actions = actions_by_alert(&setup.servers, alerts).await;
            (actions.len() == agents.len()).then_some(())
        },
    )
    .await;

    // One instance leaves; the other takes its partitions while the failures go on.
    first.stop().await;
    wait_until(
        Duration::from_secs(60),
        "one instance holding all",
        || async { (second.assigned_partitions() == 4).then_some(()) },
    )
    .await;
    let failing_on = phase(20_000, 40_000, OutcomeStatus::Failure);
    // Counted before producing: it may read them as soon as they are written.
    let consumed = second.stats.consumed();
    setup.produce(topic, &failing_on).await;
    wait_until(Duration::from_secs(60), "the failures read", || async {
        (second.stats.consumed() >= consumed + failing_on.len() as u64).then_some(())
    })
    .await;
    // Then it recovers: each alert resolves once.
    setup
        .produce(topic, &phase(40_000, 80_000, OutcomeStatus::Success))
        .await;
    let actions = wait_until(Duration::from_secs(90), "every alert resolved", || async {
        let actions = actions_by_alert(&setup.servers, alerts).await;
        actions
            .values()
            .all(|a| a.contains(&"resolve".to_owned()))
            .then_some(actions)
    })
    .await;
    second.stop().await;
    for (key, actions) in &actions {
        assert_eq!(actions, &["trigger", "resolve"], "{key}");
    }
    assert_eq!(actions.len(), agents.len());
}
