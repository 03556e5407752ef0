//! Hostile JSON application logs against the real server (`scripts/test` runs this file against
//! every server of its matrix: Elasticsearch 9.x and 8.19, OpenSearch 2.19 and 3.x): a key that
//! is once a string and once an object, a 200-deep object, a 10,000-key object, a deeper one
//! and a huge string value all land in the main index, searchable, and nothing in the
//! dead-letter index; typed keys (`parse.json.fields`) answer range queries, and a value that
//! does not fit its type is kept as a string. Also the ECS fields lifted from a Mattermost line.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, Es, Node, ts, unique};

const WAIT: Duration = Duration::from_secs(180);

fn deep(levels: usize, leaf: &str) -> String {
    let mut s = format!("\"{leaf}\"");
    for _ in 0..levels {
        s = format!("{{\"a\":{s}}}");
    }
    s
}

fn count(es: &Es, pattern: &str, query: Value) -> u64 {
    es.post(&format!("{pattern}/_count"), &json!({ "query": query }))["count"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn conflicting_deep_and_wide_json_is_searchable_in_the_main_index() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("hostile-json");
    let main = format!("{index}-*,-{index}-*-dlq");
    let dlq = format!("{index}-*-dlq");
    let config = node.config(
        &format!("{index}-%Y.%m.%d"),
        "parse:\n  json:\n    fields: {status: long, latency_ms: double}\n",
    );
    let pod = node.add_pod("shop", "hostile", "app", false);
    let wide: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":{i}")).collect();
    // The outer object is level 1: `{"msg":…,"a":<199 levels>}` is 200 deep.
    let lines = [
        r#"{"msg":"status-string","status":"ok"}"#.to_string(),
        r#"{"msg":"status-object","status":{"code":5}}"#.to_string(),
        r#"{"msg":"typed","status":503,"latency_ms":12.5}"#.to_string(),
        format!(r#"{{"msg":"deep-200","a":{}}}"#, deep(199, "bottom")),
        format!(r#"{{"msg":"wide","{}}}"#, &wide.join(",")[1..]),
        format!(r#"{{"msg":"deep-600","a":{}}}"#, deep(598, "far")),
        format!(r#"{{"msg":"huge-value","blob":"{}"}}"#, "x".repeat(40_000)),
    ];
    for (i, l) in lines.iter().enumerate() {
        pod.line(&ts(i as u64), "stdout", l);
    }
    let n = lines.len() as u64;
    let agent = Agent::start(&config);
    // Main and dead-letter together first: a refused line must fail the test quickly.
    let all = es.wait_count(&format!("{index}-*"), n, WAIT);
    let log = agent.log_text();
    agent.stop();
    let in_main = es.count(&main);
    let dead = es.count(&dlq);
    assert_eq!(
        (all, in_main, dead),
        (n, n, 0),
        "(all, main, dead-lettered); dead letters: {:?}\nagent log:\n{log}",
        if dead > 0 {
            es.all_docs(&dlq)
        } else {
            Vec::new()
        }
        .iter()
        .map(|d| d["error"]["message"].to_string())
        .collect::<Vec<_>>()
    );

    let q = |query: Value| count(&es, &main, query);
    assert_eq!(
        q(json!({"term": {"json.status": "ok"}})),
        1,
        "string status"
    );
    assert_eq!(
        q(json!({"term": {"json.status.code": "5"}})),
        1,
        "object status"
    );
    assert_eq!(
        q(json!({"range": {"json_typed.status": {"gte": 500}}})),
        1,
        "typed status answers a numeric range"
    );
    assert_eq!(
        q(json!({"range": {"json_typed.latency_ms": {"gt": 12.0, "lt": 13.0}}})),
        1
    );
    assert_eq!(
        q(json!({"term": {"json_mistyped.status": "ok"}})),
        1,
        "a string where a long was declared is kept as a string"
    );
    assert_eq!(
        q(json!({"exists": {"field": "json_mistyped.status"}})),
        2,
        "\"ok\" and the object"
    );
    let path = format!("json.a{}", ".a".repeat(199));
    assert_eq!(
        q(json!({"term": {path: "bottom"}})),
        1,
        "leaf of the 200-deep object"
    );
    assert_eq!(q(json!({"term": {"json.k9999": "9999"}})), 1, "wide object");
    assert_eq!(q(json!({"term": {"json.k4242": "4242"}})), 1);
    assert_eq!(
        q(json!({"term": {"tags": "json_limited"}})),
        2,
        "the 600-deep object and the huge value were brought within the limits"
    );
    assert_eq!(
        q(json!({"match_phrase": {"message": "deep-600"}})),
        1,
        "the deep line is in the main index"
    );
    // Only this document's source: serde_json's Value refuses the 200-deep ones (128 levels).
    let hit = es.post(
        &format!("{main}/_search"),
        &json!({"query": {"match_phrase": {"message": "huge-value"}}, "_source": ["event.original"]}),
    );
    let original = hit["hits"]["hits"][0]["_source"]["event"]["original"]
        .as_str()
        .expect("event.original");
    assert!(
        original.contains(&"x".repeat(40_000)),
        "nothing lost: the whole object in event.original"
    );
}

#[test]
fn mattermost_json_log_gets_its_ecs_fields() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("mattermost");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let pod = node.add_pod("chat", "mattermost-0", "mattermost", false);
    // As Mattermost's server writes it (its JSON console/file format).
    pod.line(
        &ts(1),
        "stdout",
        r#"{"timestamp":"2026-11-24 10:55:33.148 Z","level":"error","msg":"Failed to send push notification","caller":"app/notification_push.go:123","user_id":"u1","error":"connection refused","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","logger":"push"}"#,
    );
    let agent = Agent::start(&config);
    let got = es.wait_count(&format!("{index}-*"), 1, WAIT);
    let log = agent.log_text();
    agent.stop();
    assert_eq!(got, 1, "agent log:\n{log}");
    let docs = es.all_docs(&format!("{index}-*"));
    let d = &docs[0];
    assert_eq!(d["message"], "Failed to send push notification");
    assert_eq!(d["log"]["level"], "error");
    assert_eq!(d["log"]["logger"], "push");
    assert_eq!(
        d["log"]["origin"]["file"]["name"],
        "app/notification_push.go"
    );
    assert_eq!(d["log"]["origin"]["file"]["line"], 123);
    assert_eq!(d["event"]["created"], "2026-11-24T10:55:33.148Z");
    assert_eq!(d["error"]["message"], "connection refused");
    assert_eq!(d["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(d["span"]["id"], "00f067aa0ba902b7");
    assert_eq!(d["json"]["user_id"], "u1");
    // The keys lifted verbatim are moved out of `json` (stored once); the time and the caller,
    // written in another form, stay.
    let kept: Vec<&String> = d["json"].as_object().unwrap().keys().collect();
    assert_eq!(kept, ["caller", "timestamp", "user_id"], "{d}");
    // Mapped as the template says: searchable by these fields.
    let p = format!("{index}-*");
    assert_eq!(
        count(&es, &p, json!({"term": {"log.origin.file.line": 123}})),
        1
    );
    assert_eq!(
        count(
            &es,
            &p,
            json!({"range": {"event.created": {"gte": "2026-11-24T10:55:00Z"}}})
        ),
        1
    );
    assert_eq!(
        count(
            &es,
            &p,
            json!({"term": {"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736"}})
        ),
        1
    );
}
