//! `feedback-pipeline run`: simulated agents → Kafka → consumer, printing what arrives.
//!
//! The windowed processor replaces the consumer half here once it lands; until then this shows
//! the event contract travelling through a real Kafka protocol end to end.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

use feedback_pipeline::config::Config;
use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::kafka::{EmbeddedCluster, TopicSpec, ensure_topics};
use feedback_pipeline::simulate::Fleet;

/// Options of `run`.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Stop after this many events have been consumed back (default: run until Ctrl-C).
    #[arg(long)]
    max_events: Option<u64>,
    /// Simulated events per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
}

/// Runs the simulated fleet against the configured (or embedded) cluster.
pub async fn run(config: Config, args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let rate = args.rate.max(1);
    let partitions = 4;
    let topics = [TopicSpec::new(&config.topics.outcomes, partitions)];
    // Held for the whole run: dropping it stops the in-process brokers.
    let embedded = match &config.kafka.bootstrap_servers {
        Some(_) => None,
        None => {
            tracing::info!(
                "KAFKA_BOOTSTRAP_SERVERS is not set: starting an in-process Kafka cluster"
            );
            Some(EmbeddedCluster::start(1, &topics)?)
        }
    };
    let servers = match (&config.kafka.bootstrap_servers, &embedded) {
        (Some(servers), _) => servers.clone(),
        (None, Some(cluster)) => cluster.bootstrap_servers().to_owned(),
        (None, None) => unreachable!("an embedded cluster is started when no servers are set"),
    };
    // The embedded cluster made its topics when it started (it does not serve CreateTopics).
    if embedded.is_none() {
        ensure_topics(
            &config.kafka.client_config(&servers),
            &topics,
            Duration::from_secs(10),
        )
        .await?;
    }

    let producer: FutureProducer = config.kafka.producer_config(&servers).create()?;
    let consumer: StreamConsumer = consumer_config(&config, &servers).create()?;
    consumer.subscribe(&[config.topics.outcomes.as_str()])?;

    let topic = config.topics.outcomes.clone();
    let publisher = tokio::spawn(async move {
        let mut fleet = Fleet::standard(Utc::now().timestamp_millis() as u64);
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
        loop {
            ticker.tick().await;
            let event = fleet.next_event(Utc::now());
            let payload = event.to_json_vec().expect("simulated events are valid");
            let record = FutureRecord::to(&topic)
                .key(&event.agent_name)
                .payload(&payload);
            if let Err((err, _)) = producer.send(record, Duration::from_secs(5)).await {
                tracing::warn!(%err, "publishing a simulated event failed");
            }
        }
    });

    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut consumed = 0u64;
    let mut report = tokio::time::interval(Duration::from_secs(5));
    report.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = report.tick() => print_counts(&counts, consumed),
            message = consumer.recv() => {
                let message = message?;
                match OutcomeEvent::from_json_slice(message.payload().unwrap_or_default()) {
                    Ok(event) => {
                        *counts.entry((event.agent_name, event.status.to_string())).or_default() += 1;
                    }
                    Err(err) => tracing::warn!(%err, offset = message.offset(), "rejected event"),
                }
                consumed += 1;
                if args.max_events.is_some_and(|max| consumed >= max) {
                    break;
                }
            }
        }
    }
    publisher.abort();
    print_counts(&counts, consumed);
    Ok(())
}

fn consumer_config(config: &Config, servers: &str) -> ClientConfig {
    let mut client = config.kafka.client_config(servers);
    client
        .set("group.id", &config.kafka.consumer_group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    client
}

fn print_counts(counts: &BTreeMap<(String, String), u64>, consumed: u64) {
    println!("{consumed} events consumed");
    for ((agent, status), count) in counts {
        println!("  {agent:<18} {status:<10} {count:>8}");
    }
}
