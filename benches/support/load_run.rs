//! The shared `main` of the load-run benches: `feedback-pipeline bench <subcommand>` built with
//! the bench profile, its options read from `BENCH_ARGS`.

#[path = "../../src/cli/bench/mod.rs"]
mod bench;

use clap::Parser;

use feedback_pipeline::config::Config;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: bench::BenchCommand,
}

/// Runs `bench <subcommand>` with the words of `BENCH_ARGS`, as the binary `program` would.
pub fn run(program: &str, subcommand: &str) -> Result<(), Box<dyn std::error::Error>> {
    let extra = std::env::var("BENCH_ARGS").unwrap_or_default();
    let words = [program, subcommand]
        .into_iter()
        .map(str::to_owned)
        .chain(extra.split_whitespace().map(str::to_owned));
    let args = Args::parse_from(words);
    let config = Config::from_env()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench::execute(config, args.command))
}
