//! The `bench` subcommands and their dispatch.

use clap::Subcommand;

use feedback_pipeline::config::Config;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Producer throughput: FeedbackPipeline vs a bare rdkafka producer on the same broker.
    Producer(super::producer::ProducerBenchArgs),
    /// Processor throughput (vs a bare consumer) and peak memory.
    Processor(super::processor::ProcessorBenchArgs),
    /// Host a mock cluster for a benchmark in another process.
    Cluster(super::processor::ClusterArgs),
    /// Time dispatch adds over calling a no-op agent directly.
    Dispatch(super::dispatch::DispatchBenchArgs),
}

/// Runs a benchmark.
pub async fn execute(
    config: Config,
    command: BenchCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        BenchCommand::Producer(args) => super::producer::producer(config, args).await,
        BenchCommand::Processor(args) if args.instances.is_empty() => {
            super::processor::processor(config, args).await
        }
        BenchCommand::Processor(args) => super::scale_out::scale_out(config, &args).await,
        BenchCommand::Cluster(args) => super::processor::cluster(args).await,
        BenchCommand::Dispatch(args) => super::dispatch::dispatch(args).await,
    }
}
