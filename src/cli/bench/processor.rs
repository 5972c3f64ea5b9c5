//! `feedback-pipeline bench processor`: events per second from the outcome topic through
//! decode, windows and SQL, against a bare rdkafka consumer reading the same topic; and the
//! process's peak memory (VmHWM) at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use clap::Args;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use feedback_pipeline::config::Config;
use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::kafka::{EmbeddedCluster, TopicSpec};
use feedback_pipeline::processor::Processor;
use feedback_pipeline::processor::QueryDefinition;

use super::measure::{CountingContext, median};

/// Options of `bench processor`.
#[derive(Debug, Clone, Args)]
pub struct ProcessorBenchArgs {
    /// Events on the topic.
    #[arg(long, default_value_t = 1_000_000)]
    pub(super) events: usize,
    /// Distinct agents (groups per window).
    #[arg(long, default_value_t = 100)]
    pub(super) agents: usize,
    /// Event time the events span, in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub(super) span_secs: u64,
    /// Directory of window queries (default: a 1 h / 5 min hopping query per agent with
    /// count, average and p95 latency); `sql` runs the shipped queries.
    #[arg(long)]
    pub(super) sql: Option<PathBuf>,
    /// Runs of each side; the median is reported. 0: only fill the topic.
    #[arg(long, default_value_t = 3)]
    pub(super) runs: usize,
    /// The topic (`--topic`) already holds the events: skip producing, so this process's
    /// peak memory is the processor's alone.
    #[arg(long)]
    pub(super) skip_produce: bool,
    /// Skip the bare consumer (for a clean peak-memory reading of the processor alone).
    #[arg(long)]
    pub(super) processor_only: bool,
    /// Topic to fill and read (default: a new one); with `bench cluster` in another process,
    /// the topic that cluster was started with.
    #[arg(long)]
    pub(super) topic: Option<String>,
    /// Instance counts to compare, e.g. `1,2,3`: each runs that many processors in one
    /// group on a fresh topic, filled once all of them hold partitions.
    #[arg(long, value_delimiter = ',')]
    pub(super) instances: Vec<usize>,
    /// Run the default query across agents (merged through the repartition topic) instead
    /// of per agent.
    #[arg(long)]
    pub(super) global: bool,
}

/// Options of `bench cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Outcome topic to create (4 partitions), with the result and dead-letter topics
    /// `bench processor --topic` uses: the mock cluster cannot create topics later.
    #[arg(long, default_value = "bench-outcomes")]
    topic: String,
}

/// Every topic a benchmark over `topic` writes or reads.
pub(super) fn bench_topics(topic: &str) -> Vec<TopicSpec> {
    vec![
        TopicSpec::new(topic, 4),
        TopicSpec::new(format!("{topic}-metrics"), 4),
        TopicSpec::new(format!("{topic}-alerts"), 1),
        TopicSpec::new(format!("{topic}-dlq"), 1),
    ]
}

/// The consumer group of one run.
fn group(topic: &str, run: usize) -> String {
    format!("{topic}-run{run}")
}

/// Hosts an in-process mock cluster until Ctrl-C, so a benchmark in another process can
/// measure its own memory without the broker's.
pub async fn cluster(args: ClusterArgs) -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start(1, &bench_topics(&args.topic))?;
    println!("KAFKA_BOOTSTRAP_SERVERS={}", cluster.bootstrap_servers());
    println!(
        "topic {} (4 partitions); Ctrl-C stops the cluster",
        args.topic
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The default query: the 1 h window advancing by 5 min, per agent.
pub(super) const HOPPING_QUERY: &str = "SELECT agent_name, COUNT(*) AS executions, \
    AVG(latency_ms) AS avg_latency_ms, approx_percentile_cont(latency_ms, 0.95) AS p95_latency_ms, \
    COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate \
    FROM agent_outcomes WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 5 MINUTES) GROUP BY agent_name";

/// Runs the benchmark and prints its numbers.
pub async fn processor(
    mut config: Config,
    args: ProcessorBenchArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let topic = TopicSpec::new(
        args.topic
            .clone()
            .unwrap_or_else(|| format!("bench-{}", uuid::Uuid::new_v4().simple())),
        4,
    );
    let topics = bench_topics(&topic.name);
    let (embedded, servers) =
        EmbeddedCluster::unless_configured(&config.kafka, &topics, Duration::from_secs(10)).await?;
    let queries = bench_queries(&args).await?;
    let started = Instant::now();
    if !args.skip_produce {
        let producer_config = config.kafka.producer_config(&servers);
        tokio::task::block_in_place(|| produce(&producer_config, &topic.name, &args))?;
    }
    println!(
        "broker: {}; {} events from {} agents over {} s of event time on {} (produced in {:.1} s); queries: {}",
        if embedded.is_some() {
            "embedded mock cluster"
        } else {
            servers.as_str()
        },
        args.events,
        args.agents,
        args.span_secs,
        topic.name,
        started.elapsed().as_secs_f64(),
        queries
            .iter()
            .map(|q| q.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    if args.runs == 0 {
        return Ok(());
    }
    // Peak memory from here on is the processor's (Linux: 5 in clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    config.topics.outcomes = topic.name.clone();
    config.topics.metrics = format!("{}-metrics", topic.name);
    config.topics.alerts = format!("{}-alerts", topic.name);
    config.topics.dead_letters = format!("{}-dlq", topic.name);
    config.processor.metrics_addr = "127.0.0.1:0".into();
    let fresh_groups = embedded.is_none() && args.skip_produce;
    let (processor_rates, bare_rates) =
        measure(&mut config, &servers, &queries, &args, fresh_groups).await?;
    report(processor_rates, bare_rates);
    Ok(())
}

/// The queries of `--sql`, or the default query (per agent, or across agents with
/// `--global`).
pub(super) async fn bench_queries(
    args: &ProcessorBenchArgs,
) -> Result<Vec<Arc<QueryDefinition>>, Box<dyn std::error::Error>> {
    if let Some(dir) = &args.sql {
        return Ok(QueryDefinition::load_dir(dir).await?);
    }
    let (name, sql) = if args.global {
        ("hopping_1h_5m_global", GLOBAL_QUERY)
    } else {
        ("hopping_1h_5m", HOPPING_QUERY)
    };
    Ok(vec![Arc::new(
        QueryDefinition::compile(name, "bench", sql).await?,
    )])
}

/// The default query's measures over all agents: a query across partitions.
const GLOBAL_QUERY: &str = "SELECT COUNT(*) AS executions, \
    AVG(latency_ms) AS avg_latency_ms, approx_percentile_cont(latency_ms, 0.95) AS p95_latency_ms, \
    COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate \
    FROM agent_outcomes WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 5 MINUTES)";

/// Runs the processor (and, unless `--processor-only`, the bare consumer) `runs` times;
/// returns the rates of each. `fresh_groups`: the topic was read before, so each run reads
/// it from the start with a new group.
async fn measure(
    config: &mut Config,
    servers: &str,
    queries: &[Arc<QueryDefinition>],
    args: &ProcessorBenchArgs,
    fresh_groups: bool,
) -> Result<(Vec<f64>, Vec<f64>), Box<dyn std::error::Error>> {
    let topic = config.topics.outcomes.clone();
    let mut processor_rates = Vec::new();
    let mut bare_rates = Vec::new();
    for run in 0..args.runs {
        config.kafka.consumer_group = group(&topic, run);
        if fresh_groups {
            config.kafka.consumer_group += &format!("-{}", uuid::Uuid::new_v4().simple());
        }
        let rate = processor_run(config, servers, queries, args.events as u64).await?;
        processor_rates.push(rate);
        if args.processor_only {
            println!("run {run}: processor {rate:>10.0} events/s");
            continue;
        }
        let bare = tokio::task::block_in_place(|| {
            bare_consumer_run(config, servers, &topic, args.events)
        })?;
        bare_rates.push(bare);
        println!(
            "run {run}: processor {rate:>10.0} events/s   bare consumer {bare:>10.0} events/s"
        );
    }
    Ok((processor_rates, bare_rates))
}

/// Prints the medians, their ratio and the peak memory.
fn report(mut processor_rates: Vec<f64>, mut bare_rates: Vec<f64>) {
    let processor = median(&mut processor_rates);
    if bare_rates.is_empty() {
        println!("median: processor {processor:.0} events/s");
    } else {
        let bare = median(&mut bare_rates);
        println!(
            "median: processor {processor:.0} events/s, bare consumer {bare:.0} events/s, ratio {:.2}",
            processor / bare
        );
    }
    if let Some(peak) = peak_rss_mb() {
        println!("peak RSS while consuming (VmHWM after the producing phase): {peak:.0} MB");
    }
}

/// Produces the synthetic events: `agents` agents, event time rising evenly over the span
/// with up to 2 s of disorder, one in ten a failure.
pub(super) fn produce(
    config: &rdkafka::ClientConfig,
    topic: &str,
    args: &ProcessorBenchArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producer = ThreadedProducer::from_config_and_context(
        config
            .clone()
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("compression.type", "lz4")
            // Bounded, so the producing phase does not dominate this process's peak memory.
            .set("queue.buffering.max.kbytes", "32768"),
        CountingContext(acked.clone()),
    )?;
    let base = Utc.timestamp_millis_opt(1_767_225_600_000).unwrap();
    let step = args.span_secs as f64 * 1000.0 / args.events.max(1) as f64;
    let template = OutcomeEvent::builder("agent", "process_task")
        .agent_type("bench")
        .status(OutcomeStatus::Success)
        .build()?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for n in 0..args.events {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut event = template.clone();
        event.agent_name = format!("agent_{:03}", state % args.agents as u64);
        let jitter = (state >> 20) % 2_000;
        event.timestamp =
            base + chrono::Duration::milliseconds((n as f64 * step) as i64 - jitter as i64);
        event.latency_ms = ((state >> 32) % 5_000) as f64;
        if (state >> 8).is_multiple_of(10) {
            event.status = OutcomeStatus::Failure;
        }
        let payload = event.to_json_vec()?;
        loop {
            match producer.send(
                BaseRecord::to(topic)
                    .key(&event.agent_name)
                    .payload(&payload),
            ) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    _,
                )) => producer.poll(Duration::from_millis(5)),
                Err((err, _)) => return Err(err.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(600))?;
    let acked = acked.load(std::sync::atomic::Ordering::Relaxed);
    if acked != args.events as u64 {
        return Err(format!("only {acked} of {} events acknowledged", args.events).into());
    }
    Ok(())
}

/// One processor instance in a new group, from the first offset until every event was read
/// and the windows they fill were evaluated.
async fn processor_run(
    config: &Config,
    servers: &str,
    queries: &[Arc<QueryDefinition>],
    events: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let processor = Processor::new(config, servers, queries)?;
    let stats = processor.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(processor.run(async move {
        let _ = stopped.await;
    }));
    // The clock starts at the first event, as the bare consumer's does: group joins and topic
    // set-up are not throughput.
    while stats.consumed() == 0 && !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let first = stats.consumed();
    let mut reported = Instant::now();
    let mut peak_state = (0, 0);
    while stats.consumed() < events {
        if running.is_finished() {
            break;
        }
        let (panes, groups) = stats.open_state();
        peak_state = (peak_state.0.max(panes), peak_state.1.max(groups));
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!("  ... {} of {events} consumed", stats.snapshot().consumed);
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    running.await??;
    let snapshot = stats.snapshot();
    if snapshot.consumed < events {
        return Err(format!("processor stopped after {} events", snapshot.consumed).into());
    }
    if !snapshot.dead_letters.is_empty() {
        eprintln!("  dead letters: {:?}", snapshot.dead_letters);
    }
    println!(
        "  peak open state: {} panes, {} (pane, group) states; {} rows updated",
        peak_state.0,
        peak_state.1,
        stats.window_updates()
    );
    Ok((events - first) as f64 / elapsed.as_secs_f64())
}

/// A bare consumer in a new group reading `events` messages from the first offset.
fn bare_consumer_run(
    config: &Config,
    servers: &str,
    topic: &str,
    events: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let consumer: BaseConsumer = config
        .kafka
        .consumer_config(servers)
        .set("group.id", format!("bench-bare-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut started = None;
    let mut read = 0usize;
    let mut bytes = 0usize;
    while read < events {
        if Instant::now() > deadline {
            return Err(format!("bare consumer read only {read} of {events}").into());
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            started.get_or_insert_with(Instant::now);
            bytes += message.payload_len();
            read += 1;
        }
    }
    std::hint::black_box(bytes);
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    // The first message starts the clock, as for the processor.
    Ok((events - 1) as f64 / elapsed.as_secs_f64())
}

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
