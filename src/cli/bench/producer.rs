//! `feedback-pipeline bench producer`: events per second through `FeedbackPipeline` to the
//! broker and acknowledged, against a bare rdkafka producer sending the same payloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::{EmbeddedCluster, TopicSpec};
use feedback_pipeline::producer::{FeedbackPipeline, PipelineOptions};
use feedback_pipeline::simulate::Fleet;

use super::measure::{CountingContext, median};

/// Options of `bench producer`.
#[derive(Debug, Args)]
pub struct ProducerBenchArgs {
    /// Events per run.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Runs of each side; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Runs `bench producer`.
pub async fn producer(
    mut config: Config,
    args: ProducerBenchArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let topics: Vec<TopicSpec> = (0..args.runs * 2)
        .map(|run| {
            TopicSpec::new(
                format!("bench-outcomes-{run}-{}", uuid::Uuid::new_v4().simple()),
                4,
            )
        })
        .collect();
    let (embedded, servers) =
        EmbeddedCluster::unless_configured(&config.kafka, &topics, Duration::from_secs(10)).await?;
    config.enable_outcome_logging = false;
    let broker = if embedded.is_some() {
        "embedded mock cluster"
    } else {
        servers.as_str()
    };
    println!(
        "broker: {broker}; {} events per run, {} runs, compression {:?}, batch {} linger {} ms",
        args.events,
        args.runs,
        config.kafka.compression,
        config.kafka.batch_size,
        config.kafka.linger_ms
    );

    let mut fleet = Fleet::standard(1);
    let events: Vec<_> = (0..args.events)
        .map(|_| fleet.next_event(Utc::now()))
        .collect();
    let mut pipeline_rates = Vec::new();
    let mut bare_rates = Vec::new();
    for run in 0..args.runs {
        let spool = tempfile_dir()?;
        let mut options = PipelineOptions::from_config(&config, Some(&servers));
        options.spool_dir = Some(spool.clone());
        if let Some(kafka) = &mut options.kafka {
            kafka.topic = topics[run * 2].name.clone();
        }
        let rate = tokio::task::block_in_place(|| pipeline_run(options, &events))?;
        let _ = std::fs::remove_dir_all(&spool);
        pipeline_rates.push(rate);

        let payloads: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| (e.agent_name.clone(), serde_json::to_vec(e).unwrap()))
            .collect();
        let producer_config = config.kafka.producer_config(&servers);
        let topic = topics[run * 2 + 1].name.clone();
        let bare = tokio::task::block_in_place(|| bare_run(&producer_config, &topic, &payloads))?;
        bare_rates.push(bare);
        println!("run {run}: pipeline {rate:>10.0} events/s   bare rdkafka {bare:>10.0} events/s");
    }
    let pipeline = median(&mut pipeline_rates);
    let bare = median(&mut bare_rates);
    println!(
        "median: pipeline {pipeline:.0} events/s, bare rdkafka {bare:.0} events/s, ratio {:.2}",
        pipeline / bare
    );
    Ok(())
}

/// Records every event, then waits until the broker acknowledged all of them.
fn pipeline_run(
    options: PipelineOptions,
    events: &[feedback_pipeline::OutcomeEvent],
) -> Result<f64, Box<dyn std::error::Error>> {
    let pipeline = FeedbackPipeline::new(options)?;
    let started = Instant::now();
    for event in events {
        pipeline.record_outcome(event.clone())?;
    }
    let outcome = pipeline.flush(Duration::from_secs(300));
    let elapsed = started.elapsed();
    let counters = pipeline.counters();
    if !outcome.delivered || counters.published != events.len() as u64 {
        return Err(format!("pipeline run incomplete: {counters:?}").into());
    }
    Ok(events.len() as f64 / elapsed.as_secs_f64())
}

/// Sends pre-encoded payloads with a bare ThreadedProducer and waits for every ack.
fn bare_run(
    config: &rdkafka::ClientConfig,
    topic: &str,
    payloads: &[(String, Vec<u8>)],
) -> Result<f64, Box<dyn std::error::Error>> {
    let acked = Arc::new(AtomicU64::new(0));
    let producer =
        ThreadedProducer::from_config_and_context(config, CountingContext(acked.clone()))?;
    let started = Instant::now();
    for (key, payload) in payloads {
        loop {
            match producer.send(BaseRecord::to(topic).key(key).payload(payload)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let elapsed = started.elapsed();
    if acked.load(Ordering::Relaxed) != payloads.len() as u64 {
        return Err("bare run incomplete".into());
    }
    Ok(payloads.len() as f64 / elapsed.as_secs_f64())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "feedback-bench-spool-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
