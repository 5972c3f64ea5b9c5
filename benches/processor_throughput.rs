//! `cargo bench --bench processor_throughput`: the `feedback-pipeline bench processor` run,
//! built with the bench profile. Options go in `BENCH_ARGS`, e.g.
//! `BENCH_ARGS="--events 2000000 --runs 3"`; the broker is `KAFKA_BOOTSTRAP_SERVERS` (unset:
//! the in-process mock cluster).

#[path = "../src/cli/bench/mod.rs"]
mod bench;

use clap::Parser;

use feedback_pipeline::config::Config;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: bench::BenchCommand,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let extra = std::env::var("BENCH_ARGS").unwrap_or_default();
    let words = ["processor_throughput", "processor"]
        .into_iter()
        .map(str::to_owned)
        .chain(extra.split_whitespace().map(str::to_owned));
    let args = Args::parse_from(words);
    let config = Config::from_env()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench::execute(config, args.command))
}
