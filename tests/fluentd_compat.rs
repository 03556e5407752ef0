//! `elasticsearch.compat: fluentd` against the real Elasticsearch: the agent's documents have
//! the Fluentd Kubernetes DaemonSet's shape field by field (`tests/fixtures/fluentd/`), land in
//! `logstash`-style daily indices with sluice's `_id`, and the template the agent installs maps
//! them as dynamic mapping mapped Fluentd's own documents, so the same saved searches,
//! `.keyword` aggregations and time field find old (Fluentd) and new (sluice) documents alike.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, Es, Node, PodLog, ts, unique};

const WAIT: Duration = Duration::from_secs(120);

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
        .replace("{{pod_id}}", &pod.uid);
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
