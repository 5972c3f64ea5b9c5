//! `feedback-pipeline serve` as a child process, for tests that kill it as a crash would.

use std::process::{Child, Command, Stdio};

/// A `serve` child process, killed (SIGKILL) when dropped, so a failing test leaves none behind.
pub struct Serve(Child);

impl Serve {
    /// Kills it with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `serve` with `vars` (its log level from `SERVE_LOG`, default `warn`).
pub fn spawn_serve(vars: &[(String, String)]) -> Serve {
    Command::new(env!("CARGO_BIN_EXE_feedback-pipeline"))
        .arg("serve")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "RUST_LOG",
            std::env::var("SERVE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map(Serve)
        .expect("starting feedback-pipeline serve")
}
