//! The variables: the process environment over an optional `.env` file, and a check for
//! names that look like ours but are not.

use std::path::Path;

use super::parse::VarSource;
use super::{ConfigError, vars};

/// The process environment merged over the `.env` file at `path` (absent file: environment only).
pub fn load_env(path: &Path) -> Result<VarSource, ConfigError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match dotenvy::from_path_iter(path) {
        Ok(iter) => {
            for item in iter {
                pairs.push(item.map_err(|err| ConfigError::EnvFile {
                    path: path.display().to_string(),
                    problem: err.to_string(),
                })?);
            }
        }
        Err(dotenvy::Error::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(ConfigError::EnvFile {
                path: path.display().to_string(),
                problem: err.to_string(),
            });
        }
    }
    // Real environment variables win over the file, as with docker-compose and dotenv tools.
    pairs.extend(std::env::vars());
    Ok(VarSource::new(pairs))
}

/// Variables that look like ours (`KAFKA_*`, `ENABLE_*`, `SPOOL_*`, `PIPELINE_*`) but are not
/// known: likely typos.
pub fn unknown_variables(source: &VarSource) -> Vec<String> {
    let mut unknown: Vec<String> = source
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            [
                "KAFKA_",
                "ENABLE_",
                "SPOOL_",
                "PIPELINE_",
                "PROCESSOR_",
                "WINDOW_",
                "ALERT_",
                "PAGERDUTY_",
                "SLACK_",
                "METRICS_",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        })
        .filter(|name| !name.starts_with(vars::KAFKA_PROPERTY_PREFIX))
        .filter(|name| vars::find(name).is_none())
        .map(str::to_owned)
        .collect();
    unknown.sort();
    unknown
}
