//! The index template for `elasticsearch.compat: fluentd`: the mapping Fluentd DaemonSet users'
//! `logstash-*` indices got from Elasticsearch's dynamic mapping (the DaemonSet installs no
//! template), so their saved searches (`kubernetes.namespace_name: shop`), visualisations
//! (terms on `kubernetes.pod_name.keyword`) and the data view's time field keep working on the
//! indices sluice writes. Pure: a function of the configuration, unit-tested in `tests.rs`.

use serde_json::{Value, json};

use super::{Cluster, LOGS_PRIORITY, app_object_mapping, index_glob};
use crate::config::Config;

/// What dynamic mapping gives a JSON string: `text` with a `.keyword` sub-field of at most 256
/// characters.
fn text_and_keyword() -> Value {
    json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
}

/// The template for the Fluentd-shaped indices.
///
/// Every string, known or not (labels, namespace labels, whatever a user's Fluentd filters
/// added), is `text` + `.keyword` as under dynamic mapping; the fields the shape always has are
/// spelled out, so the first document of a day cannot give them another type. `@timestamp` is
/// `date` (milliseconds), as dynamic date detection made it, so a data view over old and new
/// indices sees one type. Date detection is off for everything else: a label value that looks
/// like a date would otherwise fix that label's type for the day and refuse other pods' lines
/// (such values are `text` + `.keyword` here, still found by the same query string).
pub fn template(cfg: &Config, cluster: &Cluster, ilm_policy: Option<&str>) -> Value {
    let es = &cfg.elasticsearch;
    let tk = text_and_keyword();
    let mut properties = json!({
        "@timestamp": {"type": "date"},
        "log": tk,
        "stream": tk,
        "tag": tk,
        "tags": tk,
        "docker": {"properties": {"container_id": tk}},
        "kubernetes": {"properties": {
            "container_name": tk, "namespace_name": tk, "pod_name": tk,
            "container_image": tk, "container_image_id": tk,
            "pod_id": tk, "pod_ip": tk, "host": tk, "master_url": tk,
            "namespace_id": tk,
            "labels": {"type": "object", "dynamic": true},
            "namespace_labels": {"type": "object", "dynamic": true},
        }},
    });
    // Parsed JSON app logs go under their own object, never at the top (encode/fluentd.rs).
    let target = cfg.parse.json_target.as_deref().unwrap_or("json");
    properties[target] = app_object_mapping(cluster);
    let mut settings = json!({});
    if let Some(p) = ilm_policy {
        settings["index.lifecycle.name"] = json!(p);
    }
    json!({
        "index_patterns": [index_glob(&es.index)],
        "priority": LOGS_PRIORITY,
        "template": {
            "settings": settings,
            "mappings": {
                "date_detection": false,
                "dynamic_templates": [
                    {"strings_as_text_and_keyword": {
                        "match_mapping_type": "string",
                        "mapping": tk,
                    }},
                ],
                "properties": properties,
            },
        },
        "_meta": {"managed_by": "sluice", "version": env!("CARGO_PKG_VERSION"), "compat": "fluentd"},
    })
}
