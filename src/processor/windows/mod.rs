//! The windows stage: each query's open windows, the watermark that closes them, the offsets
//! that are safe to commit and the checkpoint that restores them.

pub mod checkpoint;
mod engine;
mod offsets;
mod watermark;
mod windowed_query;

pub use engine::{
    ClosedWindow, EngineSettings, PartitionCheckpoint, QuietWindow, RejectedEvent, Rejection,
    WindowEngine,
};
pub use offsets::OffsetTracker;
pub use windowed_query::{CloseBounds, HandedOver, WindowResult, WindowedQuery};
