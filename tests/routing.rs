//! Routing against the real servers: `elasticsearch.index` with field references, filled from a
//! real kube-apiserver (namespace, namespace labels, pod labels, the `sluice.io/dataset`
//! annotation), shipped to the real Elasticsearch. Lines of two namespaces land in two sets of
//! indices, every routed index gets sluice's template, a hostile dataset annotation stays
//! inside its own namespace's prefix, and a label change does not move a file's lines, not even
//! across a crash.

#[path = "support/kube.rs"]
mod kube;
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use kube::{Kube, add_pod_log};
use support::{Agent, Es, Node, ts, unique};

const WAIT: Duration = Duration::from_secs(120);
/// `Node::config` names the node `test-node`.
const NODE: &str = "test-node";

/// `{index: count}` for the indices matching `pattern`.
fn indices(es: &Es, pattern: &str) -> Vec<(String, u64)> {
    // Refreshes the indices first.
    let _ = es.count(pattern);
    let cat = es.get(&format!(
        "_cat/indices/{pattern}?format=json&h=index,docs.count"
    ));
    let mut out: Vec<(String, u64)> = cat
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    let n = i["docs.count"].as_str().unwrap_or("0").parse().unwrap_or(0);
                    (i["index"].as_str().unwrap_or_default().to_string(), n)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn wait_docs(es: &Es, pattern: &str, n: u64) -> Vec<Value> {
    let got = es.wait_count(pattern, n, WAIT);
    assert_eq!(got, n, "documents in {pattern}: {:?}", indices(es, pattern));
    es.all_docs(pattern)
}

#[test]
fn lines_are_routed_by_namespace_labels_and_dataset_and_contained() {
    let es = Es::new();
    let k = Kube::start("route-kube");
    let prefix = unique("route");
    let (ns_a, ns_b) = (unique("ra"), unique("rb"));
    k.namespace(&ns_a, json!({"tenant": "Acme"}));
    k.namespace(&ns_b, json!({}));
    let node = Node::new();
    let pattern = format!(
        "{prefix}-{{kubernetes.namespace_labels.tenant|shared}}-{{kubernetes.namespace}}-{{sluice.dataset|default}}-{{kubernetes.labels.app|none}}-%Y.%m.%d"
    );
    let config = node.config(&pattern, &k.agent_config(""));
    // The dead-letter index cannot use the dataset (documents do not carry it).
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("dead_letter_index: \"{pattern}-dlq\""),
        &format!("dead_letter_index: \"{prefix}-dlq-{{kubernetes.namespace}}-%Y.%m.%d\""),
    );
    std::fs::write(&config, text).unwrap();
    support::serve_metrics(&config);
    let agent = Agent::start(&config);

    let hostile_x = format!("x-{ns_b}");
    let pods = [
        (&ns_a, "a-web", json!({"labels": {"app": "web"}})),
        (
            &ns_a,
            "a-evil",
            json!({"annotations": {"sluice.io/dataset": hostile_x}}),
        ),
        (
            &ns_a,
            "a-dots",
            json!({"annotations": {"sluice.io/dataset": "../*"}}),
        ),
        (
            &ns_b,
            "b-web",
            json!({"labels": {"app": "web"}, "annotations": {"sluice.io/dataset": "Nginx"}}),
        ),
    ];
    let mut logs = Vec::new();
    for (ns, name, md) in &pods {
        let uid = k.pod(ns, name, NODE, &["app"], md.clone());
        let log = add_pod_log(&node, ns, name, &uid, "app");
        log.line(&ts(1), "stdout", &format!("hello from {name}"));
        logs.push(log);
    }
    let all = wait_docs(&es, &format!("{prefix}-*"), 4);

    // Each pod's line sits in the index its namespace, labels and dataset name.
    let under = |ns: &str| ns.replace('-', "_");
    let day = "2026.11.24";
    let want = [
        ("a-web", format!("{prefix}-acme-{ns_a}-default-web-{day}")),
        (
            "a-evil",
            format!("{prefix}-acme-{ns_a}-x_{}-none-{day}", under(&ns_b)),
        ),
        ("a-dots", format!("{prefix}-acme-{ns_a}-..__-none-{day}")),
        ("b-web", format!("{prefix}-shared-{ns_b}-nginx-web-{day}")),
    ];
    let found = indices(&es, &format!("{prefix}-*"));
    for (pod, index) in &want {
        assert_eq!(es.count(index), 1, "{pod} → {index}; indices: {found:?}");
        let doc = &es.all_docs(index)[0];
        assert_eq!(doc["message"], format!("hello from {pod}"));
    }
    assert_eq!(found.len(), 4, "{found:?}");

    // Containment: nothing of namespace A is reachable through B's prefix, whatever its
    // annotation says, and A's prefix holds A's lines only.
    let b_docs = es.all_docs(&format!("{prefix}-*-{ns_b}-*"));
    assert_eq!(b_docs.len(), 1, "{found:?}");
    assert!(
        b_docs
            .iter()
            .all(|d| d["kubernetes"]["namespace"] == ns_b.as_str())
    );
    let a_docs = es.all_docs(&format!("{prefix}-acme-{ns_a}-*"));
    assert_eq!(a_docs.len(), 3);
    assert!(
        a_docs
            .iter()
            .all(|d| d["kubernetes"]["namespace"] == ns_a.as_str())
    );
    assert_eq!(all.len(), 4);

    // sluice's template (not dynamic mapping) made every routed index: `@timestamp` is
    // `date_nanos` and the namespace a keyword.
    for (_, index) in &want {
        let m = es.get(&format!("{index}/_mapping"));
        let props = &m[index]["mappings"]["properties"];
        assert_eq!(props["@timestamp"]["type"], "date_nanos", "{index}: {m}");
        assert_eq!(
            props["kubernetes"]["properties"]["namespace"]["type"], "keyword",
            "{index}"
        );
    }

    // A label change re-renders the pod's metadata (the documents show it) but never moves
    // the file's lines: they stay in the index the file started with.
    k.pod(
        &ns_a,
        "a-web",
        NODE,
        &["app"],
        json!({"labels": {"app": "api"}}),
    );
    let first = format!("{prefix}-acme-{ns_a}-default-web-{day}");
    let deadline = Instant::now() + WAIT;
    let mut n = 2;
    loop {
        logs[0].line(&ts(n), "stdout", &format!("after relabel {n}"));
        n += 1;
        std::thread::sleep(Duration::from_millis(500));
        let relabelled = es
            .all_docs(&first)
            .iter()
            .any(|d| d["kubernetes"]["labels"]["app"] == "api");
        if relabelled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no relabelled document in {first}: {:?}",
            indices(&es, &format!("{prefix}-*"))
        );
    }
    let total = 4 + (n - 2);
    wait_docs(&es, &format!("{prefix}-*"), total);
    assert_eq!(es.count(&first), 1 + (n - 2));
    assert!(
        indices(&es, &format!("{prefix}-*-api-*")).is_empty(),
        "a relabelled pod's file moved index"
    );

    let metrics = agent.metrics();
    assert_eq!(metrics.get("sluice_indices_written"), 4.0);

    // Nor does a crash: killed, lines written while it is down, started again with the label
    // still changed, the file's index comes from the checkpoint (not from today's labels), so
    // the rest of the file and any replay of what was not acknowledged go where the file's
    // lines are, each once.
    agent.kill();
    for i in 0..5 {
        logs[0].line(&ts(n + i), "stdout", &format!("while down {i}"));
    }
    let agent = Agent::start(&config);
    wait_docs(&es, &format!("{prefix}-*"), total + 5);
    let log = agent.log_text();
    assert_eq!(es.count(&first), 1 + (n - 2) + 5, "log:\n{log}");
    assert!(
        indices(&es, &format!("{prefix}-*-api-*")).is_empty(),
        "a restart moved a relabelled pod's file to another index: {:?}",
        indices(&es, &format!("{prefix}-*"))
    );
    let down: Vec<String> = es
        .all_docs(&first)
        .iter()
        .filter_map(|d| d["message"].as_str().map(str::to_string))
        .filter(|m| m.starts_with("while down"))
        .collect();
    assert_eq!(down.len(), 5, "{down:?}");
    agent.stop();
    for ns in [&ns_a, &ns_b] {
        k.delete_pods(ns);
    }
}
