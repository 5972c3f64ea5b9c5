//! Alerting: rules evaluated on closed windows ([`evaluator`]), the records they write to
//! `agent-alerts` ([`record`]), what those become for PagerDuty and Slack ([`receivers`]),
//! and the forwarder that delivers them ([`forward`]).

pub mod evaluator;
pub mod forward;
pub mod history;
pub mod receivers;
pub mod record;
pub mod rules;

pub use evaluator::AlertEvaluator;
pub use record::{AlertAction, AlertRecord};
pub use rules::{AlertRule, AlertSeverity};
