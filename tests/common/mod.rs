//! Helpers shared by the integration tests: a real Apache Kafka cluster, condition waits, a
//! configuration and a seeded random generator ([`rng::Rng`]).

#![allow(dead_code)] // Each test binary uses its own subset.

pub mod agents;
pub mod broker;
pub mod hostile;
pub mod rng;
pub mod serve;
pub mod topic;
pub mod windows;

use std::time::{Duration, Instant};

use feedback_pipeline::config::{Config, VarSource};

/// The configuration read from `KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers` followed by `extra`
/// (later pairs win, as in [`VarSource::new`]). Panics when it is not valid.
#[track_caller]
pub fn config(bootstrap_servers: &str, extra: &[(&str, &str)]) -> Config {
    let servers = ("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers);
    let vars = std::iter::once(servers).chain(extra.iter().copied());
    match Config::from_source(&VarSource::new(vars)) {
        Ok(config) => config,
        Err(err) => panic!("the test's configuration is not valid: {err}"),
    }
}

/// Polls `condition` every 20 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends the library's logs to the test's output, filtered by `RUST_LOG` (nothing when unset).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
