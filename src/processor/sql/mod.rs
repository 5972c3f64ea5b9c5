//! The SQL stage: window queries planned once with DataFusion, the event table they read,
//! and the pane store that keeps their partial aggregates.

mod accumulators;
mod compile;
mod definition;
mod panes;
pub mod partial;
mod planner;
mod rewrite;
pub mod table;
mod window_clause;

pub use compile::CompiledQuery;
pub use definition::{BUILTIN_QUERIES, QueryDefinition, QueryError};
pub use panes::{PaneStore, event_times};
pub use window_clause::{WindowClause, WindowClauseError, split_window_clause};
