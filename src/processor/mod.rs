//! The processor service, laid out as its data path:
//!
//! - [`source`]: the consumer group on `agent-outcomes` and the batches it reads;
//! - [`windows`]: event-time windows per query, the watermark, offsets and checkpoints;
//! - [`sql`]: the window queries, planned with DataFusion and evaluated pane by pane;
//! - [`merge`]: the second phase of queries whose groups span partitions, merged from the
//!   repartition topic by the instance that owns each group;
//! - [`sinks`]: result records, dead letters, sends and offset commits;
//! - [`service`]: the loop that drives them.

pub mod merge;
pub mod service;
pub mod sinks;
pub mod source;
pub mod sql;
pub mod windows;

pub use service::{Processor, ProcessorError};
pub use sql::{QueryDefinition, QueryError};
pub use windows::{ClosedWindow, EngineSettings, WindowEngine};
