//! Alert rules: which column of which window query to watch, the threshold, a minimum-traffic
//! guard and the hysteresis (`for`, `keep_firing_for`). Read from a TOML file.

use std::path::Path;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use serde::Deserialize;

/// The rules shipped in `alerts/rules.toml`, used when that file is absent.
pub const BUILTIN_RULES: &str = include_str!("../../alerts/rules.toml");

/// A rule file that cannot be used, with the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct RuleError {
    /// The rule file.
    pub file: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// Severity of an alert, as PagerDuty Events v2 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// Informational.
    Info,
    /// Needs attention soon.
    Warning,
    /// Something is broken.
    Error,
    /// Page now.
    Critical,
}

impl AlertSeverity {
    /// Lowercase name (PagerDuty's `payload.severity`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

/// Rows with fewer events than this never meet the condition (no paging on two failures
/// out of three).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinEvents {
    /// The column holding the row's event count.
    pub column: String,
    /// The least count at which the rule is evaluated.
    pub at_least: f64,
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// The rule's name (Alertmanager style, e.g. `AgentFailureRateHigh`).
    pub name: String,
    /// The window query it watches (file name in `sql/` without `.sql`).
    pub query: String,
    /// The numeric column compared with the threshold.
    pub column: String,
    /// Fires when the value is above this.
    #[serde(default)]
    pub above: Option<f64>,
    /// Fires when the value is below this.
    #[serde(default)]
    pub below: Option<f64>,
    /// Minimum-traffic guard.
    #[serde(default)]
    pub min_events: Option<MinEvents>,
    /// Event time the condition must hold before the alert fires (0: at once).
    #[serde(rename = "for", default, with = "humantime_serde")]
    pub pending_for: Duration,
    /// Event time the condition must stay clear before the alert resolves.
    #[serde(default, with = "humantime_serde")]
    pub keep_firing_for: Duration,
    /// Severity of the alert.
    pub severity: AlertSeverity,
    /// A sentence for the people paged.
    #[serde(default)]
    pub description: String,
}

impl AlertRule {
    /// The threshold and whether the value must be above it.
    pub fn threshold(&self) -> (f64, bool) {
        match (self.above, self.below) {
            (Some(above), _) => (above, true),
            (None, Some(below)) => (below, false),
            (None, None) => (f64::NAN, true),
        }
    }

    /// Whether `value` (with `events` when the rule has a traffic guard) breaches the rule.
    pub fn breached(&self, value: f64, events: Option<f64>) -> bool {
        if let Some(guard) = &self.min_events
            && events.is_none_or(|n| n < guard.at_least)
        {
            return false;
        }
        let (threshold, above) = self.threshold();
        if above {
            value > threshold
        } else {
            value < threshold
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<AlertRule>,
}

/// Parses rules from TOML text; `file` names the source in errors.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<AlertRule>, RuleError> {
    let error = |reason: String| RuleError {
        file: file.to_owned(),
        reason,
    };
    let parsed: RuleFile = toml::from_str(text).map_err(|err| error(err.to_string()))?;
    let mut names = std::collections::BTreeSet::new();
    for rule in &parsed.rule {
        if !names.insert(rule.name.as_str()) {
            return Err(error(format!("rule `{}` is defined twice", rule.name)));
        }
        if rule.above.is_some() == rule.below.is_some() {
            return Err(error(format!(
                "rule `{}`: set exactly one of `above` or `below`",
                rule.name
            )));
        }
    }
    Ok(parsed.rule)
}

/// Reads the rules of `path`; when `path` is the default and absent, the built-in rules.
pub fn load_rules(path: &Path, is_default: bool) -> Result<Vec<AlertRule>, RuleError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_rules(&path.display().to_string(), &text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && is_default => {
            parse_rules("alerts/rules.toml (built in)", BUILTIN_RULES)
        }
        Err(err) => Err(RuleError {
            file: path.display().to_string(),
            reason: format!("cannot read it: {err} (set ALERT_RULES_FILE to a rule file)"),
        }),
    }
}

/// Checks every rule against the loaded queries, given as (name, result schema): the query
/// exists and the columns are numeric results of it.
pub fn check_rules(
    file: &str,
    rules: &[AlertRule],
    queries: &[(&str, SchemaRef)],
) -> Result<(), RuleError> {
    let error = |reason: String| RuleError {
        file: file.to_owned(),
        reason,
    };
    for rule in rules {
        let Some((_, schema)) = queries.iter().find(|(name, _)| *name == rule.query) else {
            let known: Vec<_> = queries.iter().map(|(name, _)| *name).collect();
            return Err(error(format!(
                "rule `{}` watches query `{}`, which is not loaded (queries: {})",
                rule.name,
                rule.query,
                known.join(", ")
            )));
        };
        let columns =
            std::iter::once(&rule.column).chain(rule.min_events.as_ref().map(|m| &m.column));
        for column in columns {
            let numeric = schema
                .field_with_name(column)
                .map(|f| f.data_type().is_numeric());
            if !matches!(numeric, Ok(true)) {
                return Err(error(format!(
                    "rule `{}`: query `{}` has no numeric column `{column}`",
                    rule.name, rule.query
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_parse() {
        let rules = parse_rules("builtin", BUILTIN_RULES).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].keep_firing_for, Duration::from_secs(120));
        assert!(rules[0].breached(0.2, Some(50.0)));
        assert!(!rules[0].breached(0.2, Some(3.0)), "traffic guard");
        assert!(
            !rules[0].breached(0.1, Some(50.0)),
            "at the threshold is not above"
        );
    }

    #[test]
    fn a_rule_needs_one_threshold() {
        let text = "[[rule]]\nname='x'\nquery='q'\ncolumn='c'\nseverity='error'\n";
        let err = parse_rules("r.toml", text).unwrap_err();
        assert!(
            err.to_string()
                .contains("exactly one of `above` or `below`")
        );
        let text = "[[rule]]\nname='x'\nquery='q'\ncolumn='c'\nabove=1\nseverity='loud'\n";
        let err = parse_rules("r.toml", text).unwrap_err();
        assert!(err.to_string().starts_with("r.toml: "), "{err}");
    }
}
