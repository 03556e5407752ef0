//! `elasticsearch.compat: fluentd` against the real Elasticsearch: the agent's documents have
//! the Fluentd Kubernetes DaemonSet's shape field by field (`tests/fixtures/fluentd/`), land in
//! `logstash`-style daily indices with sluice's `_id`, and the template the agent installs maps
//! them as dynamic mapping mapped Fluentd's own documents, so the same saved searches,
//! `.keyword` aggregations and time field find old (Fluentd) and new (sluice) documents alike.

#[path = "support/kube.rs"]
mod kube;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, Es, Node, PodLog, ts, unique};

const WAIT: Duration = Duration::from_secs(120);
const DIGEST: &str = "0b7a5c9d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b";

/// The fixture with this run's values in place of its `{{…}}` marks.
fn fixture(name: &str, pod: &PodLog) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/fluentd/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // in_tail's tag: `/` → `.`, runs of `.` squeezed, no leading one.
    let mut dotted = String::new();
    for c in pod.link.to_string_lossy().replace('/', ".").chars() {
        if c != '.' || !(dotted.is_empty() || dotted.ends_with('.')) {
            dotted.push(c);
        }
    }
    let text = text
        .replace("{{container_id}}", &pod.container_id)
        .replace("{{link_dotted}}", &dotted)
        .replace("{{pod_id}}", &pod.uid)
        .replace("{{image_digest}}", DIGEST);
    serde_json::from_str(&text).unwrap()
}

/// Every leaf of a document by its dotted path.
fn leaves(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

fn hits(es: &Es, pattern: &str, query: Value) -> Vec<Value> {
    es.post(
        &format!("{pattern}/_search"),
        &json!({"query": query, "size": 100}),
    )["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn documents_have_the_fluentd_daemonset_shape_and_its_searches_find_them() {
    let es = Es::new();
    let node = Node::new();
    let base = unique("fluentd-compat");
    // The same prefix as the agent's indices: the template it installs covers both.
    let index = format!("{base}-%Y.%m.%d");
    let config = node.config_full(&index, &[support::es_url()], "  compat: fluentd\n", "");
    let pod = node.add_pod("shop", "web-7d4b9c-x2x9z", "nginx", false);
    pod.line(&ts(0), "stdout", "GET /cart 200 12ms");
    pod.line(&ts(1), "stderr", "upstream timed out");
    let agent = Agent::start(&config);
    let n = es.wait_count(&format!("{base}-*"), 2, WAIT);
    let log = agent.log_text();
    agent.stop();
    assert_eq!(n, 2, "agent log:\n{log}");
    assert_eq!(
        es.count(&format!("{base}-*-dlq")),
        0,
        "nothing dead-lettered"
    );

    // Daily index as logstash_format names it, from the event's own (UTC) date.
    let ours = hits(
        &es,
        &format!("{base}-*"),
        json!({"term": {"stream.keyword": "stdout"}}),
    );
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["_index"], format!("{base}-2026.11.24"));
    // The exactly-once id: 22 base64url characters from the file and offset, not ES's own.
    assert_eq!(ours[0]["_id"].as_str().unwrap().len(), 22);

    // Field by field against the documented Fluentd document.
    let want = fixture("daemonset-path-only.json", &pod);
    let (mut want_leaves, mut got_leaves) = (BTreeMap::new(), BTreeMap::new());
    leaves("", &want, &mut want_leaves);
    leaves("", &ours[0]["_source"], &mut got_leaves);
    for (path, value) in &want_leaves {
        assert_eq!(
            got_leaves.get(path),
            Some(value),
            "field {path}: ours {:?}",
            ours[0]["_source"]
        );
    }
    // Beyond Fluentd's path-only fields sluice writes only the node and the pod's uid from
    // /var/log/pods (the filter adds both with the pod from the API server).
    let extra: Vec<&String> = got_leaves
        .keys()
        .filter(|k| !want_leaves.contains_key(*k))
        .collect();
    assert_eq!(
        extra,
        ["kubernetes.host", "kubernetes.pod_id"],
        "{:?}",
        ours[0]["_source"]
    );
    assert_eq!(got_leaves["kubernetes.pod_id"], pod.uid);
    assert_eq!(got_leaves["kubernetes.host"], "test-node");

    // The Fluentd document itself, as the DaemonSet had written it the day before, into an
    // index of the same pattern: the template the agent installed maps it.
    let mut old = want.clone();
    old["@timestamp"] = json!("2026-11-23T09:00:00.000000001+00:00");
    old["log"] = json!("GET /cart 200 9ms");
    es.post(&format!("{base}-2026.11.23/_doc?refresh=true"), &old);
    // And once more where only dynamic mapping applies, as in a Fluentd user's cluster.
    let dynamic = format!("{base}x-dynamic");
    es.post(&format!("{dynamic}/_doc?refresh=true"), &old);

    let both = format!("{base}-*,-{base}-*-dlq");
    let q = |query: Value| hits(&es, &both, query).len();
    // Saved searches as Kibana writes them (KQL → query_string / match on text fields).
    assert_eq!(
        q(
            json!({"query_string": {"query": "kubernetes.namespace_name:shop AND kubernetes.container_name:nginx AND stream:stdout"}})
        ),
        2,
        "old and new stdout lines"
    );
    assert_eq!(q(json!({"match": {"log": "cart"}})), 2);
    assert_eq!(
        q(json!({"term": {"kubernetes.pod_name.keyword": "web-7d4b9c-x2x9z"}})),
        3
    );
    assert_eq!(
        q(json!({"term": {"docker.container_id.keyword": pod.container_id}})),
        3
    );
    assert_eq!(
        q(json!({"range": {"@timestamp": {"gte": "2026-11-24T00:00:00Z"}}})),
        2,
        "@timestamp is a date in both"
    );
    // A visualisation's terms aggregation on `.keyword`.
    let agg = es.post(
        &format!("{both}/_search"),
        &json!({"size": 0, "aggs": {"c": {"terms": {"field": "kubernetes.container_name.keyword"}}}}),
    );
    assert_eq!(
        agg["aggregations"]["c"]["buckets"],
        json!([{"key": "nginx", "doc_count": 3}])
    );

    // The mapping of every Fluentd field is the one dynamic mapping gives it.
    for field in want_leaves.keys() {
        let get = |idx: &str| {
            let m = es.get(&format!("{idx}/_mapping/field/{field}"));
            let (_, v) = m.as_object().unwrap().iter().next().unwrap();
            let leaf = field.rsplit('.').next().unwrap();
            v["mappings"][field]["mapping"][leaf].clone()
        };
        let theirs = get(&dynamic);
        let mine = get(&format!("{base}-2026.11.24"));
        assert_eq!(mine, theirs, "mapping of {field}");
    }
}

/// The same comparison with a real pod's metadata from the real kube-apiserver: labels,
/// namespace labels, the container's status (image, image id, container id) and the pod's IP,
/// as the filter takes them from the API server. `kubernetes.namespace_id` is the one field of
/// the documented document sluice does not write (its namespace watch keeps labels only).
#[test]
fn api_server_metadata_has_the_filters_names_and_values() {
    let es = Es::new();
    let k = kube::Kube::start("fluentd-kube");
    let node = Node::new();
    let base = unique("fluentd-kube");
    let ns = "shop";
    let name = "web-7d4b9c-x2x9z";
    k.namespace(ns, json!({"team": "payments"}));
    let uid = k.pod(
        ns,
        name,
        "test-node",
        &["nginx"],
        json!({"labels": {"app.kubernetes.io/name": "web", "pod-template-hash": "7d4b9c"}}),
    );
    let pod = kube::add_pod_log(&node, ns, name, &uid, "nginx");
    // What the kubelet would report: the runtime's image, its digest, the container's id.
    k.apply(
        &format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
        &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "status": {
            "podIP": "10.244.1.17",
            "podIPs": [{"ip": "10.244.1.17"}],
            "containerStatuses": [{
                "name": "nginx", "ready": true, "restartCount": 0,
                "image": "docker.io/library/nginx:1.27",
                "imageID": format!("docker.io/library/nginx@sha256:{DIGEST}"),
                "containerID": format!("containerd://{}", pod.container_id),
            }],
        }}),
    );
    let config = node.config_full(
        &format!("{base}-%Y.%m.%d"),
        &[support::es_url()],
        "  compat: fluentd\n",
        &k.agent_config("  metadata_wait: 30s\n"),
    );
    pod.line(&ts(0), "stdout", "GET /cart 200 12ms");
    let agent = Agent::start(&config);
    let n = es.wait_count(&format!("{base}-*"), 1, WAIT);
    let log = agent.log_text();
    agent.stop();
    k.delete_pods(ns);
    assert_eq!(n, 1, "agent log:\n{log}");
    let mut docs = es.all_docs(&format!("{base}-*"));
    // The helper adds the hit's `_id` to its source.
    docs[0].as_object_mut().unwrap().remove("_id");
    let got = &docs[0];

    let mut want = fixture("daemonset-with-api.json", &pod);
    // The test's node and API server in place of the fixture's.
    want["kubernetes"]["host"] = json!("test-node");
    want["kubernetes"]["master_url"] = json!(format!("{}/api", k.url()));
    let (mut want_leaves, mut got_leaves) = (BTreeMap::new(), BTreeMap::new());
    leaves("", &want, &mut want_leaves);
    leaves("", got, &mut got_leaves);
    let missing: Vec<&String> = want_leaves
        .keys()
        .filter(|p| !got_leaves.contains_key(*p))
        .collect();
    assert_eq!(missing, ["kubernetes.namespace_id"], "ours: {got}");
    for (path, value) in want_leaves
        .iter()
        .filter(|(p, _)| *p != "kubernetes.namespace_id")
    {
        assert_eq!(
            got_leaves.get(path),
            Some(value),
            "field {path}: ours {got}"
        );
    }
    let extra: Vec<&String> = got_leaves
        .keys()
        .filter(|p| !want_leaves.contains_key(*p))
        .collect();
    assert!(
        extra.is_empty(),
        "fields Fluentd does not write: {extra:?} in {got}"
    );
}
