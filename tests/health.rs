//! `/healthz` and `/readyz` of the real agent, against the real Elasticsearch: each failure is
//! made to happen (bulk requests black-holed by the proxy while the cluster answers its health
//! probe, the reader thread killed or hung by the debug build's `SLUICE_TEST_FAULT`, the
//! checkpoint path replaced by a directory, setup held by a server that never answers) and the
//! endpoint must change, and come back where the cause goes away. An Elasticsearch outage must
//! never fail liveness.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::time::{Duration, Instant};

use proxy::{Fault, Proxy};
use support::{Agent, Es, Node, es_url, lines, serve_metrics, ts, unique};

/// A config through `endpoint`, with the endpoints on and a short stall timeout.
fn config(node: &Node, index: &str, endpoint: &str, es_extra: &str) -> std::path::PathBuf {
    let config = node.config_full(
        &format!("{index}-%Y.%m.%d"),
        &[endpoint.to_string()],
        es_extra,
        "",
    );
    serve_metrics(&config);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "\nshutdown_timeout: 10s\n",
        "\n  stall_timeout: 3s\nshutdown_timeout: 10s\n",
    );
    assert!(text.contains("stall_timeout: 3s"), "{text}");
    std::fs::write(&config, text).unwrap();
    config
}

/// Waits (bounded) until `path` answers `status` with a body containing `needle`.
fn wait_for(agent: &Agent, path: &str, status: u16, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (s, body) = agent.telemetry_get(path);
        if s == status && body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not answer {status} with `{needle}` within {within:?}; last: {s} {body}\nlog:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `path` answers `status` at every look for `during`.
fn stays(agent: &Agent, path: &str, status: u16, during: Duration) {
    let deadline = Instant::now() + during;
    while Instant::now() < deadline {
        let (s, body) = agent.telemetry_get(path);
        assert_eq!(s, status, "{path}: {body}\nlog:\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn healthz_fails_while_bulk_requests_are_black_holed_by_a_healthy_cluster_and_recovers() {
    let es = Es::new();
    let proxy = Proxy::start(&es_url());
    let node = Node::new();
    let index = unique("health-stall");
    let config = config(&node, &index, &proxy.url, "  request_timeout: 2s\n");
    proxy.set(Fault::BlackHole);
    let expected = lines(&node, "stall", 200);
    let agent = Agent::start(&config);
    wait_for(&agent, "/readyz", 200, "ok", Duration::from_secs(30));
    let why = wait_for(
        &agent,
        "/healthz",
        503,
        "no batch acknowledged",
        Duration::from_secs(30),
    );
    assert!(
        why.contains("Elasticsearch answers its health probe"),
        "{why}"
    );
    assert_eq!(
        es.count(&format!("{index}-*")),
        0,
        "the black hole wrote nothing"
    );

    proxy.set(Fault::Pass);
    wait_for(&agent, "/healthz", 200, "ok", Duration::from_secs(30));
    let n = expected.len() as u64;
    assert_eq!(
        es.wait_count(&format!("{index}-*"), n, Duration::from_secs(60)),
        n
    );
    agent.stop();
    support::assert_exactly(&es, &format!("{index}-*"), &expected);
}

#[test]
fn healthz_stays_ok_during_an_elasticsearch_outage() {
    let es = Es::new();
    let proxy = Proxy::start(&es_url());
    let node = Node::new();
    let index = unique("health-outage");
    let config = config(&node, &index, &proxy.url, "  request_timeout: 2s\n");
    let expected = lines(&node, "outage", 50);
    let agent = Agent::start(&config);
    let n = expected.len() as u64;
    assert_eq!(
        es.wait_count(&format!("{index}-*"), n, Duration::from_secs(60)),
        n
    );
    // Down: nothing answers, not even the health probe. Events wait, none is acknowledged,
    // for three times the stall timeout: restarting would not help, liveness stays ok.
    proxy.set(Fault::BlackHoleAll);
    let p = node.add_pod("shop", "outage-2", "app", false);
    p.line(&ts(1), "stdout", "written during the outage");
    stays(&agent, "/healthz", 200, Duration::from_secs(10));
    proxy.set(Fault::Pass);
    assert_eq!(
        es.wait_count(&format!("{index}-*"), n + 1, Duration::from_secs(60)),
        n + 1
    );
    agent.stop();
}

#[test]
fn healthz_fails_when_the_reader_thread_dies_or_hangs() {
    for (fault, needle) in [
        (
            "reader-panic:5",
            "the reader thread is gone: it panicked: injected",
        ),
        ("reader-hang:5", "the reader thread has been stuck"),
    ] {
        let node = Node::new();
        let index = unique("health-reader");
        let config = config(&node, &index, &es_url(), "");
        lines(&node, "reader", 20);
        let agent = Agent::start_with_env(&config, &[("SLUICE_TEST_FAULT", fault.to_string())]);
        wait_for(&agent, "/healthz", 503, needle, Duration::from_secs(30));
        // It does not come back by itself: only a restart helps.
        stays(&agent, "/healthz", 503, Duration::from_secs(2));
        agent.kill();
    }
}

#[test]
fn healthz_fails_while_checkpoints_cannot_be_written_and_recovers() {
    let node = Node::new();
    let index = unique("health-checkpoint");
    let config = config(&node, &index, &es_url(), "");
    let p = node.add_pod("shop", "cp", "app", false);
    p.line(&ts(0), "stdout", "first");
    let agent = Agent::start(&config);
    let checkpoint = node.state_dir().join("checkpoints.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !checkpoint.is_file() {
        assert!(Instant::now() < deadline, "no checkpoint written");
        std::thread::sleep(Duration::from_millis(100));
    }
    // As root, permissions do not stop a write: a directory in the checkpoint's place does
    // (the atomic rename over it fails), which is what a broken state volume looks like.
    std::fs::remove_file(&checkpoint).unwrap();
    std::fs::create_dir(&checkpoint).unwrap();
    let mut i = 1;
    let mut write = |p: &support::PodLog| {
        p.line(&ts(i), "stdout", &format!("line {i}"));
        i += 1;
    };
    // New lines keep the checkpoint changing, so the agent keeps trying to write it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let why = loop {
        write(&p);
        let (s, body) = agent.telemetry_get("/healthz");
        if s == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "healthz stayed {s}: {body}\nlog:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(why.contains("checkpoints cannot be written"), "{why}");
    std::fs::remove_dir(&checkpoint).unwrap();
    write(&p);
    wait_for(&agent, "/healthz", 200, "ok", Duration::from_secs(30));
    assert!(checkpoint.is_file());
    agent.stop();
}

#[test]
fn readyz_is_ready_once_the_first_scan_and_setup_attempt_are_done() {
    let proxy = Proxy::start(&es_url());
    let node = Node::new();
    let index = unique("health-ready");
    // Setup waits at most twice request_timeout for its first attempt.
    let config = config(&node, &index, &proxy.url, "  request_timeout: 4s\n");
    lines(&node, "ready", 5);
    proxy.set(Fault::BlackHoleAll);
    let agent = Agent::start(&config);
    let (s, body) = agent.telemetry_get("/readyz");
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("setup attempt"), "{body}");
    assert_eq!(agent.telemetry_get("/healthz").0, 200, "starting is alive");
    let started = Instant::now();
    wait_for(&agent, "/readyz", 200, "ok", Duration::from_secs(30));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "ready {:?} after start",
        started.elapsed()
    );
    proxy.set(Fault::Pass);
    agent.stop();
}
