//! The sinks stage: result records for `agent-metrics`, alert records, dead letters, the
//! sends in flight and the offset commits that follow them.

mod commit_queue;
mod committer;
pub mod dead_letter;
mod outbox;
pub mod results;
mod sends;

pub use committer::Committer;
pub use dead_letter::DeadLetter;
pub use outbox::Outbox;
pub use results::{ResultRecord, window_records};
pub use sends::{Outgoing, PermanentSendError, Sends};
