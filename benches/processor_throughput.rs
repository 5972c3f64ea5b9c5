//! `cargo bench --bench processor_throughput`: the `feedback-pipeline bench processor` run,
//! built with the bench profile. Options go in `BENCH_ARGS`, e.g.
//! `BENCH_ARGS="--events 2000000 --runs 3"`; the broker is `KAFKA_BOOTSTRAP_SERVERS` (unset:
//! the in-process mock cluster).

#[path = "support/load_run.rs"]
mod load_run;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    load_run::run("processor_throughput", "processor")
}
