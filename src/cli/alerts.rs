//! `feedback-pipeline alerts ...`: the alert forwarder and the rule check.

use clap::Subcommand;

use feedback_pipeline::alerts::forward::Forwarder;
use feedback_pipeline::config::Config;

use super::serve::{load_queries, shutdown_signal};

/// Alert subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Deliver the records of the alert topic to PagerDuty and/or Slack (PAGERDUTY_ROUTING_KEY,
    /// SLACK_WEBHOOK_URL), committing each only once delivered.
    Forward,
    /// Check ALERT_RULES_FILE against the window queries and print the rules.
    Check,
}

/// Runs an alert subcommand.
pub async fn execute(
    config: Config,
    command: AlertsCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        AlertsCommand::Forward => {
            let Some(servers) = config.kafka.bootstrap_servers.clone() else {
                return Err("KAFKA_BOOTSTRAP_SERVERS is not set: `alerts forward` reads the alert topic of a cluster".into());
            };
            let forwarder = Forwarder::new(&config, &servers)?;
            tracing::info!(topic = %config.topics.alerts, group = %config.alerts.forwarder_group, "forwarding alerts");
            forwarder.run(shutdown_signal()).await?;
            Ok(())
        }
        AlertsCommand::Check => {
            let queries = load_queries(&config).await?;
            let file = &config.alerts.rules_file;
            let rules = feedback_pipeline::alerts::rules::load_rules(
                file,
                file.as_os_str() == "alerts/rules.toml",
            )?;
            feedback_pipeline::alerts::rules::check_rules(
                &file.display().to_string(),
                &rules,
                &queries.iter().map(|q| q.output()).collect::<Vec<_>>(),
            )?;
            for rule in rules {
                let (threshold, above) = rule.threshold();
                println!(
                    "{:<24} {}.{} {} {threshold} (for {:?}, keep firing for {:?}, {})",
                    rule.name,
                    rule.query,
                    rule.column,
                    if above { ">" } else { "<" },
                    rule.pending_for,
                    rule.keep_firing_for,
                    rule.severity.as_str()
                );
            }
            Ok(())
        }
    }
}
