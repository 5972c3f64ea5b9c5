//! feedback-pipeline: outcome tracking for AI agent actions.
//!
//! The modules, in the order of the data path; each uses only modules listed before it:
//!
//! - [`event`]: the contract, [`event::OutcomeEvent`], shared by both sides, and the
//!   dead-letter reasons;
//! - [`config`]: environment configuration for everything below;
//! - [`keys`]: composite record keys with escaped parts;
//! - [`window`]: event-time windows and result cells as plain data;
//! - [`kafka`]: topic administration and the embedded in-process cluster;
//! - [`producer`]: agents, [`producer::ActionDispatcher`], [`producer::FeedbackPipeline`]
//!   (agents → events → Kafka, with a disk spool);
//! - [`alerts`]: rules on closed windows → `agent-alerts` → PagerDuty / Slack;
//! - [`metrics`]: the Prometheus exposition served on `/metrics`;
//! - [`processor`]: the service by stage: source → windows → sql → merge → sinks, driven by its
//!   loop;
//! - [`simulate`]: a fleet of simulated agents for the embedded default and benchmarks.

#![warn(missing_docs)]

#[cfg(feature = "processor")]
pub mod alerts;
pub mod config;
pub mod event;
pub mod kafka;
pub mod keys;
#[cfg(feature = "processor")]
pub mod metrics;
#[cfg(feature = "processor")]
pub mod processor;
pub mod producer;
pub mod simulate;
#[cfg(feature = "processor")]
pub mod window;

pub use config::Config;
pub use event::{EventError, EventSeverity, OutcomeEvent, OutcomeStatus};
