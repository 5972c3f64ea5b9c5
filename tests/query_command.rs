//! `feedback-pipeline query` reads the outcome topic to its real end offsets: every produced
//! event is counted once, with the producer batching thousands of records per batch.

mod common;

use std::process::Command;

use serde_json::Value;

use common::broker::KafkaCluster;
use common::windows::{WindowRun, events};

const EVENTS: usize = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_counts_every_event_on_the_topic() {
    let cluster = KafkaCluster::start();
    let run = WindowRun::new(&cluster.bootstrap_servers());
    let topic = "outcomes-query";
    run.topics(&[topic]).await;
    run.produce(topic, &events(EVENTS)).await;

    let output = Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .args([
            "query",
            "--json",
            "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes \
             WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY agent_name",
        ])
        .env("KAFKA_BOOTSTRAP_SERVERS", cluster.bootstrap_servers())
        .env("KAFKA_OUTCOME_TOPIC", topic)
        .env("SPOOL_DIR", "off")
        .output()
        .expect("running feedback-pipeline query");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "query failed: {stderr}");
    assert!(
        stderr.contains(&format!("{EVENTS} messages read, 0 rejected")),
        "{stderr}"
    );
    let counted: u64 = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, EVENTS as u64, "every event counted once");
}
