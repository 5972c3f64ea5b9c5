//! The processor: consumes `agent-outcomes`, windows events by event time, evaluates the
//! SQL window queries and emits results (see `docs` in the README for the data path).

pub mod batch;
pub mod checkpoint;
pub mod commit_queue;
pub mod dead_letter;
pub mod engine;
pub mod fetch_queue;
pub mod offsets;
pub mod query;
pub mod results;
pub mod sends;
pub mod service;
pub mod source;
pub mod stats;
pub mod table;
pub mod watermark;
pub mod window;
