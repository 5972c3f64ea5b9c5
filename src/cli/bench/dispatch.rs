//! `feedback-pipeline bench dispatch`: the time `ActionDispatcher` adds over calling a no-op
//! agent directly, from the release binary (the criterion bench `dispatch` measures the same
//! with confidence intervals, but needs a build with the dev-dependencies).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::{Map, Value};

use feedback_pipeline::producer::{
    ActionContext, ActionDispatcher, ActionRequest, Agent, FeedbackPipeline, PipelineOptions,
};
use feedback_pipeline::simulate::NoopAgent;

use super::measure::median;

/// Options of `bench dispatch`.
#[derive(Debug, Args)]
pub struct DispatchBenchArgs {
    /// Calls per run and side.
    #[arg(long, default_value_t = 200_000)]
    calls: u32,
    /// Runs; medians are reported.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Hand each event to the sink thread (with outcome logging on, no subscriber output),
    /// as every event is when Kafka or logging is on.
    #[arg(long)]
    handoff: bool,
}

/// Runs the benchmark and prints nanoseconds per call.
pub async fn dispatch(args: DispatchBenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let options = PipelineOptions {
        log_outcomes: args.handoff,
        ..PipelineOptions::default()
    };
    let dispatcher = ActionDispatcher::new(Arc::new(FeedbackPipeline::new(options)?));
    let context = ActionContext::default();
    let (mut direct, mut dispatched) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let started = Instant::now();
        for _ in 0..args.calls {
            let _ = black_box(NoopAgent.execute(&Value::Null, &context).await);
        }
        let direct_ns = started.elapsed().as_nanos() as f64 / f64::from(args.calls);
        let started = Instant::now();
        for _ in 0..args.calls {
            let request = ActionRequest::new("noop", Value::Null).context(Map::new());
            black_box(dispatcher.dispatch_request(&NoopAgent, request).await);
        }
        let dispatch_ns = started.elapsed().as_nanos() as f64 / f64::from(args.calls);
        println!("run {run}: direct {direct_ns:>8.0} ns   dispatch {dispatch_ns:>8.0} ns");
        direct.push(direct_ns);
        dispatched.push(dispatch_ns);
    }
    let (direct, dispatched) = (median(&mut direct), median(&mut dispatched));
    println!(
        "median: direct {direct:.0} ns, dispatch {dispatched:.0} ns, overhead {:.0} ns{}",
        dispatched - direct,
        if args.handoff {
            " (with the sink hand-off)"
        } else {
            " (in memory)"
        }
    );
    Ok(())
}
