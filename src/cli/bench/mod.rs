//! `feedback-pipeline bench`: end-to-end benchmarks that print medians and ratios against a
//! bare rdkafka client on the same broker.

mod command;
mod dispatch;
mod measure;
mod processor;
mod producer;
mod scale_out;

pub use command::{BenchCommand, execute};
