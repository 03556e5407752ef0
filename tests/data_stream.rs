//! Data-stream mode (`elasticsearch.data_stream: true`) on Elasticsearch 9.x (issue 14 item 5),
//! against the real server: a `logs-<dataset>-<namespace>` stream gets the agent's template even
//! where the built-in `logs-*-*` template (priority 100) exists, and `failure_store: true` on a
//! server without a failure store is ignored with a message, documents still delivered.
//!
//! The integ-test distribution has no built-in templates (they come with the x-pack stack
//! plugin): a stand-in with the built-in's name, pattern and priority is installed for the test
//! and removed after it.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, Es, Node, unique};

const WAIT: Duration = Duration::from_secs(180);

/// The stand-in for Elasticsearch's built-in `logs` template, removed when dropped.
struct BuiltinLogs {
    client: reqwest::blocking::Client,
    url: String,
}

impl BuiltinLogs {
    fn install(es: &Es) -> BuiltinLogs {
        let client = reqwest::blocking::Client::new();
        let url = format!("{}/_index_template/logs", es.url);
        let body = json!({
            "index_patterns": ["logs-*-*"],
            "priority": 100,
            "data_stream": {},
            "template": {"mappings": {"properties": {
                "@timestamp": {"type": "date"},
                "builtin_marker": {"type": "keyword"},
                "data_stream": {"properties": {
                    "type": {"type": "keyword"}, "dataset": {"type": "keyword"},
                    "namespace": {"type": "keyword"},
                }},
            }}},
            "_meta": {"description": "sluice test stand-in for the built-in logs template"},
        });
        let r = client
            .put(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("PUT _index_template/logs");
        assert!(r.status().is_success(), "{:?}", r.text());
        BuiltinLogs { client, url }
    }

    fn simulate(&self, es: &Es, name: &str) -> Value {
        let r = self
            .client
            .post(format!("{}/_index_template/_simulate_index/{name}", es.url))
            .send()
            .expect("simulate index");
        serde_json::from_slice(&r.bytes().unwrap()).unwrap()
    }
}

impl Drop for BuiltinLogs {
    fn drop(&mut self) {
        let _ = self.client.delete(&self.url).send();
    }
}

#[test]
fn data_stream_gets_our_template_over_the_builtin_logs_template() {
    let es = Es::new();
    let builtin = BuiltinLogs::install(&es);
    let stream = format!("logs-{}-default", unique("sluiceds"));
    // The stand-in is in force for a stream of that shape the agent did not set up.
    let other = builtin.simulate(&es, &format!("logs-{}-default", unique("other")));
    assert!(
        other["template"]["mappings"]["properties"]["builtin_marker"].is_object(),
        "{other}"
    );

    let node = Node::new();
    let config = node.config_full(
        &stream,
        std::slice::from_ref(&es.url),
        "  data_stream: true\n",
        "",
    );
    let pod = node.add_pod("shop", "web-1", "nginx", false);
    for i in 0..50u64 {
        pod.line(&support::ts(i), "stdout", &format!("ds line {i}"));
    }
    let agent = Agent::start(&config);
    assert_eq!(es.wait_count(&stream, 50, WAIT), 50, "{}", agent.log_text());
    agent.stop();

    let mapping = es.get(&format!("{stream}/_mapping"));
    let (backing, m) = mapping.as_object().unwrap().iter().next().unwrap();
    assert!(backing.starts_with(".ds-"), "{backing}");
    let props = &m["mappings"]["properties"];
    assert!(props["builtin_marker"].is_null(), "the built-in won: {m}");
    assert_eq!(props["@timestamp"]["type"], "date_nanos", "{m}");
    assert_eq!(
        props["kubernetes"]["properties"]["namespace"]["type"], "keyword",
        "{m}"
    );
}

#[test]
fn failure_store_where_the_server_has_none_is_ignored_with_a_message() {
    let es = Es::new();
    let stream = format!("logs-{}-default", unique("sluicefs"));
    let node = Node::new();
    let config = node.config_full(
        &stream,
        std::slice::from_ref(&es.url),
        "  data_stream: true\n  failure_store: true\n",
        "",
    );
    let pod = node.add_pod("shop", "web-1", "nginx", false);
    for i in 0..20u64 {
        pod.line(&support::ts(i), "stdout", &format!("fs line {i}"));
    }
    let agent = Agent::start(&config);
    assert_eq!(es.wait_count(&stream, 20, WAIT), 20, "{}", agent.log_text());
    let log = agent.log_text();
    agent.stop();
    // The integ-test build (no data-streams module) cannot redirect refused documents.
    assert!(
        log.contains("failure store not enabled") && log.contains("data-streams module"),
        "{log}"
    );
    let name = format!("sluice_{stream}");
    let t = es.get(&format!("_index_template/{name}"));
    let body = &t["index_templates"][0]["index_template"];
    assert!(body.is_object(), "{t}");
    assert!(body["template"]["data_stream_options"].is_null(), "{body}");
}
