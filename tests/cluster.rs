//! A three-node Elasticsearch cluster (started by this test with `scripts/elasticsearch
//! --nodes 3`, all three nodes in the agent's endpoint list) loses a node mid-stream to SIGKILL:
//! nothing lost, nothing duplicated.

#[path = "support/endpoints.rs"]
mod endpoints;
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use endpoints::config_full;
use support::{Agent, Node, messages, ts, unique};

/// The instance name; `SLUICE_TEST_3N_INSTANCE` overrides it (to reuse a running cluster).
const ENDPOINTS: &str = "sluice_elasticsearch_endpoints";
const HEALTHY: &str = "sluice_elasticsearch_endpoints_healthy";

fn instance() -> String {
    std::env::var("SLUICE_TEST_3N_INSTANCE").unwrap_or_else(|_| "sluice-test-3n".to_string())
}

fn script(args: &[&str]) -> String {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/elasticsearch"
    ))
    .args(args)
    .args(["--instance", &instance()])
    .stderr(std::process::Stdio::inherit())
    .output()
    .expect("run scripts/elasticsearch");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "scripts/elasticsearch {args:?} failed ({}): {stdout}",
        out.status
    );
    stdout.lines().last().unwrap_or("").trim().to_string()
}

/// Stops the whole instance, also when the test fails.
struct Cluster;

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/elasticsearch"
        ))
        .args(["stop", "--instance", &instance()])
        .output();
    }
}

#[test]
fn losing_a_node_mid_stream_loses_and_duplicates_nothing() {
    let urls: Vec<String> = script(&["start", "--nodes", "3"])
        .split(',')
        .map(str::to_string)
        .collect();
    let _cluster = Cluster;
    assert_eq!(urls.len(), 3, "three node URLs: {urls:?}");
    // The queries go to node 1, which stays up; node 2 is killed.
    // SAFETY: this test binary holds this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("SLUICE_ES_URL", &urls[0]) };
    let es = support::Es::new();

    let node = Node::new();
    let index = unique("three-nodes");
    let pattern = format!("{index}-*");
    let config = config_full(&node, &format!("{index}-%Y.%m.%d"), &urls, "", "");
    support::serve_metrics(&config);
    let pods: Vec<_> = (0..4)
        .map(|p| node.add_pod("shop", &format!("web-{p}"), "app", p % 2 == 1))
        .collect();
    let per_pod = 1500u64;
    let writer = {
        let pods = pods.clone();
        std::thread::spawn(move || {
            let mut expected = BTreeSet::new();
            for i in 0..per_pod {
                for (p, pod) in pods.iter().enumerate() {
                    let m = format!("pod={p} seq={i}");
                    pod.line(&ts(i), "stdout", &m);
                    expected.insert(m);
                }
                // About 12 s of writing: the kill lands while the stream goes on.
                if i % 25 == 24 {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            expected
        })
    };
    let agent = Agent::start(&config);
    let n = per_pod * pods.len() as u64;
    // Kill node 2 once a good part has arrived and the writer is still going.
    let got = es.wait_count(&pattern, n / 4, Duration::from_secs(120));
    assert!(
        got >= n / 4,
        "the stream did not start; log:\n{}",
        agent.log_text()
    );
    // The scenario is a cluster *with replicas* losing a node: wait until the new index's
    // replica is started, or the kill may take the only active copy of a shard with it.
    let health = es.get(&format!(
        "_cluster/health/{pattern}?wait_for_status=green&timeout=120s"
    ));
    assert_eq!(health["status"], "green", "replicas not started: {health}");
    let before = agent.metrics();
    assert_eq!(before.get(ENDPOINTS), 3.0);
    assert_eq!(
        before.get(HEALTHY),
        3.0,
        "before the kill; log:\n{}",
        agent.log_text()
    );
    let at_kill = es.count(&pattern);
    let t = Instant::now();
    script(&["stop-node", "--node", "2", "--kill"]);
    let expected = writer.join().unwrap();
    assert_eq!(expected.len() as u64, n);
    let got = es.wait_count(&pattern, n, Duration::from_secs(240));
    assert_eq!(
        got,
        n,
        "documents after losing a node; agent log:\n{}",
        agent.log_text()
    );
    let recovered = t.elapsed();
    let log = agent.log_text();
    let after = agent.metrics();
    agent.stop();
    // One page (n < index.max_result_window): paging with search_after on `_doc` can repeat
    // or skip documents while shard copies move after a node loss.
    es.count(&pattern); // refreshes
    let page = es.post(
        &format!("{pattern}/_search"),
        &serde_json::json!({"size": 10000, "track_total_hits": true}),
    );
    assert_eq!(
        page["hits"]["total"]["value"], n,
        "{}",
        page["hits"]["total"]
    );
    let docs: Vec<serde_json::Value> = page["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_source"].clone())
        .collect();
    let seen = messages(&docs);
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    // Round-robin over three nodes: three or more requests after the kill must meet node 2.
    let batch_events = 500;
    assert!(
        n - at_kill < 3 * batch_events || log.contains("endpoint unhealthy"),
        "the lost node was marked unhealthy:\n{log}"
    );
    // Node 2 stays dead, so once marked unhealthy it stays so (its probes fail).
    let marked = log.contains("endpoint unhealthy");
    assert_eq!(
        after.get(HEALTHY),
        if marked { 2.0 } else { 3.0 },
        "healthy endpoints after the kill (marked unhealthy in the log: {marked})"
    );
    eprintln!(
        "scenario three-nodes-kill-one: {n} lines written, {} documents found; {at_kill} were in \
         when node 2 was killed; all in {:.1} s after the kill",
        docs.len(),
        recovered.as_secs_f64()
    );
}
