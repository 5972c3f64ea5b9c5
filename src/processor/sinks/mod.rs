//! The sinks stage: result records for `agent-metrics`, dead letters, the sends in flight and
//! the offset commits that follow them.

mod commit_queue;
pub mod dead_letter;
pub mod results;
mod sends;

pub use commit_queue::CommitQueue;
pub use dead_letter::DeadLetter;
pub use results::{ResultRecord, window_records};
pub use sends::{Outgoing, PermanentSendError, Sends};
