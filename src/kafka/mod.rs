//! Kafka plumbing shared by both sides: topic administration, the embedded mock cluster and
//! client errors explained.

mod admin;
mod diagnose;
mod embedded;

pub use admin::{TopicSpec, ensure_topics, partition_count};
pub use diagnose::{DiagnosingContext, hint, log_client_error};
pub use embedded::EmbeddedCluster;
