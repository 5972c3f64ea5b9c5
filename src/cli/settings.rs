//! Loading the configuration for a subcommand: `.env`, then the environment.

use feedback_pipeline::config::{self, Config};

/// Reads the configuration, warning about variables that look like misspelt ones.
pub fn load_config() -> Result<Config, config::ConfigError> {
    let source = config::load_env(std::path::Path::new(".env"))?;
    for name in config::unknown_variables(&source) {
        tracing::warn!(variable = %name, "unknown variable ignored; see .env.example for the known ones");
    }
    Config::from_source(&source)
}
