//! Settings of the alerting side: the rule file, and the receivers the forwarder delivers to.

use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::kafka::Secret;
use super::parse::VarSource;

/// Alert settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// The rule file (`ALERT_RULES_FILE`).
    pub rules_file: PathBuf,
    /// PagerDuty Events API v2 integration key; unset: no PagerDuty delivery.
    pub pagerduty_routing_key: Option<Secret>,
    /// PagerDuty Events API v2 endpoint.
    pub pagerduty_url: String,
    /// Slack incoming webhook URL (a secret: the path is the credential); unset: no Slack.
    pub slack_webhook_url: Option<Secret>,
    /// Consumer group of `alerts forward`.
    pub forwarder_group: String,
    /// Longest wait between two delivery attempts.
    pub max_backoff: Duration,
}

impl AlertSettings {
    /// Reads the settings from `source`.
    pub fn from_source(source: &VarSource) -> Result<Self, ConfigError> {
        Ok(Self {
            rules_file: PathBuf::from(source.get_or_default("ALERT_RULES_FILE")),
            pagerduty_routing_key: source
                .get("PAGERDUTY_ROUTING_KEY")
                .map(|v| Secret::new(v.to_owned())),
            pagerduty_url: source
                .http_url("PAGERDUTY_EVENTS_URL")?
                .unwrap_or_else(|| source.get_or_default("PAGERDUTY_EVENTS_URL").to_owned()),
            slack_webhook_url: source.http_url("SLACK_WEBHOOK_URL")?.map(Secret::new),
            forwarder_group: source.get_or_default("ALERT_FORWARDER_GROUP").to_owned(),
            max_backoff: Duration::from_millis(source.number(
                "ALERT_MAX_BACKOFF_MS",
                10,
                3_600_000,
            )?),
        })
    }
}
