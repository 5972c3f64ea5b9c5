//! The command line: the subcommands and their dispatch.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use super::settings::load_config;
use super::{alerts, bench, config_cmd, query, run, serve};

/// Outcome tracking for AI agent actions.
#[derive(Debug, Parser)]
#[command(name = "feedback-pipeline", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline (the default). With no KAFKA_BOOTSTRAP_SERVERS it starts an in-process
    /// Kafka cluster and a fleet of simulated agents.
    Run(run::RunArgs),
    /// The processor service against KAFKA_BOOTSTRAP_SERVERS: windows, SQL, results.
    Serve,
    /// Run one ad-hoc window query over the outcome topic and print the windows.
    Query(query::QueryArgs),
    /// Alerts: forward them to PagerDuty/Slack, or check the rules.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Print the JSON Schema of an outcome event.
    Schema,
    /// Measure throughput (prints numbers; see README "Benchmarks").
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl Cli {
    /// Whether this command shows `run`'s live view (the bare command included).
    fn live_view(&self) -> bool {
        match &self.command {
            None => run::RunArgs::default().live_view(),
            Some(Command::Run(args)) => args.live_view(),
            Some(_) => false,
        }
    }
}

/// Where the live view's logs go: the screen belongs to the view.
pub fn log_file() -> std::path::PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("feedback-pipeline")
        .join("run.log")
}

/// Logs go to stderr, filtered by RUST_LOG (default `info`); under the live view to
/// [`log_file`], without the per-event outcome lines (they are `debug` there).
pub fn init_tracing(cli: &Cli) {
    let live = cli.live_view();
    let default = if live {
        "info,feedback_pipeline::outcome=warn"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let file = live.then(|| {
        let path = log_file();
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(&path));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    });
    match file {
        Some(Ok(file)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init(),
        Some(Err(_)) => builder.with_writer(std::io::sink).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}

/// Runs the chosen subcommand.
pub fn execute(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command.unwrap_or(Command::Run(run::RunArgs::default())) {
        Command::Run(args) => {
            let config = load_config()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(run::run(config, args))
        }
        Command::Serve => {
            let config = load_config()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve::serve(config))
        }
        Command::Query(args) => {
            let config = load_config()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(query::query(config, args))
        }
        Command::Alerts(command) => {
            let config = load_config()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(alerts::execute(config, command))
        }
        Command::Config(command) => config_cmd::execute(command),
        Command::Bench(command) => {
            let config = load_config()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(bench::execute(config, command))
        }
        Command::Schema => {
            let schema = feedback_pipeline::event::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(())
        }
    }
}
