//! Settings of the processor service: consumer group, SQL directory, event-time windows.

use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::parse::VarSource;

/// Processor settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorSettings {
    /// Directory of the window queries.
    pub sql_dir: PathBuf,
    /// How far behind the slowest partition's newest event the watermark stays.
    pub out_of_orderness: Duration,
    /// How long after its end (by watermark) a window still takes events.
    pub grace: Duration,
    /// Quiet time after which a partition stops holding the watermark back, and after which,
    /// with every partition quiet, windows close by the wall clock.
    pub idle_after: Duration,
    /// How long after its close an emitted window still takes events (each emits the
    /// window's updated rows again).
    pub allowed_lateness: Duration,
    /// How far ahead of the processor's clock an event may be dated before it is rejected.
    pub max_future: Duration,
    /// Most groups a query holds per pane.
    pub max_groups_per_window: usize,
    /// How often window state is checked and results emitted.
    pub tick: Duration,
    /// How often offsets are committed (after every result sent so far is acknowledged).
    pub commit_interval: Duration,
    /// `/healthz` fails once the loop has not turned for this long (zero: never).
    pub stall_timeout: Duration,
    /// Address of the `/metrics` HTTP server.
    pub metrics_addr: String,
    /// Most label sets per metric family on `/metrics`.
    pub metrics_max_series: usize,
    /// Where the bundled Grafana serves its dashboards, for the links `serve` and `run` print.
    pub grafana_url: Option<String>,
}

impl ProcessorSettings {
    /// Reads the settings from `source`.
    pub fn from_source(source: &VarSource) -> Result<Self, ConfigError> {
        let millis = |name: &str, min: u64, max: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(source.number(name, min, max)?))
        };
        Ok(Self {
            sql_dir: PathBuf::from(source.get_or_default("PROCESSOR_SQL_DIR")),
            out_of_orderness: millis("WINDOW_OUT_OF_ORDER_MS", 0, 86_400_000)?,
            grace: millis("WINDOW_GRACE_MS", 0, 86_400_000)?,
            idle_after: millis("WINDOW_IDLE_CLOSE_MS", 100, 86_400_000)?,
            allowed_lateness: millis("WINDOW_ALLOWED_LATENESS_MS", 0, 86_400_000)?,
            max_future: millis("WINDOW_MAX_FUTURE_MS", 0, 31_536_000_000)?,
            max_groups_per_window: source.number(
                "PROCESSOR_MAX_GROUPS_PER_WINDOW",
                1,
                100_000_000,
            )?,
            tick: millis("PROCESSOR_TICK_MS", 10, 60_000)?,
            commit_interval: millis("PROCESSOR_COMMIT_INTERVAL_MS", 10, 600_000)?,
            stall_timeout: millis("PROCESSOR_STALL_TIMEOUT_MS", 0, 86_400_000)?,
            metrics_addr: source.get_or_default("METRICS_ADDR").to_owned(),
            metrics_max_series: source.number("METRICS_MAX_SERIES", 1, 1_000_000)?,
            grafana_url: source.http_url("GRAFANA_URL")?,
        })
    }
}
