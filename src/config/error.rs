//! [`ConfigError`]: a configuration problem, naming the variable and the fix.

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value outside what it accepts.
    #[error("{variable}={shown} is not valid: expected {expected}")]
    Invalid {
        /// The variable's name.
        variable: String,
        /// Its value, or `<redacted>` for secrets.
        shown: String,
        /// The values it accepts.
        expected: String,
    },
    /// Variables that are each valid but do not make sense together.
    #[error("{variable}: {problem}")]
    Inconsistent {
        /// The variable to change.
        variable: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The `.env` file cannot be read or parsed.
    #[error("{path}: {problem}")]
    EnvFile {
        /// Path of the file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigError {
    /// The variable (or `.env` path) the error is about.
    pub fn variable(&self) -> &str {
        match self {
            Self::Invalid { variable, .. } | Self::Inconsistent { variable, .. } => variable,
            Self::EnvFile { path, .. } => path,
        }
    }
}
