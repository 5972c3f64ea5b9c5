//! [`PipelineOptions`]: how a [`super::FeedbackPipeline`] is built, from code or from the
//! configuration.

use std::path::PathBuf;
use std::time::Duration;

use super::sink::KafkaSinkOptions;
use crate::config::Config;

/// How a [`FeedbackPipeline`] is built.
#[derive(Clone)]
pub struct PipelineOptions {
    /// Publish to Kafka; `None` keeps events in memory (and the log).
    pub kafka: Option<KafkaSinkOptions>,
    /// Log every outcome through `tracing`.
    pub log_outcomes: bool,
    /// Events kept for [`FeedbackPipeline::get_recent_events`].
    pub recent_capacity: usize,
    /// Events queued between callers and the sink thread.
    pub queue_capacity: usize,
    /// How long `record_outcome` may wait for room in a full queue before it spools the event
    /// itself; zero never waits. The wait blocks the calling thread (in async code, a runtime
    /// worker), hence the small default.
    pub enqueue_timeout: Duration,
    /// Spool directory; `None` means events the broker cannot take are dropped (and counted).
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool may take on disk.
    pub spool_max_bytes: u64,
    /// How long dropping the pipeline waits for deliveries before spooling the rest.
    pub drop_flush_timeout: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            kafka: None,
            log_outcomes: false,
            recent_capacity: 1000,
            queue_capacity: 65_536,
            enqueue_timeout: Duration::from_millis(5),
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            drop_flush_timeout: Duration::from_secs(1),
        }
    }
}

impl PipelineOptions {
    /// Options from the configuration. `bootstrap_servers` overrides the configured brokers
    /// (the embedded cluster's address); with neither, Kafka stays off.
    pub fn from_config(config: &Config, bootstrap_servers: Option<&str>) -> Self {
        let producer = &config.producer;
        let servers = bootstrap_servers.or(config.kafka.bootstrap_servers.as_deref());
        let kafka = match (config.kafka.enabled, servers) {
            (true, Some(servers)) => Some(KafkaSinkOptions {
                producer_config: config.kafka.producer_config(servers),
                topic: config.topics.outcomes.clone(),
                message_timeout: producer.message_timeout,
            }),
            (true, None) => {
                tracing::warn!(
                    "ENABLE_KAFKA is true but KAFKA_BOOTSTRAP_SERVERS is not set: outcomes stay in memory"
                );
                None
            }
            (false, _) => None,
        };
        Self {
            kafka,
            log_outcomes: config.enable_outcome_logging,
            recent_capacity: producer.recent_capacity,
            queue_capacity: producer.queue_capacity,
            enqueue_timeout: producer.enqueue_timeout,
            spool_dir: producer.spool_dir.clone(),
            spool_max_bytes: producer.spool_max_bytes,
            drop_flush_timeout: producer.drop_flush_timeout,
        }
    }
}
