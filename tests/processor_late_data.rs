//! Late means "its window was already emitted and is past the allowed lateness", on a real
//! broker: a backfill into instances that sat on an empty topic counts as in instances started
//! after it; events for emitted windows within the lateness update them under the same keys;
//! a broker outage while producers spool loses nothing.

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};

use common::broker::KafkaCluster;
use common::wait_until;
use common::windows::{
    RunningProcessor, WindowRun, events, latest_results, own_cluster, plain_loop_mismatch,
};
use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::producer::{FeedbackPipeline, PipelineOptions};

const OUTCOMES: &str = "late-outcomes";
const METRICS: &str = "late-metrics";
const DEAD_LETTERS: &str = "agent-outcomes-dlq";
/// 2026-01-01T00:00:00Z, where [`events`] start.
const BASE: i64 = 1_767_225_600_000;

/// A cluster of its own, with the topics made.
async fn setup() -> (KafkaCluster, WindowRun) {
    own_cluster(&[OUTCOMES, METRICS, DEAD_LETTERS]).await
}

/// Waits until `metrics` holds, key by key, the plain loop's rows over `events`; returns how
/// many records were updates.
async fn results_become(run: &WindowRun, events: &[OutcomeEvent]) -> usize {
    let mut last = None;
    let found = tokio::time::timeout(Duration::from_secs(150), async {
        loop {
            let (latest, updates) = latest_results(&run.servers, METRICS).await;
            match plain_loop_mismatch(&latest, events) {
                None => return updates,
                Some(mismatch) => last = Some(mismatch),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("results never matched a plain loop: {last:?}"))
}

fn late_dead_letters(instances: &[&RunningProcessor]) -> u64 {
    instances
        .iter()
        .map(|p| p.stats.snapshot().dead_letters_for("late"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_into_instances_on_an_empty_topic_counts_and_late_is_past_the_lateness() {
    let (_broker, run) = setup().await;
    let lateness = [("WINDOW_ALLOWED_LATENESS_MS", "60000")];
    let group = "backfill-group";
    let first = run.spawn_with(OUTCOMES, group, METRICS, &lateness).await;
    let second = run.spawn_with(OUTCOMES, group, METRICS, &lateness).await;
    // Both quiet on an empty topic until event time follows the wall clock: what once made
    // every backfilled event late.
    let wall_minus_minute = Utc::now().timestamp_millis() - 60_000;
    wait_until(
        Duration::from_secs(90),
        "both instances assigned, their watermarks at the wall clock",
        || async {
            let assigned = first.assigned_partitions() + second.assigned_partitions();
            let on_clock = [&first, &second]
                .iter()
                .all(|p| p.stats.snapshot().watermark_ms > wall_minus_minute);
            (assigned == 4 && on_clock).then_some(())
        },
    )
    .await;

    // 11 months old, 90 s of event time.
    let mut sent = events(20_000);
    run.produce(OUTCOMES, &sent).await;
    let updates = results_become(&run, &sent).await;
    assert_eq!(
        late_dead_letters(&[&first, &second]),
        0,
        "nothing of the backfill is late"
    );
    assert_eq!(updates, 0, "every window came out once, complete");

    // Two events for emitted windows within the lateness (one closed by event time, one by
    // the quiet spell after the backfill): their rows come out again, updated.
    let mut late_but_allowed = Vec::new();
    for offset in [80_000, 88_000] {
        let mut event = sent[0].clone();
        event.event_id = format!("allowed-{offset}");
        event.timestamp = Utc.timestamp_millis_opt(BASE + offset).unwrap();
        late_but_allowed.push(event);
    }
    run.produce(OUTCOMES, &late_but_allowed).await;
    sent.extend(late_but_allowed);
    let updates = results_become(&run, &sent).await;
    let counted: u64 = [&first, &second]
        .iter()
        .map(|p| p.stats.window_updates())
        .sum();
    assert!(updates >= 3, "the updated rows of 3 windows: {updates}");
    assert_eq!(
        counted as usize, updates,
        "every update on the topic is counted"
    );

    // Past the lateness (event time is 90 s on, the lateness 60 s): late, and nothing changes.
    let mut late = sent[0].clone();
    late.event_id = "past-the-lateness".into();
    late.timestamp = Utc.timestamp_millis_opt(BASE).unwrap();
    run.produce(OUTCOMES, &[late]).await;
    wait_until(
        Duration::from_secs(30),
        "the late event dead-lettered",
        || async { (late_dead_letters(&[&first, &second]) == 1).then_some(()) },
    )
    .await;
    assert_eq!(results_become(&run, &sent).await, updates, "no row changed");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_while_producers_spool_loses_nothing() {
    let (mut broker, run) = setup().await;
    let processor = run
        .spawn_with(
            OUTCOMES,
            "outage-group",
            METRICS,
            &[
                ("WINDOW_ALLOWED_LATENESS_MS", "300000"),
                // The group outlives the outage: the instance keeps its partitions and their
                // state throughout, rather than restoring them from checkpoints after it.
                ("KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "120000"),
            ],
        )
        .await;
    let spool = tempfile::tempdir().unwrap();
    let config = common::config(
        &run.servers,
        &[
            ("KAFKA_OUTCOME_TOPIC", OUTCOMES),
            ("KAFKA_LINGER_MS", "5"),
            // Short, so the outage outlasts librdkafka's own retries and the spool is used.
            ("KAFKA_MESSAGE_TIMEOUT_MS", "1500"),
            ("SPOOL_DIR", spool.path().to_str().unwrap()),
        ],
    );
    let pipeline = FeedbackPipeline::new(PipelineOptions::from_config(&config, None)).unwrap();
    wait_until(
        Duration::from_secs(60),
        "the processor assigned",
        || async { (processor.assigned_partitions() == 4).then_some(()) },
    )
    .await;

    // Live events at 20 per second: 10 s, then 60 s with the broker down, then 10 s.
    let mut recorded = Vec::new();
    let record_for = async |seconds: u64, recorded: &mut Vec<OutcomeEvent>| {
        for n in 0..seconds * 20 {
            let event = OutcomeEvent::builder(format!("agent_{}", n % 8), "act")
                .latency_ms((n % 97) as f64)
                .build()
                .unwrap();
            recorded.push((*pipeline.record_outcome(event).unwrap()).clone());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    record_for(10, &mut recorded).await;
    tokio::task::block_in_place(|| broker.kill());
    record_for(60, &mut recorded).await;
    tokio::task::block_in_place(|| broker.restart());
    record_for(10, &mut recorded).await;
    let total = recorded.len() as u64;
    wait_until(Duration::from_secs(90), "every event published", || async {
        tokio::task::block_in_place(|| pipeline.flush(Duration::from_secs(5)));
        let counters = pipeline.counters();
        (counters.published >= total && counters.spool_pending == 0).then_some(())
    })
    .await;
    let counters = pipeline.counters();
    assert!(
        counters.spooled > 0,
        "the outage went through the spool: {counters:?}"
    );

    let updates = results_become(&run, &recorded).await;
    println!(
        "outage: {total} events, {} replayed from the spool, {updates} rows re-emitted",
        counters.replayed
    );
    assert_eq!(processor.stats.window_updates() as usize, updates);
    assert_eq!(processor.stats.snapshot().dead_letters_for("late"), 0);
    processor.stop().await;
}
