//! feedback-pipeline: outcome tracking for AI agent actions.
//!
//! The data path, as the modules are laid out:
//!
//! - [`event`]: the contract, [`event::OutcomeEvent`], shared by both sides;
//! - [`config`]: environment configuration for everything below;
//! - [`producer`]: agents, [`producer::ActionDispatcher`], [`producer::FeedbackPipeline`]
//!   (producer side: agents → events → Kafka, with a disk spool);
//! - [`kafka`]: topic administration and the embedded in-process cluster;
//! - [`processor`]: the service (consumer group → windows in DataFusion SQL → `agent-metrics`);
//! - [`alerts`]: rules on closed windows → `agent-alerts` → PagerDuty / Slack;
//! - [`metrics`]: the Prometheus exposition served on `/metrics`;
//! - [`simulate`]: a fleet of simulated agents for the embedded default and benchmarks.

#![warn(missing_docs)]

pub mod alerts;
pub mod config;
pub mod event;
pub mod kafka;
pub mod keys;
pub mod metrics;
pub mod processor;
pub mod producer;
pub mod simulate;
pub mod window;

pub use config::Config;
pub use event::{EventError, EventSeverity, OutcomeEvent, OutcomeStatus};
