//! The processor's fetch queue against a real broker: assigned partitions' messages arrive
//! there (none on the consumer's own queue), complete and in offset order per partition, and
//! still do after a rebalance, which makes librdkafka drop and the processor redo the
//! forwarding. And the processor's loop, whose batches a backlog keeps full, still stops when
//! told to.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

use common::broker::KafkaCluster;
use common::topic::{read_raw, send_all, send_one};
use common::wait_until;
use common::windows::start;
use feedback_pipeline::config::Config;
use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::kafka::{TopicSpec, ensure_topics};
use feedback_pipeline::metrics::ProcessorStats;
use feedback_pipeline::processor::Processor;
use feedback_pipeline::processor::QueryDefinition;
use feedback_pipeline::processor::source::ConsumedBatch;
use feedback_pipeline::processor::source::FetchQueue;
use feedback_pipeline::processor::source::{OutcomeConsumer, create_consumer};

const TOPIC: &str = "fetch-queue";
const GROUP: &str = "fetch-queue-group";

/// One group member: its queue, and what it read where.
struct Member {
    consumer: Arc<OutcomeConsumer>,
    queue: FetchQueue,
    /// (partition, offset, payload) read through the fetch queue, in reading order.
    from_queue: Vec<(i32, i64, String)>,
    /// Messages the consumer's own queue handed out (forwarding missing).
    from_consumer: usize,
}

impl Member {
    fn join(broker: &KafkaCluster) -> Self {
        let stats = Arc::new(ProcessorStats::register(&Registry::new()).unwrap());
        let consumer = create_consumer(broker.client_config(), GROUP, stats).unwrap();
        consumer.subscribe(&[TOPIC]).unwrap();
        let consumer = Arc::new(consumer);
        Self {
            queue: FetchQueue::new(Arc::clone(&consumer)),
            consumer,
            from_queue: Vec::new(),
            from_consumer: 0,
        }
    }

    /// Reads for up to `period`, as the processor's loop does: drain the fetch queue, then
    /// wait for it, for the consumer's own queue (which serves rebalances) or for the end.
    async fn read_for(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        let mut batch = ConsumedBatch::with_capacity(64);
        loop {
            batch.clear();
            // Transient fetch errors (metadata catching up) are librdkafka's to retry.
            if let Err(err) = self.queue.read_into(&mut batch, 64) {
                eprintln!("fetch error: {err}");
            }
            for message in batch.messages() {
                let payload = batch.payload(message).unwrap();
                self.from_queue.push((
                    message.partition,
                    message.offset,
                    String::from_utf8(payload.to_vec()).unwrap(),
                ));
            }
            tokio::select! {
                _ = self.queue.readable() => {}
                received = self.consumer.recv() => match received {
                    Ok(_) => self.from_consumer += 1,
                    Err(err) => eprintln!("consumer error: {err}"),
                },
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Offsets read per partition, checking each partition's come in increasing order.
    fn offsets(&self) -> BTreeMap<i32, Vec<i64>> {
        let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for &(partition, offset, _) in &self.from_queue {
            let seen = offsets.entry(partition).or_default();
            assert!(
                seen.last().is_none_or(|&last| last < offset),
                "partition {partition}: offset {offset} after {seen:?}"
            );
            seen.push(offset);
        }
        offsets
    }
}

async fn send(producer: &FutureProducer, range: std::ops::Range<usize>) {
    for n in range {
        let key = format!("agent_{}", n % 7);
        send_one(producer, TOPIC, &key, format!("message {n}").as_bytes()).await;
    }
}

fn payloads(members: &[&Member]) -> BTreeSet<String> {
    members
        .iter()
        .flat_map(|member| {
            member
                .from_queue
                .iter()
                .map(|(_, _, payload)| payload.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_partitions_are_read_from_the_fetch_queue_before_and_after_a_rebalance() {
    let broker = KafkaCluster::start();
    ensure_topics(
        &broker.client_config(),
        &[TopicSpec::new(TOPIC, 3)],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let producer: FutureProducer = broker.client_config().create().unwrap();
    send(&producer, 0..300).await;

    let mut first = Member::join(&broker);
    let mut waited = Duration::ZERO;
    while first.from_queue.len() < 300 && waited < Duration::from_secs(60) {
        first.read_for(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
    let offsets = first.offsets();
    assert_eq!(first.from_consumer, 0, "messages bypassed the fetch queue");
    assert_eq!(first.from_queue.len(), 300, "read {offsets:?}");
    assert_eq!(offsets.len(), 3, "all three partitions were read");
    for (partition, offsets) in &offsets {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "partition {partition} read whole, in order"
        );
    }

    // Committed, so that after the rebalance each partition resumes where it was.
    let mut done = TopicPartitionList::new();
    for (&partition, offsets) in &offsets {
        let next = Offset::Offset(offsets.last().unwrap() + 1);
        done.add_partition_offset(TOPIC, partition, next).unwrap();
    }
    first.consumer.commit(&done, CommitMode::Sync).unwrap();

    // A second member joins: the group rebalances, librdkafka stops and restarts fetching
    // (dropping the forwarding), and both members must read what follows from their queues.
    let mut second = Member::join(&broker);
    let before = first.from_queue.len();
    let expected: BTreeSet<String> = (300..600).map(|n| format!("message {n}")).collect();
    let mut sent = false;
    let mut waited = Duration::ZERO;
    loop {
        let period = Duration::from_millis(250);
        tokio::join!(first.read_for(period), second.read_for(period));
        waited += period;
        if !sent && !second.consumer.assignment().unwrap().elements().is_empty() {
            send(&producer, 300..600).await;
            sent = true;
        }
        let read: BTreeSet<String> = payloads(&[&first, &second])
            .into_iter()
            .filter(|payload| expected.contains(payload))
            .collect();
        if read == expected || waited > Duration::from_secs(90) {
            break;
        }
    }
    assert!(sent, "the second member was never assigned a partition");
    assert_eq!(first.from_consumer + second.from_consumer, 0);
    assert!(!second.from_queue.is_empty(), "the new member read nothing");
    assert!(
        first.from_queue.len() > before,
        "the first member read nothing after the rebalance"
    );
    let read = payloads(&[&first, &second]);
    let missing: Vec<_> = expected.difference(&read).collect();
    assert!(missing.is_empty(), "never read: {missing:?}");
    // From the committed offsets on: nothing read twice, each partition in order.
    assert_eq!(read.len(), first.from_queue.len() + second.from_queue.len());
    first.offsets();
    second.offsets();
}

/// A broker with `events` valid events of `agents` agents (one event time per millisecond)
/// on a `partitions`-partition outcome topic, the processor's config for `group` with a 1 h
/// tumbling count per agent, and the events' agents.
struct Backlog {
    broker: KafkaCluster,
    config: Config,
    sql_dir: tempfile::TempDir,
    agents: Vec<String>,
}

impl Backlog {
    async fn new(events: usize, agents: usize, partitions: i32, vars: &[(&str, &str)]) -> Self {
        let broker = KafkaCluster::start();
        let servers = broker.bootstrap_servers();
        let sql_dir = tempfile::tempdir().unwrap();
        std::fs::write(
            sql_dir.path().join("per_agent.sql"),
            "SELECT agent_name, COUNT(*) AS n FROM agent_outcomes \
             WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY agent_name",
        )
        .unwrap();
        let group = format!("backlog-{}", uuid::Uuid::new_v4().simple());
        let mut all_vars = vec![
            ("KAFKA_CONSUMER_GROUP", group.as_str()),
            ("PROCESSOR_SQL_DIR", sql_dir.path().to_str().unwrap()),
        ];
        all_vars.extend_from_slice(vars);
        let config = common::config(&servers, &all_vars);
        let topics = &config.topics;
        ensure_topics(
            &config.kafka.client_config(&servers),
            &[
                TopicSpec::new(&topics.outcomes, partitions),
                TopicSpec::new(&topics.metrics, 1),
                TopicSpec::new(&topics.dead_letters, 1),
            ],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let producer: FutureProducer = config.kafka.producer_config(&servers).create().unwrap();
        let agents: Vec<String> = (0..agents).map(|a| format!("agent_{a}")).collect();
        let base = chrono::Utc::now() - chrono::Duration::hours(3);
        let records: Vec<(String, Vec<u8>)> = (0..events)
            .map(|n| {
                let agent = &agents[n % agents.len()];
                let mut event = OutcomeEvent::builder(agent, "act").build().unwrap();
                event.timestamp = base + chrono::Duration::milliseconds(n as i64);
                (agent.clone(), event.to_json_vec().unwrap())
            })
            .collect();
        send_all(
            &producer,
            &topics.outcomes,
            &records,
            5_000,
            Duration::from_secs(30),
        )
        .await;
        Self {
            broker,
            config,
            sql_dir,
            agents,
        }
    }

    async fn processor(&self) -> Processor {
        let queries = QueryDefinition::load_dir(self.sql_dir.path())
            .await
            .unwrap();
        Processor::new(&self.config, &self.broker.bootstrap_servers(), &queries).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_is_noticed_while_a_backlog_keeps_every_batch_full() {
    const EVENTS: usize = 100_000;
    let backlog = Backlog::new(EVENTS, 2, 2, &[]).await;
    let processor = backlog.processor().await;
    let stats = processor.stats();
    let (stop, running) = start(processor);
    wait_until(Duration::from_secs(60), "the first batch", || {
        let consumed = stats.consumed();
        async move { (consumed > 0).then_some(()) }
    })
    .await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the processor stopped")
        .unwrap()
        .unwrap();
    let consumed = stats.consumed() as usize;
    assert!(
        consumed < EVENTS,
        "stopped only once the backlog was read ({consumed} of {EVENTS})"
    );
}

/// A second instance joining while the first reads a backlog revokes and re-assigns the
/// first one's partitions within one of its (long) ticks; every agent's count must still be
/// whole: nothing read after the re-assignment may be dropped with what the revocation
/// dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_in_the_middle_of_a_backlog_loses_no_event() {
    const EVENTS: usize = 60_000;
    const AGENTS: usize = 8;
    let backlog = Backlog::new(
        EVENTS,
        AGENTS,
        4,
        &[
            ("PROCESSOR_TICK_MS", "5000"),
            ("WINDOW_IDLE_CLOSE_MS", "1500"),
        ],
    )
    .await;
    let first = backlog.processor().await;
    let stats = first.stats();
    let mut running = vec![start(first)];
    wait_until(
        Duration::from_secs(60),
        "the first instance reading",
        || {
            let consumed = stats.consumed();
            async move { (consumed >= 5_000).then_some(()) }
        },
    )
    .await;
    running.push(start(backlog.processor().await));

    let servers = backlog.broker.bootstrap_servers();
    let metrics = &backlog.config.topics.metrics;
    let counts: BTreeMap<String, u64> = wait_until(
        Duration::from_secs(180),
        "a count for every agent",
        || async {
            let mut counts = BTreeMap::new();
            for message in read_raw(&servers, metrics, usize::MAX, Duration::from_secs(2)).await {
                let value: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
                let agent = value["agent_name"].as_str().unwrap().to_owned();
                let n = value["n"].as_u64().unwrap();
                if let Some(previous) = counts.insert(agent.clone(), n) {
                    assert_eq!(previous, n, "{agent}'s count changed when emitted again");
                }
            }
            (counts.len() == AGENTS).then_some(counts)
        },
    )
    .await;
    for (stop, run) in running {
        let _ = stop.send(());
        run.await.unwrap().unwrap();
    }
    let expected: BTreeMap<String, u64> = backlog
        .agents
        .iter()
        .map(|agent| (agent.clone(), (EVENTS / AGENTS) as u64))
        .collect();
    assert_eq!(counts, expected);
}
