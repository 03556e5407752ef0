//! Dead letters under load (issue 11 item 3), against the real Elasticsearch behind the fault
//! proxy (`support::proxy`), with faults that hit only the dead-letter index: per-item 429s and
//! 413s on dead-letter writes are retried and split like any other write, so every line ends in
//! the target or the dead-letter index exactly once; the one loss left, the dead-letter index
//! refusing a document with a 400, is counted as `dead_letter_failed`.
//!
//! Conflicts are made as in `tests/faults.rs`: `setup: off` (no sluice template), and the JSON
//! key `status` once a string and once an object, so dynamic mapping refuses the losing shape.

#[path = "support/endpoints.rs"]
mod endpoints;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use endpoints::config_full;
use proxy::{Fault, Proxy};
use serde_json::Value;
use support::{Agent, Es, Metrics, Node, messages, serve_metrics, ts, unique};

const WAIT: Duration = Duration::from_secs(180);
/// The test configs name the dead-letter index `<index>-dlq` (`Node::config_full`).
const DLQ: &str = "-dlq";

/// `n` lines from each of two pods whose `status` conflicts (a string, an object), each with
/// `pad` bytes of padding; returns every message written.
fn write_conflicts(node: &Node, n: u64, pad: usize) -> BTreeSet<String> {
    let a = node.add_pod("shop", "text-status", "app", false);
    let b = node.add_pod("shop", "object-status", "app", false);
    let pad = "p".repeat(pad);
    let mut expected = BTreeSet::new();
    for i in 0..n {
        let (ma, mb) = (format!("a-{i}"), format!("b-{i}"));
        a.line(
            &ts(i),
            "stdout",
            &format!(r#"{{"status":"ok","msg":"{ma}","pad":"{pad}"}}"#),
        );
        b.line(
            &ts(i),
            "stdout",
            &format!(r#"{{"status":{{"code":1}},"msg":"{mb}","pad":"{pad}"}}"#),
        );
        expected.insert(ma);
        expected.insert(mb);
    }
    expected
}

/// A config shipping through `proxy` to `<index>-%Y.%m.%d`, templates off, `/metrics` on.
fn config(node: &Node, index: &str, proxy: &Proxy) -> PathBuf {
    let config = config_full(
        node,
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        "  setup: off\n",
        "",
    );
    serve_metrics(&config);
    config
}

/// A counter's value, 0 when the agent never created it (labelled counters appear on first use).
fn counter(m: &Metrics, sample: &str) -> f64 {
    m.text
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The bulk request and item counters, for messages.
fn bulk(m: &Metrics) -> String {
    m.show("sluice_bulk_requests") + &m.show("sluice_bulk_items")
}

fn items(m: &Metrics, outcome: &str) -> f64 {
    counter(
        m,
        &format!("sluice_bulk_items_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Every document of target and dead-letter index: each `_id` once, `n` in all; returns them
/// and how many are dead letters.
fn each_id_once(es: &Es, index: &str, n: u64, log: &str) -> (Vec<Value>, usize) {
    let docs = es.all_docs(&format!("{index}-*"));
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for d in &docs {
        *ids.entry(d["_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let dups: Vec<_> = ids.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "an _id in both indices or twice: {dups:?}");
    assert_eq!(docs.len() as u64, n, "documents; agent log:\n{log}");
    let dead = docs.iter().filter(|d| d.get("error").is_some()).count();
    (docs, dead)
}

/// The scrape once `n` items are settled (created, dead-lettered or lost), or after 30 s.
fn settled(agent: &Agent, n: u64) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = agent.metrics();
        let done =
            items(&m, "created") + items(&m, "dead_lettered") + items(&m, "dead_letter_failed");
        if (done >= n as f64 && counter(&m, "sluice_events_delivered_total") >= n as f64)
            || Instant::now() > deadline
        {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the agent through `fault` (set before it starts) until target + dead-letter index hold
/// every line; returns the scrape taken then, the documents, the dead-letter count, the log.
fn run(name: &str, fault: Fault, n: u64, pad: usize) -> (Metrics, Vec<Value>, usize, String) {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    let node = Node::new();
    let index = unique(&format!("dl-{name}"));
    let config = config(&node, &index, &proxy);
    let expected = write_conflicts(&node, n, pad);
    proxy.set(fault.clone());
    let agent = Agent::start(&config);
    let total = expected.len() as u64;
    let got = es.wait_count(&format!("{index}-*"), total, WAIT);
    assert_eq!(
        got,
        total,
        "documents found; agent log:\n{}",
        agent.log_text()
    );
    // The agent counts a write once it has read the answer: a moment after the search sees it.
    let metrics = settled(&agent, total);
    assert_eq!(
        counter(&metrics, "sluice_events_delivered_total"),
        total as f64,
        "every batch acknowledged once its dead letters are written"
    );
    let log = agent.log_text();
    agent.stop();
    let (docs, dead) = each_id_once(&es, &index, total, &log);
    let stats = proxy.stats();
    eprintln!(
        "scenario {name}: fault {fault:?}: {total} lines, {} documents ({dead} dead-lettered); \
         proxy: {stats:?}\n{}",
        docs.len(),
        bulk(&metrics)
    );
    assert!(dead > 0, "a conflict must have happened");
    assert!(
        stats.faulted_requests > 0,
        "the fault was never applied: the scenario tested nothing"
    );
    assert_eq!(
        items(&metrics, "dead_letter_failed"),
        0.0,
        "nothing may be lost; agent log:\n{log}"
    );
    assert_eq!(items(&metrics, "dead_lettered"), dead as f64);
    (metrics, docs, dead, log)
}

// Regression: with per-item 429s on the dead-letter write, refused documents were counted
// `dead_letter_failed` and dropped.
#[test]
fn dead_letter_items_rejected_with_429_are_retried_alone() {
    let fault = Fault::Reject429Index {
        index_suffix: DLQ.into(),
        requests: 1_000,
    };
    let (metrics, docs, _, log) = run("item-429", fault, 150, 0);
    assert!(
        items(&metrics, "dead_letter_retried") > 0.0,
        "the dead-letter 429s were not retried: {}",
        bulk(&metrics)
    );
    // Message sets too: every line once, whichever index it is in.
    let seen = messages(&docs);
    assert!(seen.values().all(|&c| c == 1), "duplicates");
    assert_eq!(seen.len(), 300, "{log}");
}

// Regression: a 413 on a dead-letter write was retried with the same body forever.
#[test]
fn dead_letter_request_too_large_is_split() {
    let fault = Fault::TooLargeIndex {
        index_suffix: DLQ.into(),
        limit: 8 << 10,
    };
    let (metrics, docs, _, _) = run("too-large", fault, 150, 200);
    assert!(
        counter(&metrics, "sluice_bulk_requests_total{outcome=\"split\"}") > 0.0,
        "{}",
        bulk(&metrics)
    );
    for d in docs.iter().filter(|d| d.get("error").is_some()) {
        assert!(
            d["sluice"].get("original_truncated").is_none(),
            "split requests fit without truncating: {d}"
        );
        assert!(d["event"]["original"].as_str().unwrap().contains("\"pad\""));
    }
}

#[test]
fn a_dead_letter_document_too_large_alone_keeps_a_truncated_original() {
    // A line of ~6 KB: its dead-letter document (the message, the original, the error) is
    // larger than the 5 KB the dead-letter index takes in one request.
    let fault = Fault::TooLargeIndex {
        index_suffix: DLQ.into(),
        limit: 5 << 10,
    };
    let (_, docs, dead, _) = run("too-large-alone", fault, 5, 6_000);
    let dl: Vec<&Value> = docs.iter().filter(|d| d.get("error").is_some()).collect();
    assert_eq!(dl.len(), dead);
    for d in dl {
        assert_eq!(d["sluice"]["original_truncated"], true, "{d}");
        let whole = d["sluice"]["original_bytes"].as_u64().unwrap();
        let kept = d["event"]["original"].as_str().unwrap().len() as u64;
        assert!(whole > 6_000 && kept < whole && kept > 0, "{whole} {kept}");
        assert!(d["log"]["offset"].is_u64());
    }
}

// A line too large for any request: refused alone with a 413, it goes to the dead-letter
// index, where its larger dead-letter document must be truncated to fit the same limit.
#[test]
fn a_line_too_large_for_any_request_is_dead_lettered_truncated() {
    let (_, docs, dead, _) = run("too-large-line", Fault::TooLarge(5 << 10), 5, 6_000);
    assert_eq!(dead, docs.len(), "no line fits a request");
    for d in &docs {
        assert_eq!(d["error"]["code"], "413", "{d}");
        assert_eq!(d["sluice"]["original_truncated"], true, "{d}");
        assert!(d["sluice"]["original_bytes"].as_u64().unwrap() > 6_000);
    }
}

// The checkpoint passes a batch only once its dead letters are written: killed while the
// dead-letter index is unavailable, the agent writes them after its restart.
#[test]
fn a_batch_waits_for_its_dead_letters_even_across_a_crash() {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    let node = Node::new();
    let index = unique("dl-crash");
    let config = config(&node, &index, &proxy);
    let expected = write_conflicts(&node, 100, 0);
    let total = expected.len() as u64;
    proxy.set(Fault::UnavailableIndex {
        index_suffix: DLQ.into(),
    });
    let agent = Agent::start(&config);
    // One shape wins: its lines arrive, their batches wait for the dead-letter index.
    let target = format!("{index}-2026.11.24");
    let in_target = es.wait_count(&target, total / 2, WAIT);
    assert_eq!(in_target, total / 2, "{}", agent.log_text());
    // Several checkpoint intervals (1 s) pass while the dead letters are refused.
    std::thread::sleep(Duration::from_secs(3));
    let m = agent.metrics();
    assert!(
        counter(&m, "sluice_events_delivered_total") < total as f64,
        "batches acknowledged before their dead letters were written: {}",
        bulk(&m)
    );
    assert!(counter(&m, "sluice_bulk_requests_total{outcome=\"retry\"}") > 0.0);
    assert_eq!(es.count(&format!("{index}-*{DLQ}")), 0);
    assert!(proxy.stats().faulted_requests > 0);
    agent.kill();

    proxy.set(Fault::Pass);
    let agent = Agent::start(&config);
    let got = es.wait_count(&format!("{index}-*"), total, WAIT);
    assert_eq!(got, total, "after the restart; log:\n{}", agent.log_text());
    let log = agent.log_text();
    agent.stop();
    let (docs, dead) = each_id_once(&es, &index, total, &log);
    assert_eq!(dead as u64, total / 2, "one shape's lines, dead-lettered");
    let seen = messages(&docs);
    assert!(seen.values().all(|&c| c == 1), "duplicates");
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn a_400_from_the_dead_letter_index_is_counted_as_lost() {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    let node = Node::new();
    let index = unique("dl-strict");
    // A strict mapping on the dead-letter indices that knows none of the dead-letter fields:
    // every dead-letter document is refused with a 400 (strict_dynamic_mapping_exception).
    let template = serde_json::json!({
        "index_patterns": [format!("{index}-*{DLQ}")],
        "priority": 500,
        "template": {"mappings": {"dynamic": "strict", "properties": {"x": {"type": "keyword"}}}}
    });
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/_index_template/{index}-dlq", es.url))
        .header("content-type", "application/json")
        .body(template.to_string())
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    let config = config(&node, &index, &proxy);
    let expected = write_conflicts(&node, 50, 0);
    let agent = Agent::start(&config);

    // The winners arrive; the losers are counted lost, each once; every batch is acknowledged.
    let metrics = settled(&agent, expected.len() as u64);
    let in_target = es.count(&format!("{index}-2026.11.24"));
    let log = agent.log_text();
    agent.stop();
    let failed = items(&metrics, "dead_letter_failed");
    eprintln!(
        "scenario strict-dlq: {} lines, {in_target} in the target\n{}",
        expected.len(),
        bulk(&metrics)
    );
    assert!(failed > 0.0, "{}\n{log}", bulk(&metrics));
    assert_eq!(
        failed + in_target as f64,
        expected.len() as f64,
        "every line is in the target or counted lost, once"
    );
    assert_eq!(items(&metrics, "dead_lettered"), 0.0);
    assert_eq!(
        counter(&metrics, "sluice_events_delivered_total"),
        expected.len() as f64
    );
    assert_eq!(es.count(&format!("{index}-*{DLQ}")), 0);
    assert!(
        log.contains("the dead-letter index refused a document; it is lost"),
        "{log}"
    );
}
