//! Kafka plumbing shared by both sides: topic administration and the embedded mock cluster.

mod admin;
mod embedded;

pub use admin::{TopicSpec, ensure_topics};
pub use embedded::EmbeddedCluster;
