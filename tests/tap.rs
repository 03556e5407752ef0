//! `sluice tap` and `/tap` against the real agent and the real Elasticsearch: the documents it
//! streams are the ones being shipped, filtered and limited; a client that never reads makes
//! the tap drop copies (counted) while every line still reaches Elasticsearch; the tap is off
//! unless `telemetry.tap: true`.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Agent, Es, Node, serve_metrics, ts, unique};

/// A config with `/metrics` on a free port and, when `tap`, the tap on.
fn config(node: &Node, index: &str, tap: bool) -> std::path::PathBuf {
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);
    if tap {
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text.replace(
            "\nshutdown_timeout: 10s\n",
            "\n  tap: true\nshutdown_timeout: 10s\n",
        );
        assert!(text.contains("  tap: true\n"), "{text}");
        std::fs::write(&config, text).unwrap();
    }
    config
}

fn listen(config: &std::path::Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    let (_, rest) = text.split_once("telemetry:\n  listen: ").unwrap();
    rest.lines().next().unwrap().to_string()
}

/// Waits (bounded) until the agent is ready: signals are handled from then on.
fn ready(agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.telemetry_get("/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready\nlog:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tap_streams_the_filtered_documents_and_ends_at_its_limit() {
    let es = Es::new();
    let index = unique("tap");
    let node = Node::new();
    let a = node.add_pod("tap-a", "web", "app", false);
    let b = node.add_pod("tap-b", "db", "app", false);
    let config = config(&node, &index, true);
    let agent = Agent::start(&config);

    let mut tap = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["tap", "--url"])
        .arg(format!("http://{}", listen(&config)))
        .args(["--namespace", "tap-a", "--grep", "wanted", "--limit", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines keep coming until the tap has its five (it sees only what is encoded after it
    // connected), bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut written = 0u64;
    let status = loop {
        for _ in 0..5 {
            a.line(&ts(written), "stdout", &format!("wanted a {written}"));
            a.line(&ts(written), "stdout", &format!("other a {written}"));
            b.line(&ts(written), "stdout", &format!("wanted b {written}"));
            written += 1;
        }
        if let Some(s) = tap.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the tap did not end within 60 s\nlog:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    tap.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    tap.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "sluice tap: {status}\n{err}");
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(docs.len(), 5, "{out}");
    for d in &docs {
        assert!(d["_index"].as_str().unwrap().starts_with(&index), "{d}");
        assert_eq!(d["_id"].as_str().unwrap().len(), 22, "{d}");
        assert_eq!(d["_source"]["kubernetes"]["namespace"], "tap-a", "{d}");
        let msg = d["_source"]["message"].as_str().unwrap();
        assert!(msg.starts_with("wanted a "), "{d}");
    }
    // What the tap showed is what was stored, under the same id; and nothing was taken away.
    let pattern = format!("{index}-*");
    es.wait_count(&pattern, written * 3, Duration::from_secs(60));
    for d in &docs {
        let id = d["_id"].as_str().unwrap();
        let hit = es.post(
            &format!("{pattern}/_search"),
            &serde_json::json!({"query": {"ids": {"values": [id]}}}),
        );
        assert_eq!(hit["hits"]["total"]["value"], 1, "{id}: {hit}");
        assert_eq!(
            hit["hits"]["hits"][0]["_source"]["message"], d["_source"]["message"],
            "{hit}"
        );
    }
    assert_eq!(es.count(&pattern), written * 3);
    agent.stop();
}

#[test]
fn a_tap_that_never_reads_drops_copies_and_never_slows_shipping() {
    let es = Es::new();
    let index = unique("tap-slow");
    let node = Node::new();
    let p = node.add_pod("tap-slow", "noisy", "app", false);
    let config = config(&node, &index, true);
    let agent = Agent::start(&config);

    // A client that asks and then never reads a byte.
    let mut stuck = std::net::TcpStream::connect(listen(&config)).unwrap();
    write!(
        stuck,
        "GET /tap HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\r\n",
        listen(&config)
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    // Far more than the socket buffers and the tap's queue hold.
    let n = 40_000u64;
    let pad = "x".repeat(300);
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(&p.record(&ts(i), "stdout", &format!("line {i} {pad}"), false));
        if batch.len() > 1 << 20 {
            p.append_raw(&batch);
            batch.clear();
        }
    }
    p.append_raw(&batch);

    let pattern = format!("{index}-*");
    let stored = es.wait_count(&pattern, n, Duration::from_secs(120));
    assert_eq!(stored, n, "log:\n{}", agent.log_text());
    let m = agent.metrics();
    let dropped = m.get("sluice_tap_documents_total{outcome=\"dropped\"}");
    let sent = m.get("sluice_tap_documents_total{outcome=\"sent\"}");
    assert!(dropped > 0.0, "{}", m.show("sluice_tap"));
    assert!(sent > 0.0, "{}", m.show("sluice_tap"));
    assert_eq!(dropped + sent, n as f64, "every event was offered once");
    drop(stuck);
    agent.stop();
}

#[test]
fn the_tap_is_off_unless_configured() {
    let node = Node::new();
    let config = config(&node, &unique("tap-off"), false);
    let agent = Agent::start(&config);
    ready(&agent);
    let (status, body) = agent.telemetry_get("/tap");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("telemetry.tap"), "{body}");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["tap", "--url"])
        .arg(format!("http://{}", listen(&config)))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("telemetry.tap"),
        "{err}"
    );
    agent.stop();
}
