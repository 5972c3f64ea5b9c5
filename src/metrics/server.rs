//! The HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers) and `/readyz` (the processor has partitions, or its group has none to give).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use warp::Filter;
use warp::http::{StatusCode, header};

use super::{CONTENT_TYPE, Metrics};

/// Whether the processor is ready to serve traffic, set by its loop.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    /// Marks the processor ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether it is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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
    let health = warp::path("healthz")
        .and(warp::path::end())
        .map(|| warp::reply::with_status("ok\n", StatusCode::OK));
    let ready = warp::path("readyz").and(warp::path::end()).map(move || {
        if readiness.get() {
            warp::reply::with_status("ready\n", StatusCode::OK)
        } else {
            warp::reply::with_status("not ready\n", StatusCode::SERVICE_UNAVAILABLE)
        }
    });
    let routes = warp::get().and(scrape.or(health).or(ready));
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run();
    Ok((bound, server))
}
