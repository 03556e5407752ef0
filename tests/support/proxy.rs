//! A fault-injecting HTTP proxy between the agent and the real Elasticsearch, controlled from the
//! test. Faults apply to `_bulk` requests only (setup and health probes pass through), each for
//! a number of requests, so every scenario ends and the agent must recover by itself; the
//! black holes last until the test changes the fault (`BlackHoleAll` holds every request).
//!
//! Per-item 429s are honest: the proxy answers those items itself and does NOT forward them. It
//! forwards a body holding only the other items, then merges the real per-item results back in
//! the original order. So a 429 item is never written, and a created item really is created.
//! `Reject429Index`, `TooLargeIndex` and `UnavailableIndex` hit only requests or items for some
//! indices (the dead-letter index).
#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

/// What the next `_bulk` requests meet.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Pass,
    /// The connection is reset before the request is forwarded: nothing written.
    ResetBefore(usize),
    /// Forwarded (Elasticsearch writes it), then the connection is reset: the answer is lost.
    ResetAfter(usize),
    /// Forwarded after a delay (longer than the agent's timeout: the agent gives up, retries).
    Delay(usize, Duration),
    /// `503` without forwarding.
    Unavailable(usize),
    /// `413` for every body (uncompressed) above this many bytes, until changed.
    TooLarge(usize),
    /// Every other item answered `429` by the proxy (not forwarded), for this many requests.
    Reject429(usize),
    /// Items for an index whose name ends with `index_suffix` (the dead-letter index, say):
    /// every other one of them, counted across requests (so an item retried alone meets it
    /// too), answered `429` by the proxy and not forwarded; the other items pass. For this many
    /// requests holding such items; requests without one pass and do not count.
    Reject429Index {
        index_suffix: String,
        requests: usize,
    },
    /// `413` for every body (uncompressed) above `limit` bytes that holds an item for an index
    /// whose name ends with `index_suffix`, until changed; other requests pass.
    TooLargeIndex {
        index_suffix: String,
        limit: usize,
    },
    /// `503` without forwarding for every request holding an item for an index whose name ends
    /// with `index_suffix`, until changed; other requests pass.
    UnavailableIndex {
        index_suffix: String,
    },
    /// Elasticsearch's capacity limited to this many (uncompressed) body bytes per second,
    /// until changed: each `_bulk` request is forwarded once the requests before it have used
    /// their share, so concurrent requests queue as on a saturated cluster.
    Throttle(u64),
    /// `_bulk` requests are held without an answer and never forwarded (nothing written), until
    /// changed; health probes and setup pass: a cluster that looks healthy but takes nothing.
    BlackHole,
    /// Every request (setup and probes too) is held without an answer, until changed: a
    /// server that accepts connections and never answers.
    BlackHoleAll,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub bulk_requests: usize,
    pub faulted_requests: usize,
    pub rejected_items: usize,
    /// With [`Proxy::record_acks`]: forwarded `_bulk` requests Elasticsearch answered with
    /// another status than 200, and items of 200 answers it refused.
    pub bulk_not_ok: usize,
    pub items_refused: usize,
}

struct State {
    fault: Fault,
    stats: Stats,
    /// Items `Reject429Index` has seen: which of them is "every other".
    index_items_seen: usize,
    /// `Throttle`: when the capacity is free again.
    free_at: Option<std::time::Instant>,
    /// With [`Proxy::record_acks`]: each bulk item's message (its first 64 bytes) and when
    /// Elasticsearch acknowledged it (its request answered 200, the item 2xx; ms since the
    /// epoch).
    acks: Option<Vec<(String, u64)>>,
    /// With [`Proxy::record_acks`]: each bulk item's message and when its request reached the
    /// proxy (every attempt).
    arrivals: Vec<(String, u64)>,
}

pub struct Proxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        let state = Arc::new(Mutex::new(State {
            fault: Fault::Pass,
            stats: Stats::default(),
            index_items_seen: 0,
            free_at: None,
            acks: None,
            arrivals: Vec::new(),
        }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let upstream = upstream.trim_end_matches('/').to_string();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(std_listener, upstream, st, stop_rx));
        });
        Proxy {
            url: format!("http://{addr}"),
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn set(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    pub fn fault(&self) -> Fault {
        self.state.lock().unwrap().fault.clone()
    }

    /// From now on, records when each forwarded item was acknowledged (see [`Proxy::acks`]).
    pub fn record_acks(&self) {
        self.state.lock().unwrap().acks.get_or_insert_with(Vec::new);
    }

    /// The items acknowledged so far: the first 64 bytes of their message, and when
    /// Elasticsearch acknowledged them (ms since the epoch).
    pub fn acks(&self) -> Vec<(String, u64)> {
        self.state.lock().unwrap().acks.clone().unwrap_or_default()
    }

    /// The items sent so far, each attempt: the first 64 bytes of their message, and when
    /// their request reached the proxy (ms since the epoch): the order the agent sent them in.
    pub fn arrivals(&self) -> Vec<(String, u64)> {
        self.state.lock().unwrap().arrivals.clone()
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    state: Arc<Mutex<State>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    loop {
        let (stream, _): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
            _ = &mut stop => return,
        };
        // Zero linger: closing the socket sends RST, a real connection reset for the client.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        let kill = Arc::new(tokio::sync::Notify::new());
        let (state, upstream, client, k) = (
            state.clone(),
            upstream.clone(),
            client.clone(),
            kill.clone(),
        );
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                handle(
                    req,
                    upstream.clone(),
                    client.clone(),
                    state.clone(),
                    k.clone(),
                )
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    upstream: String,
    client: reqwest::Client,
    state: Arc<Mutex<State>>,
    kill: Arc<tokio::sync::Notify>,
) -> Result<Resp, std::convert::Infallible> {
    let method = req.method().clone();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let is_bulk = req_path(&path_q).ends_with("/_bulk");
    if state.lock().unwrap().fault == Fault::BlackHoleAll {
        std::future::pending::<()>().await;
    }
    let gzipped = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");

    let raw = if is_bulk && gzipped {
        gunzip(&body)
    } else {
        body.to_vec()
    };
    // Which items the proxy answers 429 itself (Reject429, Reject429Index).
    let mut reject = Vec::new();
    let mut forward_at = None;
    let fault = if is_bulk {
        let mut s = state.lock().unwrap();
        s.stats.bulk_requests += 1;
        let raw_len = raw.len();
        let (fault, next) = match s.fault.clone() {
            Fault::Pass => (Fault::Pass, Fault::Pass),
            Fault::Throttle(rate) => {
                let now = std::time::Instant::now();
                let start = s.free_at.map_or(now, |t| t.max(now));
                let done = start + Duration::from_secs_f64(raw_len as f64 / rate as f64);
                s.free_at = Some(done);
                forward_at = Some(done);
                (Fault::Throttle(rate), Fault::Throttle(rate))
            }
            f @ (Fault::BlackHole | Fault::BlackHoleAll) => (f.clone(), f),
            Fault::TooLarge(limit) if raw_len > limit => {
                (Fault::TooLarge(limit), Fault::TooLarge(limit))
            }
            Fault::TooLarge(limit) => (Fault::Pass, Fault::TooLarge(limit)),
            Fault::TooLargeIndex {
                index_suffix,
                limit,
            } => {
                let hit = raw_len > limit
                    && item_indices(&raw)
                        .iter()
                        .any(|i| i.ends_with(index_suffix.as_str()));
                let f = Fault::TooLargeIndex {
                    index_suffix,
                    limit,
                };
                (if hit { f.clone() } else { Fault::Pass }, f)
            }
            Fault::UnavailableIndex { index_suffix } => {
                let hit = item_indices(&raw)
                    .iter()
                    .any(|i| i.ends_with(index_suffix.as_str()));
                let f = Fault::UnavailableIndex { index_suffix };
                (if hit { f.clone() } else { Fault::Pass }, f)
            }
            Fault::Reject429Index {
                index_suffix,
                requests,
            } => {
                let matching: Vec<bool> = item_indices(&raw)
                    .iter()
                    .map(|i| i.ends_with(index_suffix.as_str()))
                    .collect();
                if matching.contains(&true) {
                    for m in matching {
                        let hit = m && {
                            s.index_items_seen += 1;
                            s.index_items_seen % 2 == 1
                        };
                        reject.push(hit);
                    }
                    let next = if requests <= 1 {
                        Fault::Pass
                    } else {
                        Fault::Reject429Index {
                            index_suffix: index_suffix.clone(),
                            requests: requests - 1,
                        }
                    };
                    (
                        Fault::Reject429Index {
                            index_suffix,
                            requests,
                        },
                        next,
                    )
                } else {
                    let same = Fault::Reject429Index {
                        index_suffix,
                        requests,
                    };
                    (Fault::Pass, same)
                }
            }
            f @ (Fault::ResetBefore(n)
            | Fault::ResetAfter(n)
            | Fault::Unavailable(n)
            | Fault::Reject429(n)
            | Fault::Delay(n, _)) => {
                let rest = n - 1;
                let next = if rest == 0 {
                    Fault::Pass
                } else {
                    match f.clone() {
                        Fault::ResetBefore(_) => Fault::ResetBefore(rest),
                        Fault::ResetAfter(_) => Fault::ResetAfter(rest),
                        Fault::Unavailable(_) => Fault::Unavailable(rest),
                        Fault::Reject429(_) => Fault::Reject429(rest),
                        Fault::Delay(_, d) => Fault::Delay(rest, d),
                        _ => unreachable!(),
                    }
                };
                if let Fault::Reject429(_) = f {
                    reject = (0..item_indices(&raw).len()).map(|i| i % 2 == 1).collect();
                }
                (f, next)
            }
        };
        s.fault = next;
        if fault != Fault::Pass {
            s.stats.faulted_requests += 1;
        }
        fault
    } else {
        Fault::Pass
    };

    let forward = |body: Bytes, gzipped: bool| {
        let mut r = client
            .request(method.clone(), format!("{upstream}{path_q}"))
            .body(body);
        if let Some(ct) = headers.get("content-type") {
            r = r.header("content-type", ct.as_bytes());
        }
        if gzipped {
            r = r.header("content-encoding", "gzip");
        }
        if let Some(a) = headers.get("authorization") {
            r = r.header("authorization", a.as_bytes());
        }
        async move {
            match r.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let b = resp.bytes().await.unwrap_or_default();
                    respond(status, b)
                }
                Err(e) => respond(502, format!("{{\"error\":\"proxy: {e}\"}}")),
            }
        }
    };

    let recording = is_bulk && state.lock().unwrap().acks.is_some();
    let msgs = if recording {
        let msgs = item_messages(&raw);
        let at = epoch_ms();
        let mut s = state.lock().unwrap();
        s.arrivals.extend(msgs.iter().map(|m| (m.clone(), at)));
        msgs
    } else {
        Vec::new()
    };
    let resp = match fault {
        Fault::Pass | Fault::Throttle(_) => {
            if let Some(at) = forward_at {
                tokio::time::sleep_until(at.into()).await;
            }
            let resp = forward(body, gzipped).await;
            if !recording {
                return Ok(resp);
            }
            let status = resp.status().as_u16();
            let answer = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let at = epoch_ms();
            let mut s = state.lock().unwrap();
            if status == 200 {
                let ok = items_ok(&answer, msgs.len());
                s.stats.items_refused += ok.iter().filter(|o| !**o).count();
                let acked: Vec<_> = msgs
                    .into_iter()
                    .zip(ok)
                    .filter(|(_, ok)| *ok)
                    .map(|(m, _)| (m, at))
                    .collect();
                s.acks.get_or_insert_with(Vec::new).extend(acked);
            } else {
                s.stats.bulk_not_ok += 1;
            }
            respond(status, answer)
        }
        Fault::TooLarge(_) | Fault::TooLargeIndex { .. } => respond(413, ""),
        Fault::Unavailable(_) | Fault::UnavailableIndex { .. } => respond(
            503,
            r#"{"error":{"type":"unavailable","reason":"test proxy"},"status":503}"#,
        ),
        Fault::ResetBefore(_) => {
            kill.notify_one();
            std::future::pending::<()>().await;
            unreachable!()
        }
        Fault::ResetAfter(_) => {
            let _ = forward(body, gzipped).await;
            kill.notify_one();
            std::future::pending::<()>().await;
            unreachable!()
        }
        Fault::BlackHole | Fault::BlackHoleAll => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Fault::Delay(_, d) => {
            tokio::time::sleep(d).await;
            forward(body, gzipped).await
        }
        Fault::Reject429(_) | Fault::Reject429Index { .. } => {
            let (resp, rejected) = reject_items(&raw, &reject, forward).await;
            state.lock().unwrap().stats.rejected_items += rejected;
            resp
        }
    };
    Ok(resp)
}

fn req_path(path_q: &str) -> &str {
    path_q.split('?').next().unwrap_or("")
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Whether each of a 200 bulk answer's `n` items was stored (2xx); all of them when the answer
/// says no errors.
fn items_ok(answer: &[u8], n: usize) -> Vec<bool> {
    let v: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    if v["errors"] != Value::Bool(true) {
        return vec![true; n];
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    (0..n)
        .map(|i| {
            items
                .get(i)
                .and_then(|it| it.as_object()?.values().next()?["status"].as_u64())
                .is_some_and(|s| (200..300).contains(&s))
        })
        .collect()
}

/// The first 64 bytes of every document's `message` in a bulk body, in order.
fn item_messages(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .skip(1)
        .step_by(2)
        .map(|doc| {
            let v: Value = serde_json::from_slice(doc).expect("a bulk document line");
            let m = v["message"].as_str().unwrap_or_default();
            let mut end = m.len().min(64);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m[..end].to_string()
        })
        .collect()
}

/// The `_index` of every action in a bulk body, in order.
fn item_indices(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .step_by(2)
        .map(|action| {
            let v: Value = serde_json::from_slice(action).expect("a bulk action line");
            let op = v.as_object().and_then(|o| o.values().next()).cloned();
            op.and_then(|o| o["_index"].as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect()
}

/// Items whose `reject` entry is true get a 429 from the proxy; the others are forwarded (as
/// one plain body) and their real results merged back in order. Returns the answer and how
/// many items were rejected.
async fn reject_items<F, Fut>(raw: &[u8], reject: &[bool], forward: F) -> (Resp, usize)
where
    F: Fn(Bytes, bool) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    let lines: Vec<&[u8]> = raw
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        lines.len().is_multiple_of(2),
        "create actions come in pairs"
    );
    let n = lines.len() / 2;
    assert_eq!(reject.len(), n, "one decision per item");
    let mut kept = Vec::new();
    for i in (0..n).filter(|&i| !reject[i]) {
        kept.extend_from_slice(lines[2 * i]);
        kept.push(b'\n');
        kept.extend_from_slice(lines[2 * i + 1]);
        kept.push(b'\n');
    }
    let mut real = Vec::new().into_iter();
    if !kept.is_empty() {
        let upstream = forward(Bytes::from(kept), false).await;
        let status = upstream.status().as_u16();
        let body = upstream.into_body().collect().await.unwrap().to_bytes();
        if status != 200 {
            return (respond(status, body), 0);
        }
        let v: Value = serde_json::from_slice(&body).unwrap();
        real = v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter();
    }
    let mut items = Vec::with_capacity(n);
    for &rejected in reject {
        if rejected {
            items.push(json!({"create": {"status": 429, "error": {
                "type": "es_rejected_execution_exception",
                "reason": "rejected by the test proxy (not forwarded)"}}}));
        } else {
            items.push(real.next().expect("one result per forwarded item"));
        }
    }
    let rejected = reject.iter().filter(|&&r| r).count();
    let merged = json!({"errors": true, "items": items});
    (respond(200, merged.to_string()), rejected)
}
