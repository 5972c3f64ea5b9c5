//! Command-line interface: one file per subcommand, dispatched from [`app`].

mod alerts;
mod app;
mod bench;
mod config_cmd;
mod query;
mod run;
mod serve;
mod settings;

pub use app::{Cli, execute, init_tracing};
