//! Rotated files the kubelet compressed while the agent was down (issue 11 item 1), against the
//! real agent and the real Elasticsearch: the checkpoint still owes bytes of a file that now
//! exists only as `0.log.<timestamp>.gz`. The rest of it is read from the `.gz` with the `_id`s
//! the uncompressed file gave (lines sent before a SIGKILL, after the checkpoint, are not
//! stored twice), rotations compressed after it that were never read are read too, and a `.gz`
//! the checkpoint owes nothing is never read (counted by `sluice_compressed_files_read_total`).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Agent, Es, Node, PodLog, serve_metrics, ts, unique, wait_metric};

const WAIT: Duration = Duration::from_secs(120);
const READ: &str = "sluice_compressed_files_read_total";

/// The kubelet's rotation and, later, its compression: `0.log` becomes `0.log.<stamp>`, a new
/// empty `0.log` takes its place; `compress` then writes `0.log.<stamp>.gz` and removes the
/// uncompressed file.
fn rotate(pod: &PodLog, stamp: &str) -> PathBuf {
    let rotated = pod.path.with_file_name(format!("0.log.{stamp}"));
    std::fs::rename(&pod.path, &rotated).unwrap();
    std::fs::write(&pod.path, b"").unwrap();
    rotated
}

fn compress(rotated: &Path) -> PathBuf {
    let gz = rotated.with_file_name(format!(
        "{}.gz",
        rotated.file_name().unwrap().to_str().unwrap()
    ));
    let raw = std::fs::read(rotated).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(rotated).unwrap();
    // Modification times order the rotations; keep them apart on coarse clocks.
    std::thread::sleep(Duration::from_millis(20));
    gz
}

fn write(pod: &PodLog, from: u64, to: u64) {
    for i in from..to {
        pod.line(&ts(i), "stdout", &format!("line-{i:05}"));
    }
}

/// Every `line-NNNNN` from `0..n` stored exactly once (waits, bounded, then looks again).
fn assert_exactly_once(es: &Es, pattern: &str, n: u64, agent: &Agent) {
    es.wait_count(pattern, n, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for d in es.all_docs(pattern) {
        *seen
            .entry(d["message"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    let missing: Vec<u64> = (0..n)
        .filter(|i| !seen.contains_key(&format!("line-{i:05}")))
        .collect();
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(m, _)| m)
        .collect();
    assert!(
        missing.is_empty() && twice.is_empty() && seen.len() as u64 == n,
        "{} stored; missing {missing:?}; twice {twice:?}\nlog:\n{}",
        seen.len(),
        agent.log_text()
    );
}

#[test]
fn bytes_owed_of_a_file_compressed_while_the_agent_was_down_are_read_from_its_gz() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("gz");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", false);

    // A rotation read to its end while the agent ran: compressed later, it is owed nothing.
    let agent = Agent::start(&config);
    write(&pod, 0, 100);
    let first = rotate(&pod, "20261124-100000");
    write(&pod, 100, 200);
    es.wait_count(&pattern, 200, WAIT);
    agent.stop();

    // While the agent is down: 0.log grows, is rotated and compressed (the checkpoint owes its
    // last 100 lines), the next file too (never seen), and the newest rotation stays plain.
    compress(&first);
    write(&pod, 200, 300);
    let owed = rotate(&pod, "20261124-101000");
    compress(&owed);
    write(&pod, 300, 400);
    let unseen = rotate(&pod, "20261124-102000");
    compress(&unseen);
    write(&pod, 400, 500);
    rotate(&pod, "20261124-103000");
    write(&pod, 500, 600);

    let agent = Agent::start(&config);
    assert_exactly_once(&es, &pattern, 600, &agent);
    let m = agent.metrics();
    assert_eq!(
        m.get(READ),
        2.0,
        "the owed .gz and the unseen one, not the first: {}",
        m.show("sluice_compressed")
    );
    assert_eq!(m.get("sluice_compressed_files_failed_total"), 0.0);
    let log = agent.log_text();
    assert_eq!(
        log.matches("reading the rest of it from its .gz").count(),
        2,
        "logged once per file:\n{log}"
    );
    // The decompressed copies are unlinked at once: nothing is left in the state directory.
    let copies = node.state_dir().join("decompressed");
    let left: Vec<_> = std::fs::read_dir(&copies)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    agent.stop();
}

/// The checkpoint lags what was sent (SIGKILL with a long checkpoint interval): the lines the
/// `.gz` holds after the checkpoint were stored already, and are sent again under the same
/// `_id`s, so Elasticsearch keeps one copy. Docker json-file records.
#[test]
fn a_sigkill_before_the_checkpoint_caught_up_replays_the_gz_with_the_same_ids() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("gz-kill");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);
    let pod = node.add_pod("shop", "cart", "app", true);

    let agent = Agent::start(&config);
    write(&pod, 0, 100);
    es.wait_count(&pattern, 100, WAIT);
    agent.stop();

    // Both configurations are the node's one file: written before each start.
    node.config(&format!("{index}-%Y.%m.%d"), "checkpoint_interval: 1h\n");
    let agent = Agent::start(&config);
    write(&pod, 100, 200);
    es.wait_count(&pattern, 200, WAIT);
    agent.kill();

    write(&pod, 200, 250);
    let rotated = rotate(&pod, "20261124-110000");
    compress(&rotated);
    write(&pod, 250, 300);
    rotate(&pod, "20261124-111000");
    write(&pod, 300, 320);

    node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);
    let agent = Agent::start(&config);
    assert_exactly_once(&es, &pattern, 320, &agent);
    wait_metric(&agent, READ, 1.0);
    let m = agent.metrics();
    assert!(
        m.get("sluice_bulk_items_total{outcome=\"duplicate\"}") >= 100.0,
        "lines 100..200 were sent again under the same ids: {}",
        m.show("sluice_bulk_items")
    );
    agent.stop();
}
