//! Kubernetes metadata from a real kube-apiserver (`scripts/kube-apiserver`, one instance per
//! scenario that stops or restarts it): the agent runs with the `sluice` service account's token
//! and exactly the RBAC of `deploy/kubernetes/rbac.yaml`, so a missing permission fails here.
//! Pods are created bound to the test node (no scheduler or kubelet); the test writes their log
//! files at their real uid. Each agent serves `/metrics`, and the scenarios assert the
//! Kubernetes metrics they move (events without metadata, watch errors and re-lists, pods cached).

#[path = "support/kube.rs"]
mod kube;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use kube::{Kube, add_pod_log};
use support::{Agent, Es, Metrics, Node, ts, unique};

const WAIT: Duration = Duration::from_secs(120);
/// `Node::config` names the node `test-node`.
const NODE: &str = "test-node";
/// The watched resources (the `resource` label).
const RESOURCES: [&str; 2] = ["pods", "namespaces"];
const WITHOUT_METADATA: &str = "sluice_events_without_metadata_total";
const PODS_CACHED: &str = "sluice_kubernetes_pods_cached";

fn watch_errors(resource: &str) -> String {
    format!("sluice_kubernetes_watch_errors_total{{resource=\"{resource}\"}}")
}

fn watch_restarts(resource: &str) -> String {
    format!("sluice_kubernetes_watch_restarts_total{{resource=\"{resource}\"}}")
}

/// Starts the agent with `/metrics` on.
fn start(node: &Node, index: &str, k: &Kube, extra: &str) -> Agent {
    let config = node.config(index, &k.agent_config(extra));
    support::serve_metrics(&config);
    Agent::start(&config)
}

/// Scrapes until `ok` holds (bounded by `WAIT`); fails showing the Kubernetes metrics.
fn metrics_until(agent: &Agent, what: &str, ok: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = agent.metrics();
        if ok(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "not within {WAIT:?}: {what}\n{}{}",
            m.show("sluice_kubernetes"),
            m.show("sluice_events")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits (bounded) until every event the agent encoded is acknowledged and in `index`; returns
/// those documents and the metrics of that moment, which then describe exactly them.
fn settled(es: &Es, index: &str, agent: &Agent) -> (Vec<Value>, Metrics) {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = agent.metrics();
        let encoded = m.get("sluice_events_encoded_total");
        let docs = docs(es, index);
        if m.get("sluice_events_delivered_total") == encoded && docs.len() as f64 == encoded {
            return (docs, m);
        }
        assert!(
            Instant::now() < deadline,
            "{} documents in {index}, {}",
            docs.len(),
            m.show("sluice_events")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Documents without the pod's labels: shipped with path metadata only (every pod in these
/// tests has labels).
fn without_labels(docs: &[Value]) -> usize {
    docs.iter()
        .filter(|d| d["kubernetes"].get("labels").is_none())
        .count()
}

/// All documents of `index`; none while the index does not exist yet.
fn docs(es: &Es, index: &str) -> Vec<Value> {
    if es.count(index) == 0 {
        return Vec::new();
    }
    es.all_docs(index)
}

fn by_message(docs: &[Value]) -> BTreeMap<String, Value> {
    docs.iter()
        .map(|d| {
            (
                d["message"].as_str().unwrap_or_default().to_string(),
                d.clone(),
            )
        })
        .collect()
}

/// Writes a line every 500 ms until a document for it satisfies `ok` (bounded by `WAIT`);
/// returns how many lines were written.
fn until_enriched(
    es: &Es,
    index: &str,
    log: &support::PodLog,
    tag: &str,
    ok: impl Fn(&Value) -> bool,
) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    loop {
        log.line(&ts(n as u64), "stdout", &format!("{tag}-{n}"));
        n += 1;
        std::thread::sleep(Duration::from_millis(500));
        if docs(es, index)
            .iter()
            .any(|d| d["message"].as_str().is_some_and(|m| m.starts_with(tag)) && ok(d))
        {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "no enriched `{tag}` document within {WAIT:?}"
        );
    }
}

#[test]
fn labels_allowed_annotations_namespace_labels_and_workloads_are_enriched() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("enrich");
    k.namespace(&ns, json!({"team": "shop", "env.tier": "prod"}));
    let owner = |kind: &str, name: &str| {
        json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name,
            "uid": "00000000-0000-4000-8000-000000000001", "controller": true}]})
    };
    let mut web = owner("ReplicaSet", "web-7d4b9c6f8");
    web["labels"] = json!({"app.kubernetes.io/name": "web", "pod-template-hash": "7d4b9c6f8"});
    web["annotations"] = json!({"team.example.com/owner": "alice", "secret.example.com/x": "no"});
    let pods = [
        ("web-7d4b9c6f8-x2k9p", web),
        ("db-0", owner("StatefulSet", "db")),
        ("agent-abcde", owner("DaemonSet", "agent")),
        ("migrate-q7w8e", owner("Job", "migrate")),
        ("nightly-29012345-z9x8c", owner("Job", "nightly-29012345")),
    ];
    let node = Node::new();
    let index = unique("kube-enrich");
    let agent = start(
        &node,
        &index,
        &k,
        "  annotation_allowlist: [\"team.example.com/*\"]\n",
    );
    for (name, md) in &pods {
        let uid = k.pod(&ns, name, NODE, &["app"], md.clone());
        let log = add_pod_log(&node, &ns, name, &uid, "app");
        log.line(&ts(1), "stdout", &format!("hello from {name}"));
    }
    assert_eq!(es.wait_count(&index, 5, WAIT), 5);
    let docs = by_message(&es.all_docs(&index));
    let metrics = agent.metrics();
    agent.stop();
    k.delete_pods(&ns);
    assert_eq!(
        metrics.get(WITHOUT_METADATA),
        0.0,
        "every event was enriched"
    );

    let web = &docs["hello from web-7d4b9c6f8-x2k9p"]["kubernetes"];
    assert_eq!(web["labels"]["app_kubernetes_io/name"], "web");
    assert_eq!(web["annotations"]["team_example_com/owner"], "alice");
    assert!(
        web["annotations"].get("secret_example_com/x").is_none(),
        "{web}"
    );
    assert_eq!(web["namespace_labels"]["team"], "shop");
    assert_eq!(web["namespace_labels"]["env_tier"], "prod");
    assert_eq!(web["deployment"]["name"], "web");
    assert!(web["pod"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert_eq!(
        docs["hello from web-7d4b9c6f8-x2k9p"]["container"]["image"]["name"],
        "registry.example/app:1.0"
    );
    assert_eq!(
        docs["hello from db-0"]["kubernetes"]["statefulset"]["name"],
        "db"
    );
    assert_eq!(
        docs["hello from agent-abcde"]["kubernetes"]["daemonset"]["name"],
        "agent"
    );
    assert_eq!(
        docs["hello from migrate-q7w8e"]["kubernetes"]["job"]["name"],
        "migrate"
    );
    assert!(
        docs["hello from migrate-q7w8e"]["kubernetes"]
            .get("cronjob")
            .is_none()
    );
    let cron = &docs["hello from nightly-29012345-z9x8c"]["kubernetes"];
    assert_eq!(cron["cronjob"]["name"], "nightly");
    assert_eq!(cron["job"]["name"], "nightly-29012345");
}

#[test]
fn a_deleted_pods_late_lines_are_still_enriched() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("deleted");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-deleted");
    let agent = start(&node, &index, &k, "");
    // A live pod proves the agent has listed; the other is deleted before its file shows up.
    let live_uid = k.pod(&ns, "live", NODE, &["app"], json!({"labels": {"v": "1"}}));
    let live = add_pod_log(&node, &ns, "live", &live_uid, "app");
    let uid = k.pod(&ns, "gone", NODE, &["app"], json!({"labels": {"v": "2"}}));
    until_enriched(&es, &index, &live, "live", |d| {
        d["kubernetes"]["labels"]["v"] == "1"
    });
    k.delete_pod(&ns, "gone");
    std::thread::sleep(Duration::from_secs(2));
    let gone = add_pod_log(&node, &ns, "gone", &uid, "app");
    gone.line(&ts(5), "stdout", "last words");
    let deadline = Instant::now() + WAIT;
    let doc = loop {
        if let Some(d) = by_message(&docs(&es, &index)).remove("last words") {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted pod's line never arrived"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let metrics = agent.metrics();
    agent.stop();
    k.delete_pods(&ns);
    assert_eq!(doc["kubernetes"]["labels"]["v"], "2", "{doc}");
    assert_eq!(
        metrics.get(WITHOUT_METADATA),
        0.0,
        "a deleted pod's lines within its grace period have its metadata"
    );
}

#[test]
fn exclusion_and_parser_annotations_apply_per_pod_and_container() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("annot");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-annot");
    let agent = start(&node, &index, &k, "");
    let quiet = k.pod(
        &ns,
        "quiet",
        NODE,
        &["app"],
        json!({"annotations": {"sluice.io/exclude": "true"}}),
    );
    let mixed = k.pod(
        &ns,
        "mixed",
        NODE,
        &["app", "sidecar", "raw"],
        json!({"annotations": {"sluice.io/exclude-containers": "sidecar",
                               "sluice.io/parser-raw": "text"}}),
    );
    let quiet_log = add_pod_log(&node, &ns, "quiet", &quiet, "app");
    let app = add_pod_log(&node, &ns, "mixed", &mixed, "app");
    let sidecar = add_pod_log(&node, &ns, "mixed", &mixed, "sidecar");
    let raw = add_pod_log(&node, &ns, "mixed", &mixed, "raw");
    for i in 0..10 {
        quiet_log.line(&ts(i), "stdout", &format!("quiet {i}"));
        sidecar.line(&ts(i), "stdout", &format!("sidecar {i}"));
    }
    app.line(&ts(20), "stdout", r#"{"msg":"parsed","user":"u1"}"#);
    raw.line(&ts(21), "stdout", r#"{"msg":"kept raw","user":"u2"}"#);
    assert_eq!(es.wait_count(&index, 2, WAIT), 2);
    // Let the excluded lines, written first, have every chance to show up.
    std::thread::sleep(Duration::from_secs(2));
    let docs = es.all_docs(&index);
    agent.stop();
    k.delete_pods(&ns);
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let by = by_message(&docs);
    assert_eq!(by["parsed"]["json"]["user"], "u1");
    let raw_doc = &by[r#"{"msg":"kept raw","user":"u2"}"#];
    assert!(raw_doc.get("json").is_none(), "{raw_doc}");
}

/// `sluice.io/multiline` picks a file's multiline rules over the node's (`[java]` here): `none`
/// keeps a trace's lines apart, a preset groups its own traces, a container's annotation wins
/// over the pod's, and a value naming no preset leaves the node's rules (and is logged).
#[test]
fn multiline_annotations_choose_a_files_rules() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("multi");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-multi");
    let agent = start(
        &node,
        &index,
        &k,
        "parse:\n  multiline:\n    parsers: [java]\n    timeout: 500ms\n",
    );
    let plain = k.pod(
        &ns,
        "plain",
        NODE,
        &["app"],
        json!({"annotations": {"sluice.io/multiline": "none"}}),
    );
    let py = k.pod(
        &ns,
        "py",
        NODE,
        &["app"],
        json!({"annotations": {"sluice.io/multiline": "python"}}),
    );
    let mixed = k.pod(
        &ns,
        "mixed",
        NODE,
        &["app", "sidecar"],
        json!({"annotations": {"sluice.io/multiline": "cobol",
                               "sluice.io/multiline-sidecar": " None "}}),
    );
    let java = [
        "Exception in thread \"main\" java.lang.IllegalStateException: boom",
        "\tat com.example.App.run(App.java:12)",
        "\tat com.example.App.main(App.java:5)",
    ];
    let python = [
        "Traceback (most recent call last):",
        "  File \"/app/main.py\", line 3, in <module>",
        "ValueError: boom",
    ];
    let logs = [
        (add_pod_log(&node, &ns, "plain", &plain, "app"), &java),
        (add_pod_log(&node, &ns, "py", &py, "app"), &python),
        (add_pod_log(&node, &ns, "mixed", &mixed, "app"), &java),
        (add_pod_log(&node, &ns, "mixed", &mixed, "sidecar"), &java),
    ];
    for (log, lines) in &logs {
        for (i, l) in lines.iter().enumerate() {
            log.line(&ts(i as u64), "stdout", l);
        }
    }
    // plain: 3 lines; py: 1 trace; mixed/app: the node's java rules, 1 trace; sidecar: 3 lines.
    let (docs, _) = {
        es.wait_count(&index, 8, WAIT);
        settled(&es, &index, &agent)
    };
    let log = agent.log_text();
    agent.stop();
    k.delete_pods(&ns);
    let per_pod = |pod: &str, container: &str| -> Vec<String> {
        let mut v: Vec<String> = docs
            .iter()
            .filter(|d| {
                d["kubernetes"]["pod"]["name"] == pod
                    && d["kubernetes"]["container"]["name"] == container
            })
            .map(|d| d["message"].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(per_pod("plain", "app").len(), 3, "{docs:#?}");
    assert_eq!(per_pod("py", "app"), vec![python.join("\n")], "{docs:#?}");
    assert_eq!(per_pod("mixed", "app"), vec![java.join("\n")], "{docs:#?}");
    assert_eq!(per_pod("mixed", "sidecar").len(), 3, "{docs:#?}");
    assert_eq!(docs.len(), 8);
    assert!(
        log.contains("ignoring the pod's multiline annotation") && log.contains("cobol"),
        "the refused annotation is logged: {log}"
    );
}

#[test]
fn api_server_down_at_start_ships_path_metadata_then_enriches() {
    let es = Es::new();
    let k = Kube::start("sluice-kube-down");
    let ns = unique("down");
    k.namespace(&ns, json!({}));
    let uid = k.pod(&ns, "p", NODE, &["app"], json!({"labels": {"app": "p"}}));
    k.script("stop-apiserver");
    let node = Node::new();
    let index = unique("kube-down");
    let agent = start(&node, &index, &k, "  metadata_wait: 1s\n");
    let log = add_pod_log(&node, &ns, "p", &uid, "app");
    for i in 0..5 {
        log.line(&ts(i), "stdout", &format!("early {i}"));
    }
    // Shipped although the API server is unreachable, with what the path tells: after
    // `metadata_wait`, since the failed list is not waited for (a pending one would be, 30 s).
    assert_eq!(es.wait_count(&index, 5, Duration::from_secs(20)), 5);
    for d in es.all_docs(&index) {
        assert_eq!(d["kubernetes"]["pod"]["name"], "p");
        assert_eq!(d["kubernetes"]["pod"]["uid"], uid.as_str());
        assert!(d["kubernetes"].get("labels").is_none(), "{d}");
    }
    let down = metrics_until(&agent, "watch errors for both resources", |m| {
        RESOURCES.iter().all(|r| m.get(&watch_errors(r)) > 0.0)
    });
    assert_eq!(down.get(WITHOUT_METADATA), 5.0, "the five early events");
    for r in RESOURCES {
        assert_eq!(
            down.get(&watch_restarts(r)),
            0.0,
            "no list of {r} has completed: a failed list is an error, not a restart"
        );
    }
    assert_eq!(down.get(PODS_CACHED), 0.0);

    k.script("start-apiserver");
    until_enriched(&es, &index, &log, "later", |d| {
        d["kubernetes"]["labels"]["app"] == "p"
    });
    let on_node = k.pods_on_node(NODE);
    metrics_until(&agent, "one completed list each, every pod cached", |m| {
        RESOURCES.iter().all(|r| m.get(&watch_restarts(r)) == 1.0)
            && m.get(PODS_CACHED) == on_node as f64
    });
    // Counted exactly: one per document that went out without the pod's labels.
    let (docs, metrics) = settled(&es, &index, &agent);
    agent.stop();
    k.delete_pods(&ns);
    let unenriched = without_labels(&docs);
    assert!(unenriched >= 5, "{unenriched}");
    assert_eq!(metrics.get(WITHOUT_METADATA), unenriched as f64);
}

#[test]
fn an_api_server_restart_is_followed() {
    let es = Es::new();
    let k = Kube::start("sluice-kube-restart");
    let ns = unique("restart");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-restart");
    let agent = start(&node, &index, &k, "");
    let a_uid = k.pod(&ns, "a", NODE, &["app"], json!({"labels": {"v": "before"}}));
    let a = add_pod_log(&node, &ns, "a", &a_uid, "app");
    until_enriched(&es, &index, &a, "a1", |d| {
        d["kubernetes"]["labels"]["v"] == "before"
    });
    let before = metrics_until(&agent, "one completed list each", |m| {
        RESOURCES.iter().all(|r| m.get(&watch_restarts(r)) == 1.0)
    });
    for r in RESOURCES {
        assert_eq!(
            before.get(&watch_errors(r)),
            0.0,
            "{}",
            before.show("sluice_kubernetes")
        );
    }
    k.script("restart");
    // A pod created and a label changed after the restart reach the agent: the watch resumed.
    k.pod(&ns, "a", NODE, &["app"], json!({"labels": {"v": "after"}}));
    let b_uid = k.pod(&ns, "b", NODE, &["app"], json!({"labels": {"v": "new"}}));
    let b = add_pod_log(&node, &ns, "b", &b_uid, "app");
    until_enriched(&es, &index, &b, "b1", |d| {
        d["kubernetes"]["labels"]["v"] == "new"
    });
    until_enriched(&es, &index, &a, "a2", |d| {
        d["kubernetes"]["labels"]["v"] == "after"
    });
    // The restart broke both watches (errors) and the fresh watch cache refused their
    // resourceVersion (410), so both re-listed; the re-listed cache holds the node's pods.
    let on_node = k.pods_on_node(NODE);
    metrics_until(
        &agent,
        "watch errors and a re-list for both resources",
        |m| {
            RESOURCES.iter().all(|r| {
                m.get(&watch_errors(r)) > before.get(&watch_errors(r))
                    && m.get(&watch_restarts(r)) > before.get(&watch_restarts(r))
            }) && m.get(PODS_CACHED) == on_node as f64
        },
    );
    agent.stop();
    k.delete_pods(&ns);
}

/// `deleted_pod_grace` of the 110-pod test: long enough to see the deleted pods still cached
/// at the store's sweeps (every 5 s), short for the test.
const GRACE: Duration = Duration::from_secs(10);

/// 110 pods (the kubelet's default maximum) on the node, and the API requests the agent makes
/// for them over a minute, counted in the API server's audit log by the sluice user: a list and
/// a watch per resource, never a request per pod. All 110 are in the metadata cache, and after
/// their deletion they stay there for the grace period, then go.
#[test]
fn a_node_with_110_pods_costs_a_handful_of_api_requests() {
    let es = Es::new();
    let audit_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kube-audit");
    std::fs::create_dir_all(&audit_dir).unwrap();
    let policy = audit_dir.join("policy.yaml");
    let audit_log = audit_dir.join("audit.log");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  users: [\"system:serviceaccount:kube-system:sluice\"]\n\
         - level: None\n",
    )
    .unwrap();
    let args = format!(
        "--audit-policy-file={} --audit-log-path={} --audit-log-maxsize=100",
        policy.display(),
        audit_log.display()
    );
    let env = [("SLUICE_KUBE_APISERVER_ARGS", args.as_str())];
    let k = Kube::start_with("sluice-kube-audit", &env);
    // The instance may have been started earlier without the audit flags: restart the API
    // server with them (etcd and the data stay).
    kube::run_script("stop-apiserver", "sluice-kube-audit", &env);
    kube::run_script("start-apiserver", "sluice-kube-audit", &env);
    let ns = unique("many");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-many");
    let mut logs = Vec::new();
    for i in 0..110 {
        let name = format!("p{i}");
        let uid = k.pod(
            &ns,
            &name,
            NODE,
            &["app"],
            json!({"labels": {"n": i.to_string()}}),
        );
        logs.push(add_pod_log(&node, &ns, &name, &uid, "app"));
    }
    let audit_start = std::fs::metadata(&audit_log).map_or(0, |m| m.len());
    let started = Instant::now();
    let agent = start(
        &node,
        &index,
        &k,
        &format!("  deleted_pod_grace: {}s\n", GRACE.as_secs()),
    );
    for round in 0..3u64 {
        for (i, log) in logs.iter().enumerate() {
            log.line(&ts(round), "stdout", &format!("p{i} line {round}"));
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    assert_eq!(es.wait_count(&index, 330, WAIT), 330);
    let docs = es.all_docs(&index);
    let unenriched: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kubernetes"]["labels"]["n"].as_str().is_none())
        .collect();
    assert!(
        unenriched.is_empty(),
        "{} documents without labels: {:?}",
        unenriched.len(),
        unenriched.first()
    );
    // Every pod bound to the node (a failed earlier run may have left some) is cached.
    let on_node = k.pods_on_node(NODE);
    assert!(on_node >= 110, "{on_node}");
    metrics_until(&agent, &format!("{PODS_CACHED} == {on_node}"), |m| {
        m.get(PODS_CACHED) == on_node as f64
    });
    let remaining = Duration::from_secs(60).saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    let audit = std::fs::read(&audit_log).expect("audit log");
    let window = started.elapsed();

    // Deleted pods stay cached for deleted_pod_grace (their last lines are still enriched),
    // then leave the cache.
    let deleted = Instant::now();
    k.delete_pods(&ns);
    let left = k.pods_on_node(NODE);
    metrics_until(&agent, "the deleted pods leave the cache", |m| {
        m.get(PODS_CACHED) != on_node as f64
    });
    assert!(
        deleted.elapsed() >= GRACE,
        "deleted pods left the cache after {:?}, within deleted_pod_grace ({GRACE:?})",
        deleted.elapsed()
    );
    metrics_until(&agent, &format!("{PODS_CACHED} == {left}"), |m| {
        m.get(PODS_CACHED) == left as f64
    });
    agent.stop();

    let mut requests: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in audit[audit_start as usize..].split(|b| *b == b'\n') {
        let Ok(ev) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if ev["user"]["username"] != "system:serviceaccount:kube-system:sluice" {
            continue;
        }
        requests.insert(
            ev["auditID"].as_str().unwrap_or_default().to_string(),
            (
                ev["verb"].as_str().unwrap_or_default().to_string(),
                ev["objectRef"]["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
        );
    }
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for (verb, resource) in requests.values() {
        *by_kind.entry(format!("{verb} {resource}")).or_default() += 1;
    }
    eprintln!(
        "API requests by the sluice user for 110 pods over {:?}: {} {:?}",
        window,
        requests.len(),
        by_kind
    );
    assert!(
        !by_kind.keys().any(|k| k.starts_with("get ")),
        "no GET per pod: {by_kind:?}"
    );
    assert!(requests.len() <= 12, "{by_kind:?}");
    assert!(
        requests.len() >= 4,
        "the audit log should show the lists and watches: {by_kind:?}"
    );
}

/// A file whose pod the agent has not seen yet waits for it (up to `metadata_wait`) without
/// holding the other files, and ships enriched as soon as the pod's watch event arrives. The
/// pod is created unscheduled (its uid is known, the node's watch does not see it) and bound to
/// the node later, the way the scheduler does.
#[test]
fn a_file_waiting_for_its_pod_does_not_hold_the_others() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("wait");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-wait");
    let agent = start(&node, &index, &k, "  metadata_wait: 30s\n");
    let late_uid = k.pod(&ns, "late", "", &["app"], json!({"labels": {"p": "late"}}));
    let late = add_pod_log(&node, &ns, "late", &late_uid, "app");
    late.line(&ts(1), "stdout", "late line");
    let known_uid = k.pod(
        &ns,
        "known",
        NODE,
        &["app"],
        json!({"labels": {"p": "known"}}),
    );
    let known = add_pod_log(&node, &ns, "known", &known_uid, "app");
    known.line(&ts(2), "stdout", "known line");
    let t0 = Instant::now();
    assert_eq!(es.wait_count(&index, 1, Duration::from_secs(20)), 1);
    std::thread::sleep(Duration::from_secs(1));
    let first = docs(&es, &index);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["message"], "known line");
    assert_eq!(first[0]["kubernetes"]["labels"]["p"], "known");
    k.bind(&ns, "late", NODE);
    assert_eq!(es.wait_count(&index, 2, Duration::from_secs(25)), 2);
    assert!(
        t0.elapsed() < Duration::from_secs(28),
        "the late file went out by the wait's expiry, not by the pod's arrival"
    );
    let by = by_message(&docs(&es, &index));
    let metrics = agent.metrics();
    agent.stop();
    k.delete_pods(&ns);
    assert_eq!(by["late line"]["kubernetes"]["labels"]["p"], "late");
    assert_eq!(
        metrics.get(WITHOUT_METADATA),
        0.0,
        "waiting is not shipping without"
    );
}

/// After a restart with a backlog every file opens at once, before the agent's first pod list
/// has answered (on a large node or a loaded API server that takes seconds). While that list is
/// slow but not failing, files wait for it beyond `metadata_wait`, so the backlog ships
/// enriched rather than with path metadata. (A list that fails does not hold them: see
/// `api_server_down_at_start_ships_path_metadata_then_enriches`.)
#[test]
fn files_wait_for_a_slow_first_pod_list_beyond_metadata_wait() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("slowlist");
    k.namespace(&ns, json!({}));
    let uid = k.pod(&ns, "p", NODE, &["app"], json!({"labels": {"app": "p"}}));
    let node = Node::new();
    let log = add_pod_log(&node, &ns, "p", &uid, "app");
    for i in 0..5 {
        log.line(&ts(i), "stdout", &format!("backlog {i}"));
    }
    let gate = kube::Gate::closed(k.url());
    let index = unique("kube-slowlist");
    let config = node.config(
        &index,
        &k.agent_config_via(
            &gate.url,
            "  metadata_wait: 1s
",
        ),
    );
    support::serve_metrics(&config);
    let agent = Agent::start(&config);
    // Five times `metadata_wait` with the list held (not refused: no error to give up on).
    std::thread::sleep(Duration::from_secs(5));
    let held = agent.metrics();
    assert!(
        gate.connections() > 0,
        "the agent never called the API server"
    );
    assert_eq!(
        held.get(&watch_errors("pods")),
        0.0,
        "{}",
        held.show("sluice_kubernetes")
    );
    assert_eq!(
        held.get("sluice_events_encoded_total"),
        0.0,
        "the backlog went out before the first pod list answered:\n{}",
        held.show("sluice_events")
    );
    gate.release();
    assert_eq!(es.wait_count(&index, 5, WAIT), 5);
    let (docs, metrics) = settled(&es, &index, &agent);
    agent.stop();
    k.delete_pods(&ns);
    assert_eq!(without_labels(&docs), 0, "{docs:#?}");
    assert_eq!(metrics.get(WITHOUT_METADATA), 0.0);
    assert_eq!(metrics.get(&watch_restarts("pods")), 1.0);
}

/// A file whose pod never comes to this node (created, never scheduled here) waits
/// `metadata_wait`, then ships with what its path tells, and each of its events is counted in
/// `sluice_events_without_metadata_total`; the enriched file beside it counts nothing.
#[test]
fn a_file_whose_pod_never_comes_ships_after_metadata_wait_and_is_counted() {
    let es = Es::new();
    let k = Kube::start("sluice-kube");
    let ns = unique("never");
    k.namespace(&ns, json!({}));
    let node = Node::new();
    let index = unique("kube-never");
    let agent = start(&node, &index, &k, "  metadata_wait: 1s\n");
    // Listed first, so the known pod's file is enriched well within the 1 s.
    metrics_until(&agent, "the pod list", |m| {
        m.get(&watch_restarts("pods")) == 1.0
    });
    let known_uid = k.pod(
        &ns,
        "known",
        NODE,
        &["app"],
        json!({"labels": {"p": "known"}}),
    );
    let elsewhere_uid = k.pod(
        &ns,
        "elsewhere",
        "",
        &["app"],
        json!({"labels": {"p": "elsewhere"}}),
    );
    let known = add_pod_log(&node, &ns, "known", &known_uid, "app");
    let elsewhere = add_pod_log(&node, &ns, "elsewhere", &elsewhere_uid, "app");
    for i in 0..3 {
        known.line(&ts(i), "stdout", &format!("known {i}"));
        elsewhere.line(&ts(i), "stdout", &format!("elsewhere {i}"));
    }
    assert_eq!(es.wait_count(&index, 6, WAIT), 6);
    let (docs, metrics) = settled(&es, &index, &agent);
    agent.stop();
    k.delete_pods(&ns);
    let by = by_message(&docs);
    for i in 0..3 {
        assert_eq!(
            by[&format!("known {i}")]["kubernetes"]["labels"]["p"],
            "known"
        );
        let d = &by[&format!("elsewhere {i}")];
        assert!(d["kubernetes"].get("labels").is_none(), "{d}");
        assert_eq!(d["kubernetes"]["pod"]["uid"], elsewhere_uid.as_str());
    }
    assert_eq!(metrics.get(WITHOUT_METADATA), 3.0);
}
