//! Reading typed values out of a variable map, with errors that name the variable.

use std::collections::HashMap;
use std::str::FromStr;

use super::error::ConfigError;
use super::vars;

/// The raw variables the configuration is read from (environment merged over `.env`).
#[derive(Debug, Clone, Default)]
pub struct VarSource {
    values: HashMap<String, String>,
}

impl VarSource {
    /// Wraps name/value pairs; later pairs win.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: pairs
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }

    /// All pairs, for pass-through prefixes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The trimmed value, or `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The value, or the table default from [`vars::VARIABLES`].
    pub fn get_or_default(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| default_of(name))
    }

    /// A boolean: true/false, 1/0, yes/no, on/off (any case).
    pub fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        let value = self.get_or_default(name);
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(invalid(name, value, "true or false")),
        }
    }

    /// A whole number within `min..=max`.
    pub fn number<T>(&self, name: &str, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let value = self.get_or_default(name);
        let expected = || {
            format!(
                "a whole number from {min} to {max} (default {})",
                default_of(name)
            )
        };
        match value.parse::<T>() {
            Ok(number) if number >= min && number <= max => Ok(number),
            _ => Err(invalid(name, value, &expected())),
        }
    }

    /// One of a closed list of names, matched without regard to case.
    pub fn choice<T: Copy>(&self, name: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
        let value = self.get_or_default(name);
        choices
            .iter()
            .find(|(choice, _)| choice.eq_ignore_ascii_case(value))
            .map(|(_, parsed)| *parsed)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(choice, _)| *choice).collect();
                invalid(name, value, &format!("one of {}", names.join(", ")))
            })
    }

    /// An optional `http://` or `https://` URL.
    pub fn http_url(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) if value.starts_with("http://") || value.starts_with("https://") => {
                Ok(Some(value.to_owned()))
            }
            Some(value) => Err(invalid(name, value, "an http:// or https:// URL")),
        }
    }

    /// An optional path that must name an existing file.
    pub fn existing_file(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(path) if std::path::Path::new(path).is_file() => Ok(Some(path.to_owned())),
            Some(path) => Err(invalid(
                name,
                path,
                "the path of an existing, readable file",
            )),
        }
    }
}

fn default_of(name: &str) -> &'static str {
    vars::find(name).map_or("", |var| var.default)
}

/// An [`ConfigError::Invalid`], with secrets redacted.
pub fn invalid(name: &str, value: &str, expected: &str) -> ConfigError {
    let secret = vars::is_secret(name);
    ConfigError::Invalid {
        variable: name.to_owned(),
        shown: if secret {
            "<redacted>".to_owned()
        } else {
            value.to_owned()
        },
        expected: expected.to_owned(),
    }
}
