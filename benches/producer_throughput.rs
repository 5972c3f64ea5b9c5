//! `cargo bench --bench producer_throughput`: the `feedback-pipeline bench producer` load run,
//! built with the bench profile (optimized, sharing the criterion benches' dependencies).
//! Options go in `BENCH_ARGS`, e.g. `BENCH_ARGS="--events 500000 --runs 5"`; the broker is
//! `KAFKA_BOOTSTRAP_SERVERS` (unset: the in-process mock cluster).

#[path = "support/load_run.rs"]
mod load_run;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    load_run::run("producer_throughput", "producer")
}
