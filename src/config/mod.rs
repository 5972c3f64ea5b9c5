//! Configuration from environment variables and an optional `.env` file.
//!
//! Every variable is listed in [`vars::VARIABLES`]; a bad value fails at start-up with a
//! [`ConfigError`] naming the variable and the values it accepts.

mod alerts;
mod error;
mod kafka;
mod parse;
mod processor;
mod producer;
pub mod vars;

use std::path::Path;

pub use alerts::AlertSettings;
pub use error::ConfigError;
pub use kafka::{Compression, KafkaConfig, Secret, SecurityConfig, SecurityProtocol};
pub use parse::VarSource;
pub use processor::ProcessorSettings;
pub use producer::ProducerSettings;

/// Names of the topics the pipeline reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Outcome events in (`KAFKA_OUTCOME_TOPIC`).
    pub outcomes: String,
    /// Window results out (`KAFKA_METRICS_TOPIC`).
    pub metrics: String,
    /// Alert records out (`KAFKA_ALERTS_TOPIC`).
    pub alerts: String,
    /// Rejected input out (`KAFKA_DLQ_TOPIC`).
    pub dead_letters: String,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Kafka connection and producer settings.
    pub kafka: KafkaConfig,
    /// Topic names.
    pub topics: Topics,
    /// Producer pipeline settings.
    pub producer: ProducerSettings,
    /// Processor service settings.
    pub processor: ProcessorSettings,
    /// Alert rules and receivers.
    pub alerts: AlertSettings,
    /// Log every recorded outcome (`ENABLE_OUTCOME_LOGGING`).
    pub enable_outcome_logging: bool,
}

impl Config {
    /// Reads the process environment over `.env` in the working directory, if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&load_env(Path::new(".env"))?)
    }

    /// Reads the configuration from explicit variables (tests, embedding).
    pub fn from_source(source: &VarSource) -> Result<Self, ConfigError> {
        Ok(Self {
            kafka: KafkaConfig::from_source(source)?,
            topics: Topics {
                outcomes: topic(source, "KAFKA_OUTCOME_TOPIC")?,
                metrics: topic(source, "KAFKA_METRICS_TOPIC")?,
                alerts: topic(source, "KAFKA_ALERTS_TOPIC")?,
                dead_letters: topic(source, "KAFKA_DLQ_TOPIC")?,
            },
            producer: ProducerSettings::from_source(source)?,
            processor: ProcessorSettings::from_source(source)?,
            alerts: AlertSettings::from_source(source)?,
            enable_outcome_logging: source.bool("ENABLE_OUTCOME_LOGGING")?,
        })
    }
}

/// The process environment merged over the `.env` file at `path` (absent file: environment only).
pub fn load_env(path: &Path) -> Result<VarSource, ConfigError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match dotenvy::from_path_iter(path) {
        Ok(iter) => {
            for item in iter {
                pairs.push(item.map_err(|err| ConfigError::EnvFile {
                    path: path.display().to_string(),
                    problem: err.to_string(),
                })?);
            }
        }
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(ConfigError::EnvFile {
                path: path.display().to_string(),
                problem: err.to_string(),
            });
        }
    }
    // Real environment variables win over the file, as with docker-compose and dotenv tools.
    pairs.extend(std::env::vars());
    Ok(VarSource::new(pairs))
}

/// Variables that look like ours (`KAFKA_*`, `ENABLE_*`, `SPOOL_*`, `PIPELINE_*`) but are not
/// known: likely typos.
pub fn unknown_variables(source: &VarSource) -> Vec<String> {
    let mut unknown: Vec<String> = source
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            [
                "KAFKA_",
                "ENABLE_",
                "SPOOL_",
                "PIPELINE_",
                "PROCESSOR_",
                "WINDOW_",
                "ALERT_",
                "PAGERDUTY_",
                "SLACK_",
                "METRICS_",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        })
        .filter(|name| !name.starts_with(vars::KAFKA_PROPERTY_PREFIX))
        .filter(|name| vars::find(name).is_none())
        .map(str::to_owned)
        .collect();
    unknown.sort();
    unknown
}

fn topic(source: &VarSource, name: &str) -> Result<String, ConfigError> {
    let value = source.get_or_default(name);
    // Kafka's own rule for topic names.
    let legal = value.len() <= 249
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if legal {
        Ok(value.to_owned())
    } else {
        Err(parse::invalid(
            name,
            value,
            "a Kafka topic name: up to 249 of a-z, A-Z, 0-9, '.', '_', '-'",
        ))
    }
}
