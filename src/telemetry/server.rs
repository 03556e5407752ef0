//! `/metrics` (Prometheus text format), `/healthz` (liveness), `/readyz` (readiness) and, with
//! `telemetry.tap: true`, `/tap` (live copies of the documents, NDJSON) on a local address. The
//! health verdicts come from `health::Health`; this only serves them: `200` with `ok`, or `503`
//! with the reasons, one a line.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;

use super::Metrics;
use super::health::Health;
use super::tap::{self, Filter, Subscription, Tap};

/// Binds and serves until `shutdown` resolves. Binding errors are returned (a busy port is a
/// configuration problem the user must see at start).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    tap: Option<Arc<Tap>>,
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
        )
        .route(
            "/tap",
            get(move |uri: axum::http::Uri| {
                let t = tap.clone();
                async move { watch(t, uri.query().unwrap_or("")) }
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

/// `/tap?namespace=&pod=&container=&grep=&sample=&limit=`: one JSON document a line as it is
/// encoded, and a `{"sluice_tap":{…}}` line at the start and whenever copies were dropped.
fn watch(tap: Option<Arc<Tap>>, query: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(tap) = tap else {
        return (
            StatusCode::NOT_FOUND,
            "the tap is off: set telemetry.tap: true to serve /tap\n",
        )
            .into_response();
    };
    let (filter, limit) = match parse_query(query) {
        Ok(q) => q,
        Err(why) => return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
    };
    let sub = match tap.subscribe(filter) {
        Ok(s) => s,
        Err(busy) => return (StatusCode::TOO_MANY_REQUESTS, format!("{busy}\n")).into_response(),
    };
    let state = Watch {
        sub,
        limit,
        sent: 0,
        reported: None,
        tick: tokio::time::interval(std::time::Duration::from_secs(1)),
        done: false,
    };
    let body = axum::body::Body::from_stream(futures::stream::unfold(state, next_line));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

struct Watch {
    sub: Subscription,
    limit: Option<u64>,
    sent: u64,
    /// Drops last reported (`None`: the opening line is not sent yet).
    reported: Option<u64>,
    tick: tokio::time::Interval,
    done: bool,
}

fn status(dropped: u64) -> bytes::Bytes {
    bytes::Bytes::from(format!("{{\"sluice_tap\":{{\"dropped\":{dropped}}}}}\n"))
}

async fn next_line(mut w: Watch) -> Option<(Result<bytes::Bytes, std::io::Error>, Watch)> {
    if w.reported.is_none() {
        w.reported = Some(0);
        return Some((Ok(status(0)), w));
    }
    loop {
        let dropped = w.sub.dropped();
        if w.done {
            return None;
        }
        if w.limit.is_some_and(|l| w.sent >= l) {
            w.done = true;
            return Some((Ok(status(dropped)), w));
        }
        tokio::select! {
            copy = w.sub.rx.recv() => {
                let copy = copy?;
                if let Some(line) = tap::render(&copy) {
                    w.sent += 1;
                    return Some((Ok(bytes::Bytes::from(line)), w));
                }
            }
            _ = w.tick.tick() => {
                if w.reported != Some(dropped) {
                    w.reported = Some(dropped);
                    return Some((Ok(status(dropped)), w));
                }
            }
        }
    }
}

/// The tap's query string: filters, `sample` (a fraction in (0, 1]: every n-th document) and
/// `limit` (documents, then the stream ends).
fn parse_query(query: &str) -> Result<(Filter, Option<u64>), String> {
    let url = reqwest::Url::parse(&format!("http://tap/?{query}")).map_err(|e| e.to_string())?;
    let mut f = Filter {
        every: 1,
        ..Filter::default()
    };
    let mut limit = None;
    for (k, v) in url.query_pairs() {
        let v = v.into_owned();
        match k.as_ref() {
            "namespace" => f.namespace = Some(v),
            "pod" => f.pod = Some(v),
            "container" => f.container = Some(v),
            "grep" if !v.is_empty() => f.grep = Some(v.into_bytes()),
            "grep" => {}
            "sample" => {
                let r: f64 = v
                    .parse()
                    .map_err(|_| format!("sample: `{v}` is not a number"))?;
                if !(r > 0.0 && r <= 1.0) {
                    return Err(format!("sample: `{v}` must be in (0, 1]"));
                }
                f.every = (1.0 / r).round().max(1.0) as u64;
            }
            "limit" => {
                limit = Some(
                    v.parse()
                        .map_err(|_| format!("limit: `{v}` is not a count"))?,
                );
            }
            other => return Err(format!("unknown parameter `{other}`")),
        }
    }
    Ok((f, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_filters_sample_and_limit() {
        let (f, limit) =
            parse_query("namespace=a&pod=p%2D1&grep=needle+x&sample=0.25&limit=7").unwrap();
        assert_eq!(f.namespace.as_deref(), Some("a"));
        assert_eq!(f.pod.as_deref(), Some("p-1"));
        assert_eq!(f.grep.as_deref(), Some(&b"needle x"[..]));
        assert_eq!(f.every, 4);
        assert_eq!(limit, Some(7));
    }

    #[test]
    fn query_rejects_what_it_does_not_know() {
        assert!(parse_query("sample=0").unwrap_err().contains("sample"));
        assert!(parse_query("sample=2").unwrap_err().contains("sample"));
        assert!(parse_query("limit=-1").unwrap_err().contains("limit"));
        assert!(parse_query("pods=x").unwrap_err().contains("pods"));
    }
}
