//! Restart and scale-out: after a kill -9 and a restart, and with two instances in one
//! consumer group, the (key → value) results equal those of one uninterrupted instance.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::broker::KafkaCluster;
use common::topic::committed_offsets;
use common::wait_until;
use common::windows::{WindowRun, events, expected_keys};

/// Events per run: enough that the producer's batches hold thousands of records.
const EVENTS: usize = 30_000;

/// A `serve` child process, killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Serve(Child);

impl Serve {
    /// Kills it with SIGKILL, as a crash would, and reaps it.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_serve(vars: &[(String, String)]) -> Serve {
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
        .map(Serve)
        .expect("starting feedback-pipeline serve")
}

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
