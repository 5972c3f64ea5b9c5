//! What an alert record becomes for its receivers: a PagerDuty Events API v2 event and a
//! Slack incoming-webhook message.

use serde_json::{Value, json};

use super::record::{AlertAction, AlertRecord};

/// PagerDuty caps `payload.summary` at 1024 characters.
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// The Events API v2 body for `record` (`trigger` or `resolve`, same `dedup_key`).
pub fn pagerduty_event(record: &AlertRecord, routing_key: &str) -> Value {
    match record.action {
        AlertAction::Trigger => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": record.dedup_key,
            "payload": {
                "summary": truncate(&record.summary, PAGERDUTY_SUMMARY_MAX),
                "source": record.source,
                "severity": record.severity.as_str(),
                "timestamp": record.window_end,
                "component": record.labels.get("agent_name"),
                "group": record.labels.get("agent_type"),
                "class": record.rule,
                "custom_details": {
                    "description": record.description,
                    "query": record.query,
                    "column": record.column,
                    "value": record.value,
                    "threshold": record.threshold,
                    "comparison": record.comparison,
                    "labels": record.labels,
                    "window_start": record.window_start,
                    "window_end": record.window_end,
                    "first_seen": record.first_seen,
                },
            },
        }),
        AlertAction::Resolve => json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": record.dedup_key,
        }),
    }
}

/// A Slack message for `record`: `text` as the notification fallback plus blocks. Every text
/// from the record is escaped ([`slack_escape`]), so an agent named `<!channel>` is shown, not
/// obeyed.
pub fn slack_message(record: &AlertRecord) -> Value {
    let (icon, verb) = match record.action {
        AlertAction::Trigger => (":rotating_light:", "FIRING"),
        AlertAction::Resolve => (":white_check_mark:", "RESOLVED"),
    };
    let text = format!(
        "{icon} [{verb}] [{}] {}",
        record.severity.as_str(),
        slack_escape(&record.summary)
    );
    let labels = record
        .labels
        .iter()
        .map(|(k, v)| format!("`{}={}`", slack_escape(k), slack_escape(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let context = format!(
        "rule `{}` · {} {} {} · window {} – {} · {labels} · dedup `{}`",
        slack_escape(&record.rule),
        slack_escape(&record.column),
        slack_escape(&record.comparison),
        record.threshold,
        slack_escape(&record.window_start),
        slack_escape(&record.window_end),
        slack_escape(&record.dedup_key)
    );
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{text}*")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&record.description)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// Escapes the three characters Slack's mrkdwn gives meaning (`&`, `<`, `>`: links, mentions
/// such as `<!channel>`), as Slack's formatting guide asks.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alerts::rules::AlertSeverity;

    fn record(action: AlertAction) -> AlertRecord {
        AlertRecord {
            dedup_key: "k".into(),
            action,
            rule: "AgentFailureRateHigh".into(),
            severity: AlertSeverity::Error,
            summary: "x".repeat(2000),
            description: "d".into(),
            labels: BTreeMap::from([("agent_name".into(), "a".into())]),
            query: "q".into(),
            column: "failure_rate".into(),
            value: 0.5,
            threshold: 0.1,
            comparison: "above".into(),
            window_start: "2026-01-01T00:00:00.000Z".into(),
            window_end: "2026-01-01T00:01:00.000Z".into(),
            first_seen: "2026-01-01T00:00:00.000Z".into(),
            emitted_at: "2026-01-01T00:01:02.000Z".into(),
            source: "feedback-pipeline".into(),
        }
    }

    #[test]
    fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
        let trigger = pagerduty_event(&record(AlertAction::Trigger), "rk");
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["payload"]["severity"], "error");
        assert_eq!(trigger["payload"]["component"], "a");
        let summary = trigger["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), 1024);
        let resolve = pagerduty_event(&record(AlertAction::Resolve), "rk");
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    }

    #[test]
    fn slack_text_from_the_record_is_escaped() {
        let mut alert = record(AlertAction::Trigger);
        alert.summary = "failure rate high for <!channel> & <@U123>".into();
        alert
            .labels
            .insert("agent_name".into(), "<https://evil|click>".into());
        let message = slack_message(&alert).to_string();
        assert!(
            !message.contains("<!channel>") && !message.contains("<https"),
            "{message}"
        );
        assert!(
            message.contains("&lt;!channel&gt; &amp; &lt;@U123&gt;"),
            "{message}"
        );
    }

    #[test]
    fn slack_message_has_fallback_text() {
        let message = slack_message(&record(AlertAction::Resolve));
        assert!(message["text"].as_str().unwrap().contains("RESOLVED"));
        assert_eq!(message["blocks"].as_array().unwrap().len(), 3);
    }
}
