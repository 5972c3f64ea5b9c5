//! `alerts forward` against a real broker and a local HTTP receiver standing in for PagerDuty
//! and Slack: a receiver outage loses nothing (offsets wait for delivery), retries back off,
//! and what arrives is a valid Events API v2 body and a Slack message.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use serde_json::Value;
use warp::Filter;
use warp::http::StatusCode;

use common::broker::KafkaCluster;
use common::topic::send_one;
use common::wait_until;
use feedback_pipeline::alerts::forward::Forwarder;
use feedback_pipeline::alerts::record::dedup_key;
use feedback_pipeline::alerts::{AlertAction, AlertRecord, AlertSeverity};
use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};

const ROUTING_KEY: &str = "R0UTING-KEY-under-test";

/// The stand-in receiver: answers 503 while `failures_left > 0` (counting down), or on the
/// Slack path until `slack_down_until`, else 202.
#[derive(Default)]
struct Receiver {
    failures_left: AtomicU32,
    refused: AtomicU32,
    accepted: Mutex<Vec<(String, Value)>>,
    slack_down_until: Mutex<Option<std::time::Instant>>,
}

impl Receiver {
    fn accepted(&self, path: &str) -> Vec<Value> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

async fn start_receiver(receiver: Arc<Receiver>) -> std::net::SocketAddr {
    let route = warp::post()
        .and(warp::path::param::<String>())
        .and(warp::body::json())
        .map(move |path: String, body: Value| {
            let slack_down = path == "slack"
                && receiver
                    .slack_down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|until| std::time::Instant::now() < until);
            let failing = slack_down
                || receiver
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if failing {
                receiver.refused.fetch_add(1, Ordering::SeqCst);
                return warp::reply::with_status("down", StatusCode::SERVICE_UNAVAILABLE);
            }
            receiver.accepted.lock().unwrap().push((path, body));
            warp::reply::with_status("{\"status\":\"success\"}", StatusCode::ACCEPTED)
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

fn record(action: AlertAction, agent: &str) -> AlertRecord {
    let labels = BTreeMap::from([("agent_name".to_owned(), agent.to_owned())]);
    AlertRecord {
        dedup_key: dedup_key("AgentFailureRateHigh", &labels),
        action,
        rule: "AgentFailureRateHigh".into(),
        severity: AlertSeverity::Error,
        summary: format!("failure rate high for {agent}"),
        description: "More than 10 % failed.".into(),
        labels,
        query: "error_rate_by_agent".into(),
        column: "failure_rate".into(),
        value: 0.4,
        threshold: 0.1,
        comparison: "above".into(),
        window_start: "2026-01-01T00:00:00.000Z".into(),
        window_end: "2026-01-01T00:01:00.000Z".into(),
        first_seen: "2026-01-01T00:00:00.000Z".into(),
        emitted_at: "2026-01-01T00:01:01.000Z".into(),
        source: "feedback-pipeline".into(),
    }
}

async fn produce(producer: &FutureProducer, topic: &str, record: &AlertRecord) {
    let payload = serde_json::to_vec(record).unwrap();
    send_one(producer, topic, &record.dedup_key, &payload).await;
}

fn config(servers: &str, receiver: std::net::SocketAddr) -> Config {
    config_with(servers, receiver, &[])
}

fn config_with(servers: &str, receiver: std::net::SocketAddr, extra: &[(&str, &str)]) -> Config {
    let pagerduty_url = format!("http://{receiver}/pagerduty");
    let slack_url = format!("http://{receiver}/slack");
    let mut vars = vec![
        ("KAFKA_ALERTS_TOPIC", "alerts-forward"),
        ("ALERT_FORWARDER_GROUP", "forwarder-test"),
        ("PAGERDUTY_ROUTING_KEY", ROUTING_KEY),
        ("PAGERDUTY_EVENTS_URL", pagerduty_url.as_str()),
        ("SLACK_WEBHOOK_URL", slack_url.as_str()),
        ("ALERT_MAX_BACKOFF_MS", "200"),
    ];
    vars.extend_from_slice(extra);
    common::config(servers, &vars)
}

/// Runs a forwarder until the returned sender fires.
fn spawn_forwarder(
    config: &Config,
    servers: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    Arc<feedback_pipeline::alerts::forward::ForwarderStats>,
    tokio::task::JoinHandle<()>,
) {
    let forwarder = Forwarder::new(config, servers).unwrap();
    let stats = forwarder.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        forwarder
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, stats, task)
}

/// What a forwarder test runs against: its own broker, the stand-in receiver, the
/// configuration (with `extra` variables) and a producer for the alert topic, which has
/// `partitions` partitions.
struct Setup {
    /// Kept to the test's end: dropping it stops the broker.
    broker: KafkaCluster,
    servers: String,
    receiver: Arc<Receiver>,
    config: Config,
    producer: FutureProducer,
}

async fn setup(extra: &[(&str, &str)], partitions: i32) -> Setup {
    let broker = KafkaCluster::start();
    let servers = broker.bootstrap_servers();
    let receiver = Arc::new(Receiver::default());
    let addr = start_receiver(Arc::clone(&receiver)).await;
    let config = config_with(&servers, addr, extra);
    ensure_topics(
        &config.kafka.client_config(&servers),
        &[TopicSpec::new("alerts-forward", partitions)],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let producer: FutureProducer = config.kafka.producer_config(&servers).create().unwrap();
    Setup {
        broker,
        servers,
        receiver,
        config,
        producer,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_outage_loses_no_alert_and_each_is_delivered_once() {
    let Setup {
        servers,
        receiver,
        config,
        producer,
        broker: _broker,
    } = setup(&[], 1).await;
    let trigger = record(AlertAction::Trigger, "data_processor");
    let resolve = record(AlertAction::Resolve, "data_processor");
    produce(&producer, "alerts-forward", &trigger).await;
    produce(&producer, "alerts-forward", &resolve).await;

    // The receivers are down: the forwarder retries and commits nothing; then it stops.
    receiver.failures_left.store(u32::MAX, Ordering::SeqCst);
    let (stop, stats, task) = spawn_forwarder(&config, &servers);
    wait_until(
        Duration::from_secs(60),
        "retries against the outage",
        || async { (stats.retries.load(Ordering::SeqCst) >= 3).then_some(()) },
    )
    .await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(stats.forwarded.load(Ordering::SeqCst), 0);
    assert!(receiver.accepted.lock().unwrap().is_empty());

    // Back up after two more failures: a new forwarder in the group delivers both records.
    receiver.failures_left.store(2, Ordering::SeqCst);
    let refused_before = receiver.refused.load(Ordering::SeqCst);
    let (stop, stats, task) = spawn_forwarder(&config, &servers);
    let pagerduty = wait_until(
        Duration::from_secs(60),
        "both records delivered",
        || async {
            let pagerduty = receiver.accepted("pagerduty");
            (pagerduty.len() >= 2 && receiver.accepted("slack").len() >= 2).then_some(pagerduty)
        },
    )
    .await;
    assert_eq!(receiver.refused.load(Ordering::SeqCst), refused_before + 2);
    assert_eq!(pagerduty[0]["event_action"], "trigger");
    assert_eq!(pagerduty[0]["routing_key"], ROUTING_KEY);
    assert_eq!(pagerduty[0]["dedup_key"], trigger.dedup_key.as_str());
    assert_eq!(pagerduty[0]["payload"]["severity"], "error");
    assert_eq!(pagerduty[0]["payload"]["component"], "data_processor");
    assert_eq!(pagerduty[0]["payload"]["source"], "feedback-pipeline");
    assert_eq!(pagerduty[1]["event_action"], "resolve");
    assert_eq!(pagerduty[1]["dedup_key"], trigger.dedup_key.as_str());
    let slack = receiver.accepted("slack");
    assert!(slack[0]["text"].as_str().unwrap().contains("FIRING"));
    assert!(slack[1]["text"].as_str().unwrap().contains("RESOLVED"));
    assert!(
        !slack[0].to_string().contains(ROUTING_KEY),
        "no secret in Slack"
    );
    wait_until(
        Duration::from_secs(30),
        "both offsets committed for both receivers",
        || async { (stats.forwarded.load(Ordering::SeqCst) == 4).then_some(()) },
    )
    .await;
    stop.send(()).unwrap();
    task.await.unwrap();

    // Committed means delivered once: a third forwarder only sends what is new.
    let next = record(AlertAction::Trigger, "react_agent");
    produce(&producer, "alerts-forward", &next).await;
    let (stop, _stats, task) = spawn_forwarder(&config, &servers);
    let pagerduty = wait_until(Duration::from_secs(60), "the new record", || async {
        let pagerduty = receiver.accepted("pagerduty");
        (pagerduty.len() >= 3).then_some(pagerduty)
    })
    .await;
    stop.send(()).unwrap();
    task.await.unwrap();
    let keys: Vec<_> = pagerduty
        .iter()
        .map(|e| (e["dedup_key"].clone(), e["event_action"].clone()))
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(pagerduty[2]["dedup_key"], next.dedup_key.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_outage_delays_only_slack_and_names_are_shown_literally() {
    // A lane that stopped polling while it waits would leave its group after 10 s.
    let extra = [
        ("KAFKA_PROPERTY_MAX_POLL_INTERVAL_MS", "10000"),
        ("KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "6000"),
    ];
    let Setup {
        servers,
        receiver,
        config,
        producer,
        broker: _broker,
    } = setup(&extra, 2).await;
    let agents = ["<!channel>", "a&b", "react_agent", "evaluator", "planner"];
    for agent in agents {
        produce(
            &producer,
            "alerts-forward",
            &record(AlertAction::Trigger, agent),
        )
        .await;
    }
    let down_for = Duration::from_secs(60);
    *receiver.slack_down_until.lock().unwrap() = Some(std::time::Instant::now() + down_for);
    let (stop, stats, task) = spawn_forwarder(&config, &servers);
    wait_until(Duration::from_secs(20), "every PagerDuty event", || async {
        (receiver.accepted("pagerduty").len() == agents.len()).then_some(())
    })
    .await;
    // Slack is still down: PagerDuty did not wait for it.
    assert!(receiver.accepted("slack").is_empty());
    let slack = wait_until(
        Duration::from_secs(120),
        "Slack after its outage",
        || async {
            let slack = receiver.accepted("slack");
            (slack.len() >= agents.len()).then_some(slack)
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "every offset committed",
        || async {
            (stats.forwarded.load(Ordering::SeqCst) == 2 * agents.len() as u64).then_some(())
        },
    )
    .await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(receiver.accepted("slack").len(), agents.len(), "each once");
    assert_eq!(
        receiver.accepted("pagerduty").len(),
        agents.len(),
        "each once"
    );
    let texts: Vec<String> = slack.iter().map(Value::to_string).collect();
    assert!(texts.iter().all(|t| !t.contains("<!channel>")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("&lt;!channel&gt;")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("a&amp;b")), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_groups_start_where_the_shared_group_was() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let Setup {
        servers,
        receiver,
        config,
        producer,
        broker: _broker,
    } = setup(&[], 1).await;
    for agent in ["old_1", "old_2"] {
        produce(
            &producer,
            "alerts-forward",
            &record(AlertAction::Trigger, agent),
        )
        .await;
    }
    // A forwarder of the shared-group days delivered both and committed offset 2.
    let shared: BaseConsumer = config
        .kafka
        .client_config(&servers)
        .set("group.id", &config.alerts.forwarder_group)
        .create()
        .unwrap();
    let mut done = rdkafka::TopicPartitionList::new();
    done.add_partition_offset("alerts-forward", 0, rdkafka::Offset::Offset(2))
        .unwrap();
    shared.commit(&done, CommitMode::Sync).unwrap();

    let next = record(AlertAction::Trigger, "new_one");
    produce(&producer, "alerts-forward", &next).await;
    let (stop, _stats, task) = spawn_forwarder(&config, &servers);
    let pagerduty = wait_until(Duration::from_secs(60), "the new record", || async {
        let pagerduty = receiver.accepted("pagerduty");
        let slack = receiver.accepted("slack");
        (!pagerduty.is_empty() && !slack.is_empty()).then_some(pagerduty)
    })
    .await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(
        pagerduty.len(),
        1,
        "nothing the shared group had done: {pagerduty:?}"
    );
    assert_eq!(pagerduty[0]["dedup_key"], next.dedup_key.as_str());
    assert_eq!(receiver.accepted("slack").len(), 1);
}

#[test]
fn receivers_never_print_their_secrets() {
    let config = config("127.0.0.1:9092", "127.0.0.1:1".parse().unwrap());
    let shown = format!(
        "{:?} {:?}",
        feedback_pipeline::alerts::forward::Receiver::from_config(&config),
        config
    );
    assert!(!shown.contains(ROUTING_KEY), "{shown}");
    assert!(!shown.contains("/slack"), "{shown}");
}
