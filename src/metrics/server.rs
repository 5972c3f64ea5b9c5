//! The HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the processing loop
//! turns) and `/readyz` (the processor has partitions and its commits are moving).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warp::Filter;
use warp::http::{StatusCode, header};

use super::{CONTENT_TYPE, Metrics};

/// The processor's health, set by its loop and read by `/healthz` and `/readyz`.
#[derive(Debug)]
pub struct Readiness {
    assigned: AtomicBool,
    /// Why the processor is not ready although it has partitions (commits blocked, stopped).
    problem: Mutex<Option<String>>,
    started: Instant,
    /// Milliseconds after `started` of the loop's last turn.
    last_turn_ms: AtomicU64,
    /// `/healthz` fails once the loop has not turned for this long (0: never).
    stall_after_ms: AtomicU64,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            assigned: AtomicBool::new(false),
            problem: Mutex::new(None),
            started: Instant::now(),
            last_turn_ms: AtomicU64::new(0),
            stall_after_ms: AtomicU64::new(0),
        }
    }
}

impl Readiness {
    /// Marks the processor as holding partitions (or as having none to serve).
    pub fn set(&self, ready: bool) {
        self.assigned.store(ready, Ordering::Relaxed);
    }

    /// Sets (or clears, with `None`) why the processor is not ready.
    pub fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    }

    /// Why it is not ready, if it is not: `Ok` when ready.
    pub fn check(&self) -> Result<(), String> {
        if let Some(problem) = &*self.problem.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(problem.clone());
        }
        if !self.assigned.load(Ordering::Relaxed) {
            return Err("no partitions assigned yet".into());
        }
        Ok(())
    }

    /// Whether it is ready.
    pub fn get(&self) -> bool {
        self.check().is_ok()
    }

    /// Notes a turn of the processing loop.
    pub fn turned(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_turn_ms.store(now, Ordering::Relaxed);
    }

    /// Makes `/healthz` fail once the loop has not turned for `after`.
    pub fn set_stall_after(&self, after: Duration) {
        self.stall_after_ms
            .store(after.as_millis() as u64, Ordering::Relaxed);
    }

    /// `Err` with the stall when the loop has not turned for longer than allowed.
    pub fn liveness(&self) -> Result<(), String> {
        let limit = self.stall_after_ms.load(Ordering::Relaxed);
        let quiet = (self.started.elapsed().as_millis() as u64)
            .saturating_sub(self.last_turn_ms.load(Ordering::Relaxed));
        if limit == 0 || quiet <= limit {
            return Ok(());
        }
        Err(format!(
            "the processing loop has not turned for {} s (PROCESSOR_STALL_TIMEOUT_MS={limit})",
            quiet / 1000
        ))
    }
}

/// Binds `addr` and returns the bound address and the server future, which ends when
/// `shutdown` completes.
pub async fn bind<S>(
    addr: &str,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: S,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()> + use<S>)>
where
    S: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("METRICS_ADDR={addr}: cannot listen there: {err} (set METRICS_ADDR to a free host:port)"),
        )
    })?;
    let bound = listener.local_addr()?;
    let scrape = warp::path("metrics").and(warp::path::end()).map(move || {
        warp::reply::with_header(metrics.render(), header::CONTENT_TYPE, CONTENT_TYPE)
    });
    let live = Arc::clone(&readiness);
    let health = warp::path("healthz")
        .and(warp::path::end())
        .map(move || status(live.liveness(), "ok"));
    let ready = warp::path("readyz")
        .and(warp::path::end())
        .map(move || status(readiness.check(), "ready"));
    let routes = warp::get().and(scrape.or(health).or(ready));
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run();
    Ok((bound, server))
}

/// 200 with `ok`, or 503 with the problem.
fn status(check: Result<(), String>, ok: &str) -> warp::reply::WithStatus<String> {
    match check {
        Ok(()) => warp::reply::with_status(format!("{ok}\n"), StatusCode::OK),
        Err(problem) => warp::reply::with_status(
            format!("not {ok}: {problem}\n"),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}
