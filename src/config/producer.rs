//! Settings of the producer-side pipeline: queue, recent-events buffer, spool, timeouts.

use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::parse::VarSource;

/// Producer pipeline settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSettings {
    /// How long librdkafka retries one message before it goes to the spool.
    pub message_timeout: Duration,
    /// Events queued between callers and the sink thread.
    pub queue_capacity: usize,
    /// How long `record_outcome` may wait for room in a full queue before it spools.
    pub enqueue_timeout: Duration,
    /// Events kept for `get_recent_events`.
    pub recent_capacity: usize,
    /// Spool directory; `None` disables the spool.
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool may use.
    pub spool_max_bytes: u64,
    /// How long dropping a pipeline waits for deliveries before spooling the rest.
    pub drop_flush_timeout: Duration,
}

impl ProducerSettings {
    /// Reads the settings from `source`.
    pub fn from_source(source: &VarSource) -> Result<Self, ConfigError> {
        let spool_dir = source.get_or_default("SPOOL_DIR");
        Ok(Self {
            message_timeout: Duration::from_millis(source.number(
                "KAFKA_MESSAGE_TIMEOUT_MS",
                100,
                3_600_000,
            )?),
            queue_capacity: source.number("PIPELINE_QUEUE_CAPACITY", 1, 10_000_000)?,
            enqueue_timeout: Duration::from_millis(source.number(
                "PIPELINE_ENQUEUE_TIMEOUT_MS",
                0,
                250,
            )?),
            recent_capacity: source.number("RECENT_EVENTS_CAPACITY", 0, 10_000_000)?,
            spool_dir: match spool_dir {
                "" => Some(per_user_spool_dir()),
                off if off.eq_ignore_ascii_case("off") => None,
                dir => Some(PathBuf::from(dir)),
            },
            spool_max_bytes: source.number("SPOOL_MAX_BYTES", 4096, u64::MAX)?,
            drop_flush_timeout: Duration::from_millis(source.number(
                "PIPELINE_DROP_FLUSH_MS",
                0,
                600_000,
            )?),
        })
    }
}

/// The default spool: in the user's state directory (`$XDG_STATE_HOME`, `~/.local/state`; the
/// local data directory where the platform has no state directory), never the working
/// directory, which may be a repository. Without a home directory: `.feedback-pipeline/spool`.
pub fn per_user_spool_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|dir| dir.join("feedback-pipeline").join("spool"))
        .unwrap_or_else(|| PathBuf::from(".feedback-pipeline/spool"))
}
