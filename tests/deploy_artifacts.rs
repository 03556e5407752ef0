//! The dashboards and alert rules users import (dashboards/grafana/sluice.json,
//! dashboards/kibana/sluice.ndjson, the chart's PrometheusRule) checked against a real agent:
//! every metric name they use is in its real `/metrics`, every `outcome` label value is one the
//! sink emits, and every field the Kibana objects name (saved searches, Lens visualizations,
//! dashboard controls) is in a document the agent really wrote to Elasticsearch (an event, and
//! a dead letter it produced from a mapping conflict) and in the real mapping of its index, with
//! a type that can do what the object does with it.
//! There is no Grafana, Prometheus or Kibana here: this is what can be checked without them.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

fn repo(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Sample names of a Prometheus text exposition (`sluice_bulk_items_total`, `..._bucket`, ...).
fn sample_names(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// `outcome` values the sink can emit: those documented on the metrics (`/// outcome: a, b, …`
/// in src/telemetry/metrics.rs) that the sink's code still names as a string literal.
fn outcomes_in_source() -> BTreeSet<String> {
    let documented: BTreeSet<String> = repo("src/telemetry/metrics.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("/// outcome:"))
        .flat_map(|l| l.split(','))
        .map(|w| w.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    let literal = Regex::new(r#""([a-z_]+)""#).unwrap();
    // The sink's sources, its sub-folders (aws/) included.
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sink/elasticsearch")];
    let mut named = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            named.extend(literal.captures_iter(&text).map(|c| c[1].to_string()));
        }
    }
    documented.intersection(&named).cloned().collect()
}

/// Checks every `sluice_*` name and `outcome` value in `text` (PromQL, anywhere in the file).
fn check_promql(what: &str, text: &str, names: &BTreeSet<String>, outcomes: &BTreeSet<String>) {
    let metric = Regex::new(r"\bsluice_[a-z0-9_]+").unwrap();
    let used: BTreeSet<&str> = metric.find_iter(text).map(|m| m.as_str()).collect();
    assert!(
        used.len() >= 5,
        "{what}: too few sluice metrics found: {used:?}"
    );
    let unknown: Vec<_> = used.iter().filter(|n| !names.contains(**n)).collect();
    assert!(
        unknown.is_empty(),
        "{what} names metrics the agent does not export: {unknown:?}\n(exported: {names:?})"
    );
    let label = Regex::new(r#"outcome\s*(?:=~|=|!=|!~)\s*"([^"]*)""#).unwrap();
    for c in label.captures_iter(text) {
        for v in c[1].split('|') {
            assert!(
                outcomes.contains(v),
                "{what}: outcome \"{v}\" is never emitted (the sink emits {outcomes:?})"
            );
        }
    }
}

/// Dotted paths of every leaf of a document (`kubernetes.pod.name`, `tags`).
fn leaves(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &p, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn dashboards_and_alerts_use_only_what_the_agent_exports_and_writes() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("deploy-art");
    let dead = unique("deploy-art-dl");
    let http = reqwest::blocking::Client::new();
    let port = free_port();
    let config = node.root().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "node_name: test-node\ncluster_name: test-cluster\nstate_dir: {state}\n\
             input:\n  root: {root}\n  poll_interval: 200ms\n\
             elasticsearch:\n  endpoints: [\"{es}\"]\n  index: \"{index}-%Y.%m.%d\"\n  \
             dead_letter_index: \"{dead}-%Y.%m.%d\"\n  batch:\n    timeout: 200ms\n\
             telemetry:\n  listen: 127.0.0.1:{port}\n",
            state = node.state_dir().display(),
            root = node.root().display(),
            es = es.url,
        ),
    )
    .unwrap();
    // The agent's own templates first (`sluice setup`), so the indices get its real mappings.
    let setup = support::sluice(&config, &["setup"]);
    assert!(
        setup.status.success(),
        "sluice setup: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    // The same mappings with json.n a number: a string there is a mapping conflict, which the
    // agent dead-letters (with its template `json` is `flattened` and nothing can conflict).
    let agent_template = es.get(&format!("_index_template/sluice_{index}"));
    let mut mappings =
        agent_template["index_templates"][0]["index_template"]["template"]["mappings"].clone();
    assert!(
        mappings["properties"]["json"].is_object(),
        "{agent_template}"
    );
    mappings["properties"]["json"] = serde_json::json!({"properties": {"n": {"type": "long"}}});
    let template = serde_json::json!({
        "index_patterns": [format!("{index}-*")],
        // Above the agent's own template (priority 200): only the highest-priority template
        // applies.
        "priority": 500,
        "template": {"mappings": mappings}
    });
    let resp = http
        .put(format!("{}/_index_template/{index}", es.url))
        .header("content-type", "application/json")
        .body(template.to_string())
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());

    let pod = node.add_pod("shop", "checkout-7d9f", "app", false);
    pod.line(
        &ts(1),
        "stdout",
        r#"{"level":"error","msg":"payment failed","n":1}"#,
    );
    pod.line(
        &ts(2),
        "stderr",
        r#"{"level":"info","msg":"refused","n":"not-a-number"}"#,
    );

    let agent = Agent::start(&config);
    assert_eq!(
        es.wait_count(&format!("{index}-*"), 1, WAIT),
        1,
        "log:\n{}",
        agent.log_text()
    );
    assert_eq!(
        es.wait_count(&format!("{dead}-*"), 1, WAIT),
        1,
        "log:\n{}",
        agent.log_text()
    );
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("scrape: {e}\nlog:\n{}", agent.log_text()));
    agent.stop();

    // --- metrics: Grafana dashboard and alert rules ------------------------------------------
    let names = sample_names(&metrics);
    assert!(
        metrics.contains(r#"sluice_bulk_items_total{outcome="dead_lettered"} 1"#),
        "{metrics}"
    );
    let outcomes = outcomes_in_source();
    for o in [
        "ok",
        "retry",
        "error",
        "created",
        "retried",
        "dead_lettered",
        "dead_letter_failed",
    ] {
        assert!(
            outcomes.contains(o),
            "the sink no longer emits {o}: {outcomes:?}"
        );
    }

    let grafana: Value = serde_json::from_str(&repo("dashboards/grafana/sluice.json")).unwrap();
    assert_eq!(grafana["uid"], "sluice-agent");
    let panels = grafana["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids must be unique");
    let mut exprs = String::new();
    for p in panels {
        assert!(p["gridPos"]["w"].as_u64().unwrap() <= 24, "{p}");
        if p["type"] != "row" {
            let targets = p["targets"].as_array().expect("a panel without targets");
            assert!(!targets.is_empty(), "{}", p["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
                exprs.push_str(t["expr"].as_str().unwrap());
                exprs.push('\n');
            }
        }
    }
    check_promql("dashboards/grafana/sluice.json", &exprs, &names, &outcomes);
    check_promql(
        "the chart's PrometheusRule",
        &repo("deploy/helm/sluice/templates/prometheusrule.yaml"),
        &names,
        &outcomes,
    );

    // --- fields: Kibana saved objects --------------------------------------------------------
    let mut event_fields = BTreeSet::new();
    let events = es.all_docs(&format!("{index}-*"));
    leaves(&events[0], "", &mut event_fields);
    let mut dead_fields = BTreeSet::new();
    let deads = es.all_docs(&format!("{dead}-*"));
    leaves(&deads[0], "", &mut dead_fields);
    assert!(event_fields.contains("log.level"), "{event_fields:?}");
    assert!(dead_fields.contains("error.type"), "{dead_fields:?}");

    let defaults = repo("src/sink/elasticsearch/config.rs");
    let objects: Vec<Value> = repo("dashboards/kibana/sluice.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: BTreeSet<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap().into(),
                o["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(ids.len(), objects.len(), "duplicate saved object ids");
    // (data view id, field, what its mapping must be: "keyword" to bucket by it (Lens terms,
    // controls), "date" for a histogram, "any" to search or show it).
    let mut used: BTreeSet<(String, String, &str)> = BTreeSet::new();
    // Data view id → the fields of the documents its indices hold.
    let mut views = std::collections::BTreeMap::new();
    for o in objects.iter().filter(|o| o["type"] == "index-pattern") {
        let title = o["attributes"]["title"].as_str().unwrap();
        // The title matches the agent's default index pattern (%Y.%m.%d → *).
        let pattern = title.replace('*', "%Y.%m.%d");
        assert!(
            defaults.contains(&format!("\"{pattern}\"")),
            "{title}: no such default index"
        );
        let fields = if title.starts_with("sluice-dead-letter") {
            &dead_fields
        } else {
            &event_fields
        };
        let time = o["attributes"]["timeFieldName"].as_str().unwrap();
        assert!(fields.contains(time), "{title}: time field {time}");
        used.insert((o["id"].as_str().unwrap().into(), time.into(), "date"));
        views.insert(o["id"].as_str().unwrap().to_string(), fields);
    }
    assert_eq!(views.len(), 2);
    let kql_field = Regex::new(r"([A-Za-z@_][A-Za-z0-9@_.]*)\s*:").unwrap();
    let mut searches = 0;
    let mut lenses = 0;
    for o in &objects {
        let refs = o["references"].as_array().unwrap();
        for r in refs {
            let key = (
                r["type"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            );
            assert!(
                ids.contains(&key),
                "{}: dangling reference {key:?}",
                o["id"]
            );
        }
        let a = &o["attributes"];
        match o["type"].as_str().unwrap() {
            "search" => {
                searches += 1;
                let source: Value = serde_json::from_str(
                    a["kibanaSavedObjectMeta"]["searchSourceJSON"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap();
                let ref_name = source["indexRefName"].as_str().unwrap();
                let view = refs
                    .iter()
                    .find(|r| r["name"] == ref_name)
                    .expect("index reference");
                let view_id = view["id"].as_str().unwrap();
                let fields = views[view_id];
                let mut named: Vec<String> = a["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().into())
                    .collect();
                named.extend(
                    a["sort"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s[0].as_str().unwrap().into()),
                );
                let query = source["query"]["query"].as_str().unwrap();
                named.extend(kql_field.captures_iter(query).map(|c| c[1].to_string()));
                for f in named {
                    assert!(
                        fields.contains(&f),
                        "{}: field {f} is not in what the agent writes: {fields:?}",
                        o["id"]
                    );
                    used.insert((view_id.into(), f, "any"));
                }
            }
            "dashboard" => {
                let panels: Vec<Value> =
                    serde_json::from_str(a["panelsJSON"].as_str().unwrap()).unwrap();
                assert_eq!(
                    panels.len(),
                    7,
                    "4 Lens visualizations and 3 saved searches"
                );
                for p in panels {
                    let name = p["panelRefName"].as_str().unwrap();
                    let r = refs
                        .iter()
                        .find(|r| r["name"] == name)
                        .unwrap_or_else(|| panic!("panel {name} has no reference"));
                    assert_eq!(r["type"], p["type"], "panel {name}");
                }
                // Controls: every field is in the documents of its data view, and the data view
                // is referenced the way Kibana extracts it (`controlGroup_<id>:optionsListDataView`).
                let controls: serde_json::Map<String, Value> =
                    serde_json::from_str(a["controlGroupInput"]["panelsJSON"].as_str().unwrap())
                        .unwrap();
                let mut control_fields = BTreeSet::new();
                for (id, c) in &controls {
                    assert_eq!(c["type"], "optionsListControl", "{id}");
                    let input = &c["explicitInput"];
                    assert_eq!(input["id"].as_str(), Some(id.as_str()));
                    let view = input["dataViewId"].as_str().unwrap();
                    let r = refs
                        .iter()
                        .find(|r| r["name"] == format!("controlGroup_{id}:optionsListDataView"))
                        .unwrap_or_else(|| panic!("control {id} has no data view reference"));
                    assert_eq!(r["id"], view, "control {id}");
                    let field = input["fieldName"].as_str().unwrap();
                    assert!(
                        views[view].contains(field),
                        "control {id}: field {field} is not in what the agent writes: {:?}",
                        views[view]
                    );
                    control_fields.insert(field.to_string());
                    used.insert((view.into(), field.into(), "keyword"));
                }
                assert_eq!(
                    control_fields,
                    ["kubernetes.namespace", "kubernetes.pod.name", "log.level"]
                        .map(String::from)
                        .into(),
                );
            }
            "lens" => {
                lenses += 1;
                let state = &a["state"];
                let layers = state["datasourceStates"]["indexpattern"]["layers"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{}: no form-based layers", o["id"]));
                assert!(!layers.is_empty(), "{}", o["id"]);
                let query = state["query"]["query"].as_str().unwrap();
                for (layer, l) in layers {
                    let name = format!("indexpattern-datasource-layer-{layer}");
                    let view = refs
                        .iter()
                        .find(|r| r["name"] == name)
                        .unwrap_or_else(|| panic!("{}: no reference {name}", o["id"]));
                    let view_id = view["id"].as_str().unwrap();
                    let fields = views[view_id];
                    let columns = l["columns"].as_object().unwrap();
                    for c in columns.values() {
                        let need = match c["operationType"].as_str().unwrap() {
                            "count" => continue,
                            "terms" => "keyword",
                            "date_histogram" => "date",
                            _ => "any",
                        };
                        let f = c["sourceField"].as_str().unwrap();
                        used.insert((view_id.into(), f.into(), need));
                    }
                    let order: BTreeSet<&str> = l["columnOrder"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect();
                    assert_eq!(
                        order,
                        columns.keys().map(String::as_str).collect(),
                        "{}: columnOrder",
                        o["id"]
                    );
                    let mut named: Vec<String> = columns
                        .values()
                        .filter(|c| c["operationType"] != "count")
                        .map(|c| c["sourceField"].as_str().unwrap().to_string())
                        .collect();
                    named.extend(kql_field.captures_iter(query).map(|c| c[1].to_string()));
                    for f in named {
                        assert!(
                            fields.contains(&f),
                            "{}: field {f} is not in what the agent writes: {fields:?}",
                            o["id"]
                        );
                        used.insert((view_id.into(), f, "any"));
                    }
                    // The chart draws columns of this layer only.
                    let vis = state["visualization"]["layers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|v| v["layerId"] == layer.as_str())
                        .unwrap_or_else(|| panic!("{}: layer {layer} is not drawn", o["id"]));
                    let mut drawn = Vec::new();
                    for key in ["xAccessor", "splitAccessor", "metric"] {
                        drawn.extend(vis[key].as_str());
                    }
                    for key in ["accessors", "groups"] {
                        drawn.extend(
                            vis[key]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|c| c.as_str()),
                        );
                    }
                    assert!(!drawn.is_empty(), "{}", o["id"]);
                    for c in drawn {
                        assert!(
                            columns.contains_key(c),
                            "{}: draws unknown column {c}",
                            o["id"]
                        );
                    }
                }
            }
            "index-pattern" => {}
            other => panic!("unexpected saved object type {other}"),
        }
    }
    assert_eq!(searches, 3);
    assert_eq!(lenses, 4);

    // Every field used is in the real mapping of the indices the agent wrote (the dead-letter
    // template is `dynamic: false`: a field only in `_source` cannot be searched), with a type
    // that can do what the object does with it.
    let patterns = std::collections::BTreeMap::from([
        ("sluice-logs-kubernetes", format!("{index}-*")),
        ("sluice-dead-letter", format!("{dead}-*")),
    ]);
    assert!(used.len() >= 15, "{used:?}");
    for (view, field, need) in &used {
        let pattern = &patterns[view.as_str()];
        let m = es.get(&format!("{pattern}/_mapping/field/{field}"));
        let types: BTreeSet<String> = m
            .as_object()
            .unwrap()
            .values()
            .filter_map(|i| i["mappings"][field.as_str()]["mapping"].as_object())
            .flat_map(|leaf| leaf.values())
            .map(|v| v["type"].as_str().unwrap_or("object").to_string())
            .collect();
        assert!(
            !types.is_empty(),
            "{view}: {field} is not mapped in {pattern}: {m}"
        );
        let ok = match *need {
            "keyword" => types.iter().all(|t| t == "keyword"),
            "date" => types.iter().all(|t| t == "date" || t == "date_nanos"),
            _ => true,
        };
        assert!(
            ok,
            "{view}: {field} is mapped {types:?} in {pattern}, needs {need}"
        );
    }
}
