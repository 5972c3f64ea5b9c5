//! The live terminal view of `run`: per-agent numbers of the last closed windows, the alerts
//! firing, events/s, consumer lag and dead letters, redrawn every second.

mod render;
mod state;
mod terminal;

pub use terminal::LiveView;
