//! Time `ActionDispatcher::dispatch` adds over calling a no-op agent directly.
//!
//! `cargo bench --bench dispatch`. The "handoff" variant includes the queue to the sink thread
//! (the path every event takes when Kafka or logging is on); "in_memory" has no sink thread.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value};

use feedback_pipeline::producer::{
    ActionContext, ActionDispatcher, ActionRequest, Agent, FeedbackPipeline, PipelineOptions,
};
use feedback_pipeline::simulate::NoopAgent;

fn dispatcher(log_outcomes: bool) -> ActionDispatcher {
    // No tracing subscriber is installed, so the sink thread's log line costs next to nothing:
    // what is measured is the caller's side of the handoff.
    let options = PipelineOptions {
        log_outcomes,
        ..PipelineOptions::default()
    };
    ActionDispatcher::new(Arc::new(FeedbackPipeline::new(options).expect("pipeline")))
}

fn dispatch_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("dispatch_overhead");
    group.bench_function("direct_call", |b| {
        let context = ActionContext::default();
        b.to_async(&runtime)
            .iter(|| async { black_box(NoopAgent.execute(&Value::Null, &context).await) });
    });
    for (name, log_outcomes) in [("dispatch_in_memory", false), ("dispatch_handoff", true)] {
        let dispatcher = dispatcher(log_outcomes);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let request = ActionRequest::new("noop", Value::Null).context(Map::new());
                black_box(dispatcher.dispatch_request(&NoopAgent, request).await)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, dispatch_overhead);
criterion_main!(benches);
