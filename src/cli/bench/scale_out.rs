//! `bench processor --instances 1,2,3`: the same events through 1, 2, 3 … processors in one
//! consumer group, each count on a fresh topic filled, once every instance holds partitions,
//! while they read it (so no event is read twice after a rebalance): events per second end to
//! end, and for queries across partitions the merge latency (a window's last partial handed
//! over → its merged row).

use std::sync::Arc;
use std::time::{Duration, Instant};

use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::{EmbeddedCluster, TopicSpec};
use feedback_pipeline::metrics::ProcessorStats;
use feedback_pipeline::processor::merge::repartition_topic;
use feedback_pipeline::processor::{Processor, QueryDefinition};

use super::processor::{ProcessorBenchArgs, bench_queries, bench_topics, produce};

/// Partitions of each run's topic.
const PARTITIONS: i32 = 4;

/// Runs every instance count of `args.instances` and prints a line for each.
pub async fn scale_out(
    mut config: Config,
    args: &ProcessorBenchArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let prefix = format!("bench-scale-{}", uuid::Uuid::new_v4().simple());
    let topic = |n: usize| format!("{prefix}-{n}");
    // The mock cluster cannot create topics later: every run's topics now.
    let mut topics = Vec::new();
    for &n in &args.instances {
        topics.extend(bench_topics(&topic(n)));
        topics.push(TopicSpec::new(
            repartition_topic(&group(&topic(n))),
            PARTITIONS,
        ));
    }
    let (_embedded, servers) =
        EmbeddedCluster::unless_configured(&config.kafka, &topics, Duration::from_secs(10)).await?;
    let queries = bench_queries(args).await?;
    let names: Vec<_> = queries.iter().map(|q| q.name.as_str()).collect();
    println!(
        "{} events from {} agents over {} s of event time per run; queries: {}",
        args.events,
        args.agents,
        args.span_secs,
        names.join(", ")
    );
    println!("instances  events/s   merge latency p50   p99   (windows merged)");
    config.processor.metrics_addr = "127.0.0.1:0".into();
    for &n in &args.instances {
        point_at(&mut config, &topic(n));
        let run = run_instances(&config, &servers, &queries, args, n).await?;
        let latency = |q: f64| quantile(&run.merge_buckets, q).map_or("-".into(), format_ms);
        println!(
            "{n:>9}  {:>8.0}   {:>17}   {:>5}   ({})",
            run.rate,
            latency(0.5),
            latency(0.99),
            run.merge_buckets.last().map_or(0, |b| b.1)
        );
    }
    Ok(())
}

/// The consumer group of the run on `topic`.
fn group(topic: &str) -> String {
    format!("{topic}-group")
}

fn point_at(config: &mut Config, topic: &str) {
    config.topics.outcomes = topic.to_owned();
    config.topics.metrics = format!("{topic}-metrics");
    config.topics.alerts = format!("{topic}-alerts");
    config.topics.dead_letters = format!("{topic}-dlq");
    config.kafka.consumer_group = group(topic);
}

/// What one instance count measured.
struct ScaleRun {
    rate: f64,
    /// Merge latency buckets summed over the instances: (upper bound s, cumulative count).
    merge_buckets: Vec<(f64, u64)>,
}

/// Starts `n` processors, waits until all hold partitions, fills the topic and measures
/// from the first event consumed to the last.
async fn run_instances(
    config: &Config,
    servers: &str,
    queries: &[Arc<QueryDefinition>],
    args: &ProcessorBenchArgs,
    n: usize,
) -> Result<ScaleRun, Box<dyn std::error::Error>> {
    let mut running = Vec::new();
    for _ in 0..n {
        let processor = Processor::new(config, servers, queries)?;
        let stats = processor.stats();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(processor.run(async move {
            let _ = stopped.await;
        }));
        running.push((stats, stop, task));
    }
    let all_stats: Vec<Arc<ProcessorStats>> = running.iter().map(|r| Arc::clone(&r.0)).collect();
    wait_for(Duration::from_secs(60), || {
        let held: Vec<i64> = all_stats.iter().map(|s| s.assigned()).collect();
        held.iter().all(|&h| h > 0) && held.iter().sum::<i64>() == i64::from(PARTITIONS)
    })
    .await?;
    // The topic fills while the instances read it: the clock runs from the first event
    // consumed to the last, so the rate is end to end (the producer shares the cores).
    let producer_config = config.kafka.producer_config(servers);
    let (topic, fill) = (config.topics.outcomes.clone(), args.clone());
    let producing = tokio::task::spawn_blocking(move || {
        produce(&producer_config, &topic, &fill).map_err(|e| e.to_string())
    });
    let consumed = || all_stats.iter().map(|s| s.consumed()).sum::<u64>();
    wait_for(Duration::from_secs(600), || consumed() > 0).await?;
    let started = Instant::now();
    wait_for(Duration::from_secs(600), || {
        consumed() >= args.events as u64
    })
    .await?;
    let rate = args.events as f64 / started.elapsed().as_secs_f64();
    producing.await??;
    // Let the last windows merge before reading the latencies.
    let merged = || {
        all_stats
            .iter()
            .map(|s| s.merge_latency_buckets().last().map_or(0, |b| b.1))
            .sum::<u64>()
    };
    let before = merged();
    let _ = wait_for(Duration::from_secs(5), || merged() > before).await;
    let merge_buckets = sum_buckets(&all_stats);
    for (_, stop, task) in running {
        let _ = stop.send(());
        task.await??;
    }
    Ok(ScaleRun {
        rate,
        merge_buckets,
    })
}

/// Polls `condition` every 5 ms until it holds; an error after `timeout`.
async fn wait_for(
    timeout: Duration,
    condition: impl Fn() -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            return Err(format!("no progress within {timeout:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn sum_buckets(stats: &[Arc<ProcessorStats>]) -> Vec<(f64, u64)> {
    let mut total: Vec<(f64, u64)> = Vec::new();
    for buckets in stats.iter().map(|s| s.merge_latency_buckets()) {
        if total.is_empty() {
            total = buckets;
        } else {
            for (sum, (_, count)) in total.iter_mut().zip(buckets) {
                sum.1 += count;
            }
        }
    }
    total
}

/// The `q` quantile of cumulative histogram buckets, interpolated within its bucket;
/// `None` without observations.
fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(upper, count) in buckets {
        if count as f64 >= rank {
            if upper.is_infinite() {
                return Some(lower.0);
            }
            let within = (rank - lower.1 as f64) / (count - lower.1).max(1) as f64;
            return Some(lower.0 + within * (upper - lower.0));
        }
        lower = (upper, count);
    }
    Some(lower.0)
}

fn format_ms(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1000.0)
}
