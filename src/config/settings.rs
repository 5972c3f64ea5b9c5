//! [`Config`]: the whole configuration, read from one [`VarSource`].

use std::path::Path;

use super::env_file::load_env;
use super::topics::{Topics, topic};
use super::{
    AlertSettings, ConfigError, KafkaConfig, ProcessorSettings, ProducerSettings, VarSource,
};

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
