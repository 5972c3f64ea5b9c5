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

/// Logs go to stderr, filtered by RUST_LOG (default `info`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
