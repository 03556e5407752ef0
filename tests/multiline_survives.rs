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

/// A trace whose lines are all in the file but read slowly (its namespace over a 1 KiB/s read
/// budget: ~5 s for the whole trace) is still one document: the idle timeout (1 s, the default)
/// counts from a read that found nothing more, not from the last line the reader took. Before,
/// the throttled file's group was flushed while its continuation waited unread in the file, and
/// the trace arrived in pieces.
#[test]
fn a_trace_read_slowly_under_a_read_budget_is_one_document() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("ml-slow");
    // ~9 KiB of trace: 4 KiB at once, then 4 s parked per 4 KiB.
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "  scan_interval: 1s\n",
        "  scan_interval: 1s\n  rate_limit:\n    key: namespace\n    bytes_per_second: 1KiB\n    burst: 4KiB\n",
        1,
    );
    assert!(text.contains("rate_limit"), "{text}");
    std::fs::write(&config, text).unwrap();
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", false);
    let agent = Agent::start(&config);
    pod.line(&ts(0), "stdout", "before");
    es.wait_count(&pattern, 1, WAIT);
    let mut trace = vec![TRACE[0].to_string()];
    for i in 0..100 {
        trace.push(format!(
            "\tat com.example.shop.checkout.Step{i:02}.run(Step{i:02}.java:{i})"
        ));
    }
    for (i, l) in trace.iter().enumerate() {
        pod.line(&ts(1 + i as u64), "stdout", l);
    }
    pod.line(&ts(100), "stdout", "after");
    let started = Instant::now();
    assert_stored(
        &es,
        &pattern,
        &["before".into(), trace.join("\n"), "after".into()],
        &agent,
    );
    let took = started.elapsed();
    let m = agent.metrics();
    agent.stop();
    // The budget did hold the reading back for longer than the idle timeout.
    assert!(took >= Duration::from_secs(3), "read in {took:?}");
    assert!(
        m.get("sluice_read_throttled_seconds_total{key=\"shop\"}") > 1.0,
        "{}",
        m.show("sluice_read_throttled")
    );
}
