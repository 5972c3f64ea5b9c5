//! `feedback-pipeline config ...`: check the configuration, print `.env.example`.

use clap::Subcommand;

use feedback_pipeline::config::vars;

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the environment and `.env`, and print the effective settings (secrets redacted).
    Check,
    /// Print `.env.example`: every variable with its default and meaning.
    EnvExample,
}

/// Runs a configuration subcommand.
pub fn execute(command: ConfigCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        ConfigCommand::Check => {
            let config = super::settings::load_config()?;
            println!("{config:#?}");
        }
        ConfigCommand::EnvExample => print!("{}", vars::env_example()),
    }
    Ok(())
}
