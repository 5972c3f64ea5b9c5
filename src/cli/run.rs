//! `feedback-pipeline run`: the whole pipeline in one process — simulated agents on the demo
//! schedule through `ActionDispatcher`, Kafka (in-process when no cluster is configured), the
//! processor — shown in the live view, or printed as JSON Lines.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, FromArgMatches};
use serde_json::{Map, json};

use feedback_pipeline::config::Config;
use feedback_pipeline::kafka::EmbeddedCluster;
use feedback_pipeline::metrics::StatsSnapshot;
use feedback_pipeline::processor::Processor;
use feedback_pipeline::producer::{ActionDispatcher, FeedbackPipeline, PipelineOptions};
use feedback_pipeline::simulate::{DemoAgent, DemoSchedule, Fleet};

use super::output::RunOutput;
use super::serve::{
    grafana_links, load_queries, shutdown_signal, start_http, topic_specs, with_alert_rules,
};

/// Options of `run`.
#[derive(Debug, PartialEq, Args)]
pub struct RunArgs {
    /// Stop once the processor has consumed this many events (default: run until Ctrl-C).
    #[arg(long)]
    max_events: Option<u64>,
    /// Simulated actions dispatched per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Print results, alerts and the summary as JSON Lines instead of the live view (always
    /// so when stdout is not a terminal).
    #[arg(long)]
    json: bool,
    /// How much faster the demo schedule runs (tests pair it with shorter windows).
    #[arg(long, default_value_t = 1.0, hide = true)]
    demo_speed: f64,
}

impl RunArgs {
    /// Whether the run shows the live view: stdout is a terminal and `--json` is not given.
    pub fn live_view(&self) -> bool {
        !self.json && std::io::stdout().is_terminal()
    }
}

impl Default for RunArgs {
    /// What `run` with no options parses to: the bare command runs exactly like `run`.
    fn default() -> Self {
        let matches = Self::augment_args(clap::Command::new("run")).get_matches_from(["run"]);
        Self::from_arg_matches(&matches).expect("run's defaults parse")
    }
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
    let schedule = Arc::new(DemoSchedule::standard(args.demo_speed));
    let agents_task = spawn_fleet(dispatcher, args.rate, schedule);
    let mut output = RunOutput::new(args.live_view())?;
    output.dashboards(grafana_links(&config));

    let mut check = tokio::time::interval(Duration::from_millis(100));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // The processor ending on its own (an error, a panic) ends the run with its reason.
    let ended_early = loop {
        tokio::select! {
            _ = &mut shutdown => break None,
            ended = &mut processing => break Some(ended),
            Some(record) = results.recv() => output.result(&record),
            Some(alert) = alerts.recv() => output.alert(&alert),
            _ = check.tick() => {
                let reached = args.max_events.is_some_and(|max| stats.consumed() >= max);
                if reached || output.tick(&stats)? {
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
    // The terminal back before anything else is printed.
    let json = output.finish();
    ended.map_err(|err| format!("the processor stopped: {err}"))??;
    let _ = stop_http.send(());
    let _ = http.await;
    pipeline.shutdown(Duration::from_secs(5));
    print_summary(&stats.snapshot(), &pipeline, json);
    Ok(())
}

/// Dispatches the standard simulated fleet's actions, `rate` per second, round robin, each
/// agent following the demo `schedule`.
fn spawn_fleet(
    dispatcher: Arc<ActionDispatcher>,
    rate: u32,
    schedule: Arc<DemoSchedule>,
) -> tokio::task::JoinHandle<()> {
    let started = Instant::now();
    let agents: Vec<_> = Fleet::standard(1)
        .agents()
        .iter()
        .map(|agent| {
            Arc::new(DemoAgent {
                agent: agent.clone(),
                schedule: Arc::clone(&schedule),
                started,
            })
        })
        .collect();
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

/// The run's totals and the recent events per agent: a JSON line, or text.
fn print_summary(snapshot: &StatsSnapshot, pipeline: &FeedbackPipeline, json: bool) {
    let mut per_agent: BTreeMap<String, u64> = BTreeMap::new();
    for event in pipeline.get_recent_events(usize::MAX, None, None) {
        *per_agent.entry(event.agent_name.clone()).or_default() += 1;
    }
    if json {
        let summary = json!({
            "type": "summary",
            "consumed": snapshot.consumed,
            "windows_emitted": snapshot.windows_emitted,
            "dead_letters": snapshot.dead_letters,
            "recent_events": per_agent,
        });
        println!("{summary}");
        return;
    }
    println!(
        "{} events consumed, {} windows emitted, dead letters {:?}",
        snapshot.consumed, snapshot.windows_emitted, snapshot.dead_letters
    );
    for (agent, count) in per_agent {
        println!("  {agent:<18} {count:>8} recent events");
    }
    println!("logs: {}", super::log_file().display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_command_runs_at_the_documented_rate() {
        let bare = RunArgs::default();
        assert_eq!(bare.rate, 20, "the help text says 20 per second");
        assert_eq!(bare.max_events, None);
    }
}
