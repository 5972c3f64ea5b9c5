//! What the processor exports on `/metrics`: the outcome events as counters and histograms
//! ([`events`]), the latest closed windows as gauges ([`window`]), the processor's own health
//! ([`processor`]), gathered in one registry ([`Metrics`]) and served with warp ([`server`]);
//! [`grafana`] links to the dashboards that chart them.

pub mod events;
pub mod grafana;
pub mod guard;
pub mod processor;
mod registry;
pub mod server;
pub mod window;

pub use processor::{ProcessorStats, StatsSnapshot};
pub use registry::{CONTENT_TYPE, Metrics};
