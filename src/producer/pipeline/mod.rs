//! The outcome pipeline: [`FeedbackPipeline`] takes events without waiting on the network,
//! a sink thread publishes them, and a disk [`Spool`] keeps what the broker cannot take.

mod counters;
mod delivery;
mod feedback_pipeline;
mod options;
mod recent;
mod replay;
mod sink;
mod spool;

pub use counters::{CounterSnapshot, PipelineCounters};
pub use feedback_pipeline::{FeedbackPipeline, get_feedback_pipeline};
pub use options::PipelineOptions;
pub use sink::{FlushOutcome, KafkaSinkOptions};
pub use spool::{Spool, SpoolError};
