//! The source stage: the consumer of `agent-outcomes`, its fetch queue and the batches read
//! from it.

pub mod batch;
mod consumer;
mod decode;
pub mod fetch_queue;
mod forwarding;

pub use batch::ConsumedBatch;
pub use consumer::{OutcomeConsumer, Reassignment, SourceContext, create_consumer};
pub use decode::{PartitionEvents, Undecodable, decode_batch};
pub use fetch_queue::FetchQueue;
