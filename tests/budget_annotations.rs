//! `sluice.io/rate-limit` read budgets from a real kube-apiserver, shipped to the real
//! Elasticsearch: a namespace's annotation (cluster admins set it) throttles all of its pods
//! together, a pod's annotation may only lower its namespace's budget, and a malformed one is
//! warned about, counted and ignored. Throttled lines are read later, each exactly once. When a
//! line was stored is what the fault proxy saw Elasticsearch acknowledge.

#[path = "support/kube.rs"]
mod kube;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use kube::{Kube, add_pod_log};
use proxy::Proxy;
use support::{Agent, Es, Node, PodLog, serve_metrics, ts, unique};

const WAIT: Duration = Duration::from_secs(180);
/// `Node::config` names the node `test-node`.
const NODE: &str = "test-node";
const ANNOTATION: &str = "sluice.io/rate-limit";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn namespace_annotated(k: &Kube, name: &str, annotations: Value) {
    k.apply(
        &format!("/api/v1/namespaces/{name}"),
        &json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "annotations": annotations}}),
    );
}

/// `n` lines of about 1 KiB, tagged, in one append; returns their messages.
fn backlog(log: &PodLog, tag: &str, n: usize) -> BTreeSet<String> {
    let mut raw = Vec::new();
    let mut out = BTreeSet::new();
    for i in 0..n {
        let m = format!("{tag} seq={i} {}", "x".repeat(1000));
        raw.extend(log.record(&ts(i as u64), "stdout", &m, false));
        out.insert(m);
    }
    log.append_raw(&raw);
    out
}

/// Three namespaces, their pods' backlogs written before the agent starts: `slow` has a
/// namespace budget of 32 KiB/s shared by its two pods (one of which asks for 10 MiB/s, above
/// its namespace's: ignored); `bad` has a malformed budget (ignored: read at full speed); in
/// `open`, without a namespace budget, one pod lowers its own to 16 KiB/s.
#[test]
fn namespace_and_pod_annotations_throttle_and_a_malformed_one_is_ignored() {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    proxy.record_acks();
    let k = Kube::start("sluice-kube");
    let (slow, bad, open) = (unique("rl-slow"), unique("rl-bad"), unique("rl-open"));
    namespace_annotated(&k, &slow, json!({ANNOTATION: "32KiB"}));
    namespace_annotated(&k, &bad, json!({ANNOTATION: "fast"}));
    k.namespace(&open, json!({}));
    let node = Node::new();
    let pod = |ns: &str, name: &str, annotations: Value| {
        let uid = k.pod(
            ns,
            name,
            NODE,
            &["app"],
            json!({ "annotations": annotations }),
        );
        add_pod_log(&node, ns, name, &uid, "app")
    };
    let storm = pod(&slow, "storm", json!({}));
    let greedy = pod(&slow, "greedy", json!({ANNOTATION: "10MiB"}));
    let careless = pod(&bad, "storm", json!({}));
    let lowered = pod(&open, "lowered", json!({ANNOTATION: "16KiB"}));
    let mut expected = backlog(&storm, "slow-storm", 200);
    expected.extend(backlog(&greedy, "slow-greedy", 200));
    expected.extend(backlog(&careless, "bad-storm", 300));
    expected.extend(backlog(&lowered, "open-lowered", 150));

    let index = unique("rl");
    let config = node.config_for(&proxy.url, &index, &k.agent_config(""));
    serve_metrics(&config);
    let start = now_ms();
    let agent = Agent::start(&config);
    let got = es.wait_count(&index, expected.len() as u64, WAIT);
    let metrics = agent.metrics();
    let log = agent.log_text();
    agent.stop();
    for ns in [&slow, &bad, &open] {
        k.delete_pods(ns);
    }
    assert_eq!(got, expected.len() as u64, "documents; log:\n{log}");
    let seen = support::messages(&es.all_docs(&index));
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(3).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let stored: BTreeSet<String> = seen.into_keys().collect();
    assert!(
        stored == expected,
        "not every line stored once; log:\n{log}"
    );

    // When each backlog's last line was acknowledged, from the agent's start.
    let acks = proxy.acks();
    let done = |tag: &str| {
        acks.iter()
            .filter(|(m, _)| m.starts_with(tag))
            .map(|(_, t)| t - start)
            .max()
            .unwrap_or_else(|| panic!("no {tag} acknowledged"))
    };
    let throttled = |key: &str| {
        let sample = format!("sluice_read_throttled_seconds_total{{key=\"{key}\"}}");
        metrics.find(&sample)
    };
    let (slow_ms, open_ms, bad_ms) = (done("slow-"), done("open-lowered"), done("bad-storm"));
    eprintln!(
        "budgets: slow namespace done after {slow_ms} ms, open/lowered {open_ms} ms, bad {bad_ms} ms; throttled slow {:?} s, open/lowered {:?} s, bad {:?}",
        throttled(&slow),
        throttled(&format!("{open}/lowered")),
        throttled(&bad)
    );
    // 420 KiB for the namespace at 32 KiB/s after its 32 KiB burst: ~12 s, the greedy pod's
    // 10 MiB/s notwithstanding (alone, its 210 KiB would take a moment).
    assert!(
        slow_ms >= 10_500,
        "the namespace budget did not hold: {slow_ms} ms"
    );
    assert!(
        throttled(&slow).is_some_and(|s| s >= 6.0),
        "{}",
        metrics.show("sluice_read")
    );
    // 157 KiB at 16 KiB/s after a 16 KiB burst: ~9 s.
    assert!(
        open_ms >= 7_500,
        "the pod budget did not hold: {open_ms} ms"
    );
    assert!(
        throttled(&format!("{open}/lowered")).is_some_and(|s| s >= 4.0),
        "{}",
        metrics.show("sluice_read")
    );
    // The malformed budget is ignored (never throttled), warned about and counted once.
    assert_eq!(throttled(&bad), None, "{}", metrics.show("sluice_read"));
    assert_eq!(
        metrics.get("sluice_rate_limit_annotations_invalid_total"),
        1.0
    );
    assert!(
        log.contains("ignoring a malformed read budget annotation") && log.contains("fast"),
        "log:\n{log}"
    );
}
