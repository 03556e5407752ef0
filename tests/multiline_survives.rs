//! A multiline group survives what the pipeline survives (issue 15 item 4), against the real
//! agent and the real Elasticsearch: a SIGKILL in the middle of a trace (the checkpoint never
//! passes a group in progress, so the restart reads the trace again from its first line and
//! ships it whole, once), and a frame line the runtime wrote in pieces inside a trace (CRI `P`
//! chunks, docker pieces without `\n`): one document, the frame joined. A rotation in the
//! middle of a trace is tests/rotation_split.rs.

mod support;

use std::time::{Duration, Instant};

use support::{Agent, Es, Node, PodLog, assert_stored, serve_metrics, ts, unique};

const WAIT: Duration = Duration::from_secs(120);
/// `auto` with a long idle timeout: a trace in progress is never flushed early by the timeout,
/// so what is tested is the checkpoint rule and the joining, not timing.
const AUTO: &str = "parse:\n  multiline:\n    parsers: [auto]\n    timeout: 30s\n";

const TRACE: [&str; 4] = [
    "java.lang.IllegalStateException: cart is gone",
    "\tat com.example.Cart.checkout(Cart.java:42)",
    "\tat com.example.Shop.buy(Shop.java:7)",
    "Caused by: java.io.IOException: closed",
];

fn wait_lines_read(agent: &Agent, n: f64) {
    let deadline = Instant::now() + WAIT;
    while agent.metrics().get("sluice_lines_read_total") < n {
        assert!(
            Instant::now() < deadline,
            "{n} lines not read: {}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sigkill_in_the_middle_of_a_trace_ships_it_whole_once() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("ml-kill");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), AUTO);
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", false);
    let agent = Agent::start(&config);
    pod.line(&ts(0), "stdout", "before");
    es.wait_count(&pattern, 1, WAIT);
    // Half a trace, read (held as a group in progress), then the agent dies.
    pod.line(&ts(1), "stdout", TRACE[0]);
    pod.line(&ts(2), "stdout", TRACE[1]);
    wait_lines_read(&agent, 3.0);
    // Give the checkpointer time to write what it may (it must not pass the group).
    std::thread::sleep(Duration::from_millis(1500));
    agent.kill();
    pod.line(&ts(3), "stdout", TRACE[2]);
    pod.line(&ts(4), "stdout", TRACE[3]);
    pod.line(&ts(5), "stdout", "after");
    let agent = Agent::start(&config);
    assert_stored(
        &es,
        &pattern,
        &["before".into(), TRACE.join("\n"), "after".into()],
        &agent,
    );
    agent.stop();
}

/// A frame line written in three pieces in the middle of a trace, with stderr lines between
/// the pieces (pieces are joined per stream).
fn pieces_inside_a_trace(docker: bool) {
    let es = Es::new();
    let node = Node::new();
    let index = unique(if docker { "ml-docker" } else { "ml-cri" });
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), AUTO);
    let pod: PodLog = node.add_pod("shop", "cart", "app", docker);
    let agent = Agent::start(&config);
    pod.line(&ts(0), "stdout", TRACE[0]);
    pod.partial(&ts(1), "stdout", "\tat com.example.Cart.");
    pod.line(&ts(2), "stderr", "warn: slow disk");
    pod.partial(&ts(3), "stdout", "checkout(Cart.");
    pod.line(&ts(4), "stdout", "java:42)");
    pod.line(&ts(5), "stdout", TRACE[2]);
    pod.line(&ts(6), "stdout", TRACE[3]);
    pod.line(&ts(7), "stdout", "after");
    assert_stored(
        &es,
        &pattern,
        &[TRACE.join("\n"), "warn: slow disk".into(), "after".into()],
        &agent,
    );
    agent.stop();
}

#[test]
fn cri_partial_chunks_inside_a_trace_are_one_document() {
    pieces_inside_a_trace(false);
}

#[test]
fn docker_pieces_inside_a_trace_are_one_document() {
    pieces_inside_a_trace(true);
}
