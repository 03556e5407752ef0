//! Setup's tests: templates, policies, patterns and what a cluster without them is told.

use super::*;

fn cfg(extra: &str) -> Config {
    Config::from_yaml(
            &format!(
                "state_dir: /s\nnode_name: n\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n{extra}"
            ),
            &|_| None,
        )
        .unwrap()
}

#[test]
fn patterns_and_names_come_from_the_index_pattern() {
    let p = IndexPattern::parse("k", "logs-kubernetes-%Y.%m.%d").unwrap();
    assert_eq!(index_glob(&p), "logs-kubernetes-*.*.*");
    assert_eq!(template_name(&p), "sluice_logs-kubernetes");
    let p = IndexPattern::parse("k", "logs-%Y%m%d-x").unwrap();
    assert_eq!(index_glob(&p), "logs-*-x");
    let p = IndexPattern::parse("k", "plain").unwrap();
    assert_eq!(index_glob(&p), "plain");
    assert_eq!(template_name(&p), "sluice_plain");
}

fn es9() -> Cluster {
    Cluster {
        distribution: Distribution::Elasticsearch,
        version: "9.2.0".into(),
    }
}

#[test]
fn logs_template_has_the_schema() {
    let t = logs_template(&cfg(""), &es9(), None);
    let p = &t["template"]["mappings"]["properties"];
    assert_eq!(t["index_patterns"], json!(["logs-kubernetes-*.*.*"]));
    assert_eq!(p["@timestamp"]["type"], "date_nanos");
    assert_eq!(p["message"]["type"], "text");
    assert_eq!(p["log"]["properties"]["offset"]["type"], "long");
    assert_eq!(
        p["kubernetes"]["properties"]["pod"]["properties"]["name"]["type"],
        "keyword"
    );
    assert_eq!(p["json"]["type"], "flattened");
    assert!(p.get("json_typed").is_none());
    assert!(t.get("data_stream").is_none());
    assert!(
        t["template"]["settings"]
            .get("index.lifecycle.name")
            .is_none()
    );
    let dt = t["template"]["mappings"]["dynamic_templates"].to_string();
    assert!(dt.contains("kubernetes.labels.*") && dt.contains("kubernetes.annotations.*"));
}

#[test]
fn data_stream_mode_names_the_stream_and_rolls_over() {
    let c = cfg("  index: logs-k8s\n  data_stream: true\n  lifecycle:\n    delete_after: 7d\n");
    let t = logs_template(&c, &es9(), Some("p"));
    assert_eq!(t["index_patterns"], json!(["logs-k8s"]));
    assert_eq!(t["data_stream"], json!({}));
    assert_eq!(t["template"]["settings"]["index.lifecycle.name"], "p");
    let ilm = ilm_policy(&c.elasticsearch);
    assert_eq!(ilm["policy"]["phases"]["delete"]["min_age"], "168h");
    assert!(ilm["policy"]["phases"]["hot"]["actions"]["rollover"].is_object());
    let ism = ism_policy(&c.elasticsearch);
    assert_eq!(ism["policy"]["states"][1]["name"], "delete");
    assert_eq!(
        ism["policy"]["ism_template"][0]["index_patterns"],
        json!(["logs-k8s"])
    );
}

#[test]
fn app_object_is_flattened_or_flat_object_and_typed_keys_are_mapped() {
    let os = |v: &str| Cluster {
        distribution: Distribution::OpenSearch,
        version: v.into(),
    };
    assert_eq!(app_object_mapping(&os("2.19.6"))["type"], "flat_object");
    assert_eq!(app_object_mapping(&os("3.8.0"))["type"], "flat_object");
    assert_eq!(app_object_mapping(&os("2.6.0"))["enabled"], false);
    let es = app_object_mapping(&es9());
    assert_eq!(es["type"], "flattened");
    assert!(es["depth_limit"].as_u64() > Some(DEPTH_LIMIT as u64));
    let c = cfg("parse:\n  json:\n    target: app\n    fields: {status: long, ok: boolean}\n");
    let t = logs_template(&c, &es9(), None);
    let p = &t["template"]["mappings"]["properties"];
    assert_eq!(p["app"]["type"], "flattened");
    assert_eq!(p["app_typed"]["properties"]["status"]["type"], "long");
    assert_eq!(p["app_typed"]["properties"]["ok"]["type"], "boolean");
    assert_eq!(p["app_mistyped"]["properties"]["status"]["type"], "keyword");
}

#[test]
fn dead_letter_template_cannot_conflict() {
    let t = dead_letter_template(&IndexPattern::parse("k", "dl-%Y.%m.%d").unwrap());
    assert_eq!(t["template"]["mappings"]["dynamic"], false);
    let orig = &t["template"]["mappings"]["properties"]["event"]["properties"]["original"];
    assert_eq!(orig["index"], false);
    assert!(t["priority"].as_u64() > Some(u64::from(LOGS_PRIORITY)));
}

#[test]
fn routed_patterns_get_a_template_covering_every_routed_index() {
    let c = cfg("  index: \"logs-{kubernetes.namespace}-%Y.%m.%d\"\n");
    assert_eq!(index_glob(&c.elasticsearch.index), "logs-*-*.*.*");
    let cluster = Cluster {
        distribution: Distribution::Elasticsearch,
        version: "9.1.0".into(),
    };
    let t = logs_template(&c, &cluster, None);
    assert_eq!(t["index_patterns"], json!(["logs-*-*.*.*"]));
    let c = cfg(
        "  data_stream: true\n  index: \"logs-{sluice.dataset|generic}-{kubernetes.namespace}\"\n",
    );
    let t = logs_template(&c, &cluster, None);
    assert_eq!(t["index_patterns"], json!(["logs-*-*"]));
    assert_eq!(t["data_stream"], json!({}));
    assert_eq!(
        ism_policy(&c.elasticsearch)["policy"]["ism_template"][0]["index_patterns"],
        json!(["logs-*-*"])
    );
}

#[test]
fn globs_overlap_as_name_sets() {
    assert!(globs_overlap("logs-*-*.*.*", "logs-*-*"));
    assert!(globs_overlap("logs-kubernetes-*.*.*", "logs-*-*"));
    assert!(globs_overlap("*", "logs-*-*"));
    assert!(globs_overlap("logs-*", "logs-*-*"));
    assert!(!globs_overlap("k8s-*-*.*.*", "logs-*-*"));
    assert!(!globs_overlap("logs", "logs-*-*"));
    assert!(globs_overlap("logs-*", "logs-x"));
    assert!(!globs_overlap("logs-*-y", "logs-x"));
    assert!(globs_overlap("logs-x", "logs-x"));
    assert!(!globs_overlap("sluice-dead-letter-*.*.*", "logs-*-*"));
}

#[test]
fn setup_warns_when_the_pattern_overlaps_the_builtin_logs_template() {
    let overlap = |index: &str, d| builtin_overlap(&IndexPattern::parse("k", index).unwrap(), d);
    let w = overlap(
        "logs-{kubernetes.namespace}-%Y.%m.%d",
        Distribution::Elasticsearch,
    )
    .unwrap();
    assert!(
        w.contains("logs-*-*.*.*") && w.contains("priority 100"),
        "{w}"
    );
    assert!(
        overlap(
            "k8s-{kubernetes.namespace}-%Y.%m.%d",
            Distribution::Elasticsearch
        )
        .is_none()
    );
    // OpenSearch has no such built-in template.
    assert!(overlap("logs-{kubernetes.namespace}-%Y", Distribution::OpenSearch).is_none());
}

#[test]
fn fluentd_template_maps_like_dynamic_mapping_did() {
    let t = logs_template(&cfg("  compat: fluentd\n"), &es9(), Some("sluice_logstash"));
    assert_eq!(t["index_patterns"], json!(["logstash-*.*.*"]));
    assert_eq!(
        template_name(&IndexPattern::parse("k", "logstash-%Y.%m.%d").unwrap()),
        "sluice_logstash"
    );
    let m = &t["template"]["mappings"];
    let p = &m["properties"];
    assert_eq!(p["@timestamp"]["type"], "date");
    for field in [
        &p["log"],
        &p["kubernetes"]["properties"]["pod_name"],
        &p["docker"]["properties"]["container_id"],
    ] {
        assert_eq!(field["type"], "text");
        assert_eq!(field["fields"]["keyword"]["type"], "keyword");
        assert_eq!(field["fields"]["keyword"]["ignore_above"], 256);
    }
    assert_eq!(m["date_detection"], false);
    let dt = &m["dynamic_templates"][0]["strings_as_text_and_keyword"];
    assert_eq!(dt["match_mapping_type"], "string");
    assert_eq!(dt["mapping"]["fields"]["keyword"]["type"], "keyword");
    assert_eq!(p["json"]["type"], "flattened");
    assert!(p.get("message").is_none());
    assert_eq!(
        t["template"]["settings"]["index.lifecycle.name"],
        "sluice_logstash"
    );
}
