//! A line (or a multiline group) split by a rotation arrives as one document (issue 11 item 2),
//! against the real agent and the real Elasticsearch: the rotated file ends with `P` chunks
//! (docker: pieces without `\n`, or the first lines of a stack trace) and the new `0.log`
//! begins with the rest. Per stream, for CRI and docker, while the agent runs and across a
//! restart (clean stop while the pieces wait, SIGKILL after the join, SIGKILL after the join
//! was sent but before Elasticsearch acknowledged it): never lost, never duplicated, never torn.
//!
//! The idle timeout is raised (`parse.multiline.timeout`) so that pieces waiting at the end of
//! the live file are not flushed alone before the test rotates it: the tests are deterministic.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proxy::{Fault, Proxy};
use serde_json::Value;
use support::{Agent, Es, Node, PodLog, assert_stored, serve_metrics, ts, unique, wait_metric};

const WAIT: Duration = Duration::from_secs(120);

const SLOW_IDLE: &str = "parse:\n  multiline:\n    parsers: [auto]\n    timeout: 60s\n";
/// Shorter: under `java` every line waits for the timeout, the last ones too.
const JAVA: &str = "parse:\n  multiline:\n    parsers: [java]\n    timeout: 10s\n";

/// The kubelet's rotation: the live file is renamed and a new, empty `0.log` takes its place.
fn rotate(pod: &PodLog) -> std::path::PathBuf {
    let rotated = pod.path.with_file_name("0.log.20261124-101500");
    std::fs::rename(&pod.path, &rotated).unwrap();
    std::fs::write(&pod.path, b"").unwrap();
    rotated
}

/// Waits (bounded) until the checkpoint holds `offset` for the file at `real_path`.
fn wait_checkpoint(node: &Node, real_path: &std::path::Path, offset: u64, agent: &Agent) {
    let file = node.state_dir().join("checkpoints.json");
    let deadline = Instant::now() + WAIT;
    loop {
        let found = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| {
                c["files"].as_array()?.iter().find_map(|e| {
                    (e["real_path"].as_str() == real_path.to_str()).then(|| e["offset"].as_u64())?
                })
            });
        if found == Some(offset) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoint of {} is {found:?}, not {offset}\nlog:\n{}",
            real_path.display(),
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cri_lines_split_by_a_rotation_are_one_document_per_stream_and_survive_a_sigkill() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("split-cri");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), SLOW_IDLE);
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", false);
    let agent = Agent::start(&config);

    pod.line(&ts(0), "stdout", "before");
    pod.partial(&ts(1), "stdout", "out-1 ");
    pod.partial(&ts(2), "stderr", "err-1 ");
    pod.partial(&ts(3), "stdout", "out-2 ");
    es.wait_count(&pattern, 1, WAIT);
    let held_at = std::fs::metadata(&pod.path).unwrap().len();
    rotate(&pod);
    pod.partial(&ts(4), "stdout", "out-3 ");
    pod.line(&ts(5), "stderr", "err-2");
    pod.line(&ts(6), "stdout", "out-4");
    pod.line(&ts(7), "stdout", "after");
    assert_stored(
        &es,
        &pattern,
        &["before", "out-1 out-2 out-3 out-4", "err-1 err-2", "after"],
        &agent,
    );
    assert_eq!(agent.metrics().get("sluice_rotation_joins_total"), 1.0);
    let docs: BTreeMap<String, Value> = es
        .all_docs(&pattern)
        .into_iter()
        .map(|d| (d["message"].as_str().unwrap().to_string(), d))
        .collect();
    // The joined events start in the rotated file: its offsets, its timestamps.
    let out = &docs["out-1 out-2 out-3 out-4"];
    assert_eq!(out["log"]["iostream"], "stdout");
    let before_len = pod.record(&ts(0), "stdout", "before", false).len() as u64;
    assert_eq!(out["log"]["offset"], before_len);
    let first_piece = ts(1);
    assert!(
        out["@timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with(&first_piece[..23])),
        "{out}"
    );
    assert_eq!(docs["err-1 err-2"]["log"]["iostream"], "stderr");
    assert!(held_at > before_len);

    // SIGKILL after the join was acknowledged, then a restart: nothing is sent again torn or
    // twice (the rotated file is done in the checkpoint, the new one past the continuation).
    std::thread::sleep(Duration::from_secs(2));
    agent.kill();
    let agent = Agent::start(&config);
    pod.line(&ts(8), "stdout", "after the restart");
    assert_stored(
        &es,
        &pattern,
        &[
            "before",
            "out-1 out-2 out-3 out-4",
            "err-1 err-2",
            "after",
            "after the restart",
        ],
        &agent,
    );
    agent.stop();
}

#[test]
fn docker_line_split_by_a_rotation_while_the_agent_is_stopped_is_one_document() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("split-docker");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), SLOW_IDLE);
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", true);
    let agent = Agent::start(&config);
    pod.line(&ts(0), "stdout", "before");
    let before_len = std::fs::metadata(&pod.path).unwrap().len();
    pod.partial(&ts(1), "stdout", &"a".repeat(16 * 1024));
    pod.partial(&ts(2), "stdout", &"b".repeat(16 * 1024));
    es.wait_count(&pattern, 1, WAIT);
    // The checkpoint stays below the pieces in progress.
    wait_checkpoint(&node, &pod.path, before_len, &agent);
    agent.stop();

    // Rotated while the agent is down: the next start finds the rotated file beside the new
    // one and must read it (from the pieces) before the new one's head.
    rotate(&pod);
    pod.line(&ts(3), "stdout", "c-end");
    pod.line(&ts(4), "stdout", "after");
    let agent = Agent::start(&config);
    let whole = format!("{}{}c-end", "a".repeat(16 * 1024), "b".repeat(16 * 1024));
    assert_stored(&es, &pattern, &["before", &whole, "after"], &agent);
    assert_eq!(agent.metrics().get("sluice_rotation_joins_total"), 1.0);
    agent.stop();
}

#[test]
fn java_stack_trace_split_by_a_rotation_is_one_document() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("split-java");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), JAVA);
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", false);
    let agent = Agent::start(&config);
    pod.line(&ts(0), "stdout", "before");
    pod.line(&ts(1), "stderr", "java.lang.IllegalStateException: boom");
    pod.line(&ts(2), "stderr", "\tat a.B.c(B.java:1)");
    pod.line(&ts(3), "stdout", "between");
    // Under `java` every line may begin a trace: `before` is out once `between` is read.
    es.wait_count(&pattern, 1, WAIT);
    rotate(&pod);
    pod.line(&ts(4), "stderr", "\tat a.B.d(B.java:2)");
    pod.line(&ts(5), "stderr", "after");
    pod.line(&ts(6), "stdout", "after too");
    assert_stored(
        &es,
        &pattern,
        &[
            "before",
            "between",
            "java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)",
            "after",
            "after too",
        ],
        &agent,
    );
    agent.stop();
}

#[test]
fn sigkill_after_the_join_is_sent_but_before_it_is_acknowledged_neither_loses_nor_duplicates() {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    let node = Node::new();
    let index = unique("split-crash");
    let pattern = format!("{index}-*");
    let via_proxy = node.config_for(&proxy.url, &format!("{index}-%Y.%m.%d"), SLOW_IDLE);
    serve_metrics(&via_proxy);
    let pod = node.add_pod("shop", "cart", "app", false);
    let agent = Agent::start(&via_proxy);
    pod.line(&ts(0), "stdout", "before");
    let before_len = std::fs::metadata(&pod.path).unwrap().len();
    pod.partial(&ts(1), "stdout", "one ");
    pod.partial(&ts(2), "stderr", "err ");
    es.wait_count(&pattern, 1, WAIT);
    wait_checkpoint(&node, &pod.path, before_len, &agent);

    // Elasticsearch takes nothing from now on: the joined events are encoded and sent, never
    // acknowledged.
    proxy.set(Fault::BlackHole);
    rotate(&pod);
    pod.line(&ts(3), "stdout", "two");
    pod.line(&ts(4), "stderr", "done");
    pod.line(&ts(5), "stdout", "after");
    wait_metric(&agent, "sluice_rotation_joins_total", 1.0);
    wait_metric(&agent, "sluice_events_encoded_total", 4.0);
    agent.kill();
    assert_eq!(es.count(&pattern), 1, "nothing passed the black hole");

    // The restart reads the rotated file again from the pieces, hands them over again and
    // joins them with the same continuation: one document each, the same ids.
    let direct = node.config(&format!("{index}-%Y.%m.%d"), SLOW_IDLE);
    serve_metrics(&direct);
    let agent = Agent::start(&direct);
    assert_stored(
        &es,
        &pattern,
        &["before", "one two", "err done", "after"],
        &agent,
    );
    assert_eq!(agent.metrics().get("sluice_rotation_joins_total"), 1.0);
    agent.stop();
    drop(proxy);
}

/// Regression (found by tests/tailer_model.rs): a new `0.log` rotated away while still empty
/// was never "read to its end" (it has no first line) and held its successor back for good.
#[test]
fn an_empty_file_rotated_at_once_does_not_hold_its_successor_back() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("split-empty");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), SLOW_IDLE);
    let pod = node.add_pod("shop", "cart", "app", false);
    let agent = Agent::start(&config);
    pod.line(&ts(0), "stdout", "before");
    es.wait_count(&pattern, 1, WAIT);
    rotate(&pod);
    // The agent sees the empty new file before it is rotated in its turn.
    std::thread::sleep(Duration::from_millis(2500));
    let dir = pod.path.parent().unwrap();
    std::fs::rename(&pod.path, dir.join("0.log.20261124-101600")).unwrap();
    std::fs::write(&pod.path, b"").unwrap();
    pod.line(&ts(1), "stdout", "after two rotations");
    assert_stored(&es, &pattern, &["before", "after two rotations"], &agent);
    agent.stop();
}
