//! `feedback-pipeline run`: the whole pipeline in one process — simulated agents through
//! `ActionDispatcher`, Kafka (in-process when no cluster is configured), the processor — and
//! window results printed as windows close.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, json};

use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::EmbeddedCluster;
use feedback_pipeline::metrics::StatsSnapshot;
use feedback_pipeline::processor::Processor;
use feedback_pipeline::producer::{ActionDispatcher, FeedbackPipeline, PipelineOptions};
use feedback_pipeline::simulate::Fleet;

use super::serve::{load_queries, shutdown_signal, start_http, topic_specs, with_alert_rules};

/// Options of `run`.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Stop once the processor has consumed this many events (default: run until Ctrl-C).
    #[arg(long)]
    max_events: Option<u64>,
    /// Simulated actions dispatched per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
}

/// Runs agents, Kafka and the processor together.
pub async fn run(config: Config, args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let topics = topic_specs(&config);
    // Held for the whole run: dropping it stops the in-process brokers.
    let (_embedded, servers) =
        EmbeddedCluster::unless_configured(&config.kafka, &topics, Duration::from_secs(30)).await?;
    let queries = load_queries(&config).await?;
    let mut processor = with_alert_rules(
        &config,
        &queries,
        Processor::new(&config, &servers, &queries)?,
    )?;
    let stats = processor.stats();
    let mut results = processor.subscribe_results();
    let mut alerts = processor.subscribe_alerts();
    let (stop_http, http) = start_http(&config, &processor).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut processing = tokio::spawn(processor.run(async move {
        let _ = stopped.await;
    }));

    let pipeline = Arc::new(FeedbackPipeline::new(PipelineOptions::from_config(
        &config,
        Some(&servers),
    ))?);
    let dispatcher = Arc::new(ActionDispatcher::new(Arc::clone(&pipeline)));
    let agents_task = spawn_fleet(dispatcher, args.rate);

    let mut check = tokio::time::interval(Duration::from_millis(100));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // The processor ending on its own (an error, a panic) ends the run with its reason.
    let ended_early = loop {
        tokio::select! {
            _ = &mut shutdown => break None,
            ended = &mut processing => break Some(ended),
            Some(record) = results.recv() => println!("{} {}", record.key, record.value),
            Some(alert) = alerts.recv() => println!("ALERT {} {}", alert.action.as_str(), alert.summary),
            _ = check.tick() => {
                if args.max_events.is_some_and(|max| stats.snapshot().consumed >= max) {
                    break None;
                }
            }
        }
    };
    agents_task.abort();
    let ended = match ended_early {
        Some(ended) => ended,
        None => {
            let _ = stop.send(());
            processing.await
        }
    };
    ended.map_err(|err| format!("the processor stopped: {err}"))??;
    let _ = stop_http.send(());
    let _ = http.await;
    pipeline.shutdown(Duration::from_secs(5));
    print_summary(&stats.snapshot(), &pipeline);
    Ok(())
}

/// Dispatches the standard simulated fleet's actions, `rate` per second, round robin.
fn spawn_fleet(dispatcher: Arc<ActionDispatcher>, rate: u32) -> tokio::task::JoinHandle<()> {
    let fleet = Fleet::standard(1);
    let agents: Vec<_> = fleet.agents().iter().cloned().map(Arc::new).collect();
    let rate = rate.max(1);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
        for n in 0u64.. {
            ticker.tick().await;
            let agent = Arc::clone(&agents[(n % agents.len() as u64) as usize]);
            let dispatcher = Arc::clone(&dispatcher);
            tokio::spawn(async move {
                dispatcher
                    .dispatch(
                        agent.as_ref(),
                        "process_task",
                        json!({ "n": n }),
                        Map::new(),
                        &["simulated"],
                    )
                    .await
            });
        }
    })
}

/// The run's totals and the recent events per agent.
fn print_summary(snapshot: &StatsSnapshot, pipeline: &FeedbackPipeline) {
    println!(
        "{} events consumed, {} windows emitted, dead letters {:?}",
        snapshot.consumed, snapshot.windows_emitted, snapshot.dead_letters
    );
    let mut per_agent: BTreeMap<String, u64> = BTreeMap::new();
    for event in pipeline.get_recent_events(usize::MAX, None, None) {
        *per_agent.entry(event.agent_name.clone()).or_default() += 1;
    }
    for (agent, count) in per_agent {
        println!("  {agent:<18} {count:>8} recent events");
    }
}
