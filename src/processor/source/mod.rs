//! The source stage: the consumer of `agent-outcomes`, its fetch queue and the batches read
//! from it.

pub mod batch;
mod consumer;
pub mod fetch_queue;
mod forwarding;

pub use batch::ConsumedBatch;
pub use consumer::{OutcomeConsumer, Reassignment, SourceContext, create_consumer};
pub use fetch_queue::FetchQueue;
