//! Simulated agents for the embedded default, the demo and the benchmarks.

pub mod demo;
mod fleet;

pub use demo::{DemoAgent, DemoSchedule};
pub use fleet::{DISPATCH_SPEEDUP, Fleet, NoopAgent, SimulatedAgent};
