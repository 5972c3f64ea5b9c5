//! Event-time windows as plain data, shared by the processor, the alerts and the metrics:
//! their sizes and bounds, and a result row's cells as JSON.

mod cell;
mod spec;

pub use cell::{cell, millis_to_text};
pub use spec::{Millis, WindowBounds, WindowSpec};
