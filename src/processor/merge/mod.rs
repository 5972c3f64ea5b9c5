//! The merge stage: queries whose groups span partitions are aggregated in two phases. Each
//! instance hands every window's partial aggregates per source partition to the
//! repartition topic (`<consumer group>-repartition`), routed by query and group; the
//! instance owning a repartition partition merges them and emits the window once every
//! source partition has handed it over.

mod checkpoint;
mod handoff;
mod merge_query;
mod route;
mod stage;
mod wire;

pub use checkpoint::MergeCheckpoint;
pub use handoff::HandOff;
pub use merge_query::MergeQuery;
pub use route::{repartition_of, split_by_route};
pub use stage::{MergeRead, MergeStage, repartition_topic};
pub use wire::{HandOver, bounds_record, partial_record};
