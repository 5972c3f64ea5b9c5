//! Command-line interface: one file per subcommand, dispatched from [`app`].

mod alerts;
mod app;
mod bench;
mod config_cmd;
mod output;
mod query;
mod run;
mod serve;
mod settings;
mod view;

pub use app::{Cli, execute, init_tracing, log_file};
