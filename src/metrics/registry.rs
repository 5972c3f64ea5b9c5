//! [`Metrics`]: one registry holding every family the processor exports.

use std::sync::Arc;

use prometheus::{Encoder, Registry, TextEncoder};

use super::events::EventMetrics;
use super::processor::ProcessorStats;
use super::window::WindowGauges;

/// The exact Content-Type of the text exposition (Prometheus 3 refuses others).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of one processor.
pub struct Metrics {
    registry: Registry,
    /// Outcome events by agent and status.
    pub events: EventMetrics,
    /// The latest closed windows.
    pub windows: WindowGauges,
    /// The processor's own health.
    pub processor: Arc<ProcessorStats>,
}

impl Metrics {
    /// Creates and registers everything; `max_series` bounds each family's label sets.
    pub fn new(max_series: usize) -> prometheus::Result<Self> {
        let registry = Registry::new();
        Ok(Self {
            events: EventMetrics::register(&registry, max_series)?,
            windows: WindowGauges::register(&registry, max_series)?,
            processor: Arc::new(ProcessorStats::register(&registry)?),
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.windows.families());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(%err, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
