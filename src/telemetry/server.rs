//! `/metrics` (Prometheus text format), `/healthz` (liveness) and `/readyz` (readiness) on a
//! local address. The health verdicts come from `health::Health`; this only serves them: `200`
//! with `ok`, or `503` with the reasons, one a line.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;

use super::Metrics;
use super::health::Health;

/// Binds and serves until `shutdown` resolves. Binding errors are returned (a busy port is a
/// configuration problem the user must see at start).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live = health.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let h = live.clone();
                async move { verdict(h.live(std::time::Instant::now())) }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let h = health.clone();
                async move { verdict(h.ready()) }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn verdict(v: Result<(), String>) -> (StatusCode, String) {
    match v {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}
