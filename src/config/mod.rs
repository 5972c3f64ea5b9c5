//! Configuration from environment variables and an optional `.env` file.
//!
//! Every variable is listed in [`vars::VARIABLES`]; a bad value fails at start-up with a
//! [`ConfigError`] naming the variable and the values it accepts.

mod alerts;
mod env_file;
mod error;
mod kafka;
mod parse;
mod processor;
mod producer;
mod settings;
mod topics;
pub mod vars;

pub use alerts::AlertSettings;
pub use env_file::{load_env, unknown_variables};
pub use error::ConfigError;
pub use kafka::{Compression, KafkaConfig, Secret, SecurityConfig, SecurityProtocol};
pub use parse::VarSource;
pub use processor::ProcessorSettings;
pub use producer::ProducerSettings;
pub use settings::Config;
pub use topics::Topics;
