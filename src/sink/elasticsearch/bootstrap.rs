//! `sluice setup` and the automatic setup at start: read the cluster's distribution and version,
//! then install (idempotently, by PUT) a composable index template for the log indices, one for
//! the dead-letter indices, and a lifecycle policy where the cluster has ILM (Elasticsearch) or
//! ISM (OpenSearch). The documents themselves are never touched here.
//!
//! The templates' bodies are pure functions of the configuration, unit-tested below; the calls
//! go through [`Service`], so they use the same endpoints, credentials and TLS as shipping.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::IndexPattern;
use super::appjson::{DEPTH_LIMIT, VALUE_LIMIT};
use super::config::{Compat, ElasticsearchConfig};
use super::failure_store;
use super::service::Service;
use super::storage;
use crate::config::Config;
use crate::parse::json::FieldType;

/// Priorities above the built-in `logs-*-*` template of Elasticsearch (100); the dead-letter
/// template one higher, because the log pattern may match dead-letter names too
/// (`x-*.*.*` matches `x-2026.11.24-dlq`).
const LOGS_PRIORITY: u32 = 200;
const DEAD_LETTER_PRIORITY: u32 = 201;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot reach Elasticsearch: {0}")]
    Unreachable(String),
    #[error("{what}: HTTP {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("unsupported cluster: {0}")]
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Elasticsearch,
    OpenSearch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub distribution: Distribution,
    pub version: String,
}

/// Reads what runs there. `GET /` names OpenSearch; Elasticsearch's integ-test builds (8.x and
/// 9.x) answer 405 to it, so the version then comes from `/_nodes/_local`.
pub async fn detect(svc: &Service) -> Result<Cluster, BootstrapError> {
    let (status, body) = call(svc, reqwest::Method::GET, "", None).await?;
    let root: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (distribution, version) = if status == 200 && root["version"]["number"].is_string() {
        let d = if root["version"]["distribution"] == "opensearch" {
            Distribution::OpenSearch
        } else {
            Distribution::Elasticsearch
        };
        (
            d,
            root["version"]["number"].as_str().unwrap_or("").to_string(),
        )
    } else {
        let (status, body) = call(
            svc,
            reqwest::Method::GET,
            "_nodes/_local?filter_path=nodes.*.version",
            None,
        )
        .await?;
        expect_ok("reading the version from /_nodes/_local", status, &body)?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let version = v["nodes"]
            .as_object()
            .and_then(|n| n.values().next())
            .and_then(|n| n["version"].as_str())
            .unwrap_or("")
            .to_string();
        // OpenSearch versions are 1.x–3.x, Elasticsearch's with composable templates 7.8+.
        let d = if major(&version) >= 5 {
            Distribution::Elasticsearch
        } else {
            Distribution::OpenSearch
        };
        (d, version)
    };
    let m = major(&version);
    if distribution == Distribution::Elasticsearch && (m < 7 || version.starts_with("7.0")) {
        return Err(BootstrapError::Unsupported(format!(
            "Elasticsearch {version}: composable index templates need 7.8 or later (8.x and 9.x are supported)"
        )));
    }
    Ok(Cluster {
        distribution,
        version,
    })
}

fn major(v: &str) -> u32 {
    v.split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Installs everything; returns one line per step for the operator.
pub async fn run(svc: &Service, cfg: &Config) -> Result<Vec<String>, BootstrapError> {
    let es = &cfg.elasticsearch;
    let cluster = detect(svc).await?;
    storage::resolve(es.index_mode, &cluster).map_err(BootstrapError::Unsupported)?;
    let mut done = vec![format!("{:?} {}", cluster.distribution, cluster.version)];
    let policy = lifecycle(svc, es, &cluster, &mut done).await?;

    let logs_name = template_name(&es.index);
    let mut logs = logs_template(
        cfg,
        &cluster,
        policy
            .as_deref()
            .filter(|_| cluster.distribution == Distribution::Elasticsearch),
    );
    if es.failure_store {
        match failure_store::probe(svc, &cluster).await? {
            failure_store::Support::Available => {
                logs["template"]["data_stream_options"] = failure_store::template_options();
                done.push(format!(
                    "failure store enabled for data stream {}",
                    es.index.as_str()
                ));
            }
            failure_store::Support::Unavailable(why) => {
                tracing::warn!(%why, "elasticsearch.failure_store is ignored: refused documents go to the dead-letter index");
                done.push(format!(
                    "failure store not enabled ({why}): refused documents go to the dead-letter index"
                ));
            }
        }
    }
    put(svc, &format!("_index_template/{logs_name}"), &logs).await?;
    done.push(format!(
        "index template {logs_name} for {}",
        logs["index_patterns"]
    ));
    if let Some(warning) = builtin_overlap(&es.index, cluster.distribution) {
        tracing::warn!("{warning}");
        done.push(format!("warning: {warning}"));
    }

    let dl_name = template_name(&es.dead_letter_index);
    let dl = dead_letter_template(&es.dead_letter_index);
    put(svc, &format!("_index_template/{dl_name}"), &dl).await?;
    done.push(format!(
        "index template {dl_name} for {}",
        dl["index_patterns"]
    ));
    Ok(done)
}

/// Installs the lifecycle policy when one is configured and the cluster can run it; returns its
/// name, or `None` (with the reason in `done`).
async fn lifecycle(
    svc: &Service,
    es: &ElasticsearchConfig,
    cluster: &Cluster,
    done: &mut Vec<String>,
) -> Result<Option<String>, BootstrapError> {
    if es.delete_after.is_none() && !es.data_stream {
        done.push("no lifecycle policy (elasticsearch.lifecycle.delete_after is not set)".into());
        return Ok(None);
    }
    let name = template_name(&es.index);
    match cluster.distribution {
        Distribution::Elasticsearch => {
            let (status, _) = call(svc, reqwest::Method::GET, "_ilm/status", None).await?;
            if status != 200 {
                done.push(format!(
                    "lifecycle policy skipped: this cluster has no ILM (GET /_ilm/status answered {status}); indices are kept until deleted by hand"
                ));
                return Ok(None);
            }
            put(svc, &format!("_ilm/policy/{name}"), &ilm_policy(es)).await?;
            done.push(format!("ILM policy {name}"));
        }
        Distribution::OpenSearch => {
            let path = format!("_plugins/_ism/policies/{name}");
            let (status, body) = call(svc, reqwest::Method::GET, &path, None).await?;
            let existing: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let policy = ism_policy(es);
            match status {
                200 => {
                    let q = format!(
                        "{path}?if_seq_no={}&if_primary_term={}",
                        existing["_seq_no"], existing["_primary_term"]
                    );
                    put(svc, &q, &policy).await?;
                }
                404 => put(svc, &path, &policy).await?,
                _ => {
                    done.push(format!(
                        "lifecycle policy skipped: this cluster has no ISM plugin ({path} answered {status}); indices are kept until deleted by hand"
                    ));
                    return Ok(None);
                }
            }
            done.push(format!("ISM policy {name}"));
        }
    }
    Ok(Some(name))
}

/// Runs the setup at agent start until it succeeds, with a capped backoff, so a cluster that is
/// unreachable at start never stops shipping (which retries on its own) nor crash-loops the pod.
/// `first` is told after the first attempt, whatever its result.
pub async fn keep_trying(
    svc: Arc<Service>,
    cfg: Arc<Config>,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut delay = Duration::from_secs(1);
    loop {
        match run(&svc, &cfg).await {
            Ok(done) => {
                for d in done {
                    tracing::info!(step = %d, "setup");
                }
                if let Some(f) = first.take() {
                    let _ = f.send(());
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "setup (index templates) failed; shipping goes on, setup is retried");
                if let Some(f) = first.take() {
                    let _ = f.send(());
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
}

pub(super) async fn call(
    svc: &Service,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, bytes::Bytes), BootstrapError> {
    svc.request(method, path, body)
        .await
        .map_err(BootstrapError::Unreachable)
}

async fn put(svc: &Service, path: &str, body: &Value) -> Result<(), BootstrapError> {
    let (status, resp) = call(svc, reqwest::Method::PUT, path, Some(body)).await?;
    expect_ok(
        &format!("PUT {}", path.split('?').next().unwrap_or(path)),
        status,
        &resp,
    )
}

pub(super) fn expect_ok(what: &str, status: u16, body: &[u8]) -> Result<(), BootstrapError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(body);
    Err(BootstrapError::Refused {
        what: what.to_string(),
        status,
        body: text.chars().take(500).collect(),
    })
}

/// A template's (or policy's) name from an index pattern: `logs-kubernetes-%Y.%m.%d` →
/// `sluice_logs-kubernetes`. Distinct patterns get distinct names, so several configurations
/// can share a cluster.
pub fn template_name(index: &IndexPattern) -> String {
    let stem: String = index
        .as_str()
        .replace("%Y", "")
        .replace("%m", "")
        .replace("%d", "")
        .replace("%%", "")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches(['-', '_']);
    format!("sluice_{stem}")
}

/// The index names a pattern can render to, as a template pattern: each date part and each
/// field reference becomes `*` ([`IndexPattern::glob`]).
pub fn index_glob(index: &IndexPattern) -> String {
    index.glob()
}

/// Elasticsearch's built-in template for `logs-*-*` (priority 100, data streams, its own
/// mappings), which names like `logs-<namespace>-<date>` also match.
const BUILTIN_LOGS: &str = "logs-*-*";

/// The warning for a log pattern whose names Elasticsearch's built-in `logs-*-*` template would
/// also match: ours wins by priority where it is installed, and where it is not (`setup: off`
/// and no `sluice setup`), those names become data streams with the built-in mappings.
pub fn builtin_overlap(index: &IndexPattern, distribution: Distribution) -> Option<String> {
    let glob = index_glob(index);
    (distribution == Distribution::Elasticsearch && globs_overlap(&glob, BUILTIN_LOGS)).then(|| {
        format!(
            "index pattern `{glob}` overlaps Elasticsearch's built-in `{BUILTIN_LOGS}` template (priority 100): sluice's template (priority {LOGS_PRIORITY}) takes these names while it is installed; without it they become data streams with the built-in mappings. Keep setup on, or pick a pattern outside `{BUILTIN_LOGS}` (e.g. `k8s-{{kubernetes.namespace}}-%Y.%m.%d`)"
        )
    })
}

/// Whether some name matches both globs (`*` is any run of characters, the rest literal).
pub fn globs_overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // seen[i][j]: the suffixes a[i..] and b[j..] were already found not to overlap.
    let mut seen = vec![vec![false; b.len() + 1]; a.len() + 1];
    fn go(a: &[char], b: &[char], i: usize, j: usize, seen: &mut [Vec<bool>]) -> bool {
        if seen[i][j] {
            return false;
        }
        let ok = match (a.get(i), b.get(j)) {
            (None, None) => true,
            (Some('*'), _) => go(a, b, i + 1, j, seen) || (j < b.len() && go(a, b, i, j + 1, seen)),
            (_, Some('*')) => go(a, b, i, j + 1, seen) || (i < a.len() && go(a, b, i + 1, j, seen)),
            (Some(x), Some(y)) => x == y && go(a, b, i + 1, j + 1, seen),
            _ => false,
        };
        if !ok {
            seen[i][j] = true;
        }
        ok
    }
    go(&a, &b, 0, 0, &mut seen)
}

fn keyword() -> Value {
    json!({"type": "keyword", "ignore_above": 1024})
}

fn name_object() -> Value {
    json!({"properties": {"name": keyword()}})
}

/// How the JSON app-log object is mapped so that no value can conflict and no key count or
/// depth is refused: Elasticsearch's `flattened` (7.3+), OpenSearch's `flat_object` (2.7+);
/// every leaf is a keyword there, searchable as `json.a.b: value`. An older OpenSearch gets
/// the object stored but not indexed (`enabled: false`): never refused, not searchable.
pub fn app_object_mapping(cluster: &Cluster) -> Value {
    match cluster.distribution {
        Distribution::Elasticsearch => json!({
            "type": "flattened",
            // The agent nests no deeper (appjson::DEPTH_LIMIT); the default of 20 would refuse.
            "depth_limit": DEPTH_LIMIT + 1,
            "ignore_above": VALUE_LIMIT,
        }),
        Distribution::OpenSearch if version_at_least(&cluster.version, 2, 7) => {
            json!({"type": "flat_object"})
        }
        Distribution::OpenSearch => json!({"type": "object", "enabled": false}),
    }
}

pub(super) fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// The mapping of a `parse.json.fields` type in `<target>_typed`. Malformed values are kept
/// out by the agent already (they go to `<target>_mistyped`); `ignore_malformed` is a second
/// guard where the type has it.
fn typed_mapping(ty: FieldType) -> Value {
    match ty {
        FieldType::Keyword => keyword(),
        FieldType::Long => json!({"type": "long", "ignore_malformed": true}),
        FieldType::Double => json!({"type": "double", "ignore_malformed": true}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Date => json!({
            "type": "date_nanos",
            "format": "strict_date_optional_time_nanos||epoch_millis",
            "ignore_malformed": true,
        }),
    }
}

/// The template for the log indices (or the data stream), with the document schema of the
/// README's "Documents" section.
pub fn logs_template(cfg: &Config, cluster: &Cluster, ilm_policy: Option<&str>) -> Value {
    let es = &cfg.elasticsearch;
    if es.compat == Compat::Fluentd {
        return fluentd::template(cfg, cluster, ilm_policy);
    }
    let kw = keyword();
    let labels = |path: &str, name: &str| {
        json!({ name: {
            "path_match": format!("kubernetes.{path}.*"),
            "match_mapping_type": "string",
            "mapping": keyword(),
        }})
    };
    let mut properties = json!({
        "@timestamp": {"type": "date_nanos"},
        "message": {"type": "text"},
        "tags": kw,
        "log": {"properties": {
            "iostream": kw, "level": kw, "offset": {"type": "long"}, "logger": kw,
            "file": {"properties": {"path": kw}},
            "origin": {"properties": {"file": {"properties": {"name": kw, "line": {"type": "long"}}}}},
        }},
        "trace": {"properties": {"id": kw}},
        "span": {"properties": {"id": kw}},
        "error": {"properties": {"message": {"type": "text"}, "stack_trace": {"type": "text", "index": false}}},
        "kubernetes": {"properties": {
            "namespace": kw,
            "pod": {"properties": {"name": kw, "uid": kw, "ip": kw}},
            "node": name_object(),
            "container": name_object(),
            "deployment": name_object(), "statefulset": name_object(),
            "daemonset": name_object(), "replicaset": name_object(),
            "job": name_object(), "cronjob": name_object(),
            "labels": {"type": "object", "dynamic": true},
            "annotations": {"type": "object", "dynamic": true},
            "namespace_labels": {"type": "object", "dynamic": true},
        }},
        "container": {"properties": {
            "id": kw, "runtime": kw,
            "image": {"properties": {"name": kw}},
        }},
        "host": name_object(),
        "orchestrator": {"properties": {"type": kw, "cluster": name_object()}},
        "agent": {"properties": {"name": kw, "type": kw, "version": kw}},
        "event": {"properties": {
            "original": {"type": "text", "index": false},
            // The app's own time: only RFC 3339 is written; a bad one must not refuse the line.
            "created": {"type": "date_nanos", "ignore_malformed": true},
        }},
    });
    // Written for `sluice.io/parser: json` pods even with parse.json off (encode.rs).
    let target = cfg.parse.json_target.as_deref().unwrap_or("json");
    properties[target] = app_object_mapping(cluster);
    if !cfg.parse.json_fields.is_empty() {
        let typed: serde_json::Map<String, Value> = cfg
            .parse
            .json_fields
            .iter()
            .map(|(k, t)| (k.clone(), typed_mapping(*t)))
            .collect();
        let mistyped: serde_json::Map<String, Value> = cfg
            .parse
            .json_fields
            .iter()
            .map(|(k, _)| (k.clone(), keyword()))
            .collect();
        properties[format!("{target}_typed")] = json!({"dynamic": false, "properties": typed});
        properties[format!("{target}_mistyped")] =
            json!({"dynamic": false, "properties": mistyped});
    }
    // Refused at setup (`run`) when the configured mode cannot be had; standard here then.
    let mode = storage::resolve(es.index_mode, cluster).unwrap_or(storage::IndexMode::Standard);
    let mut settings = Value::Object(storage::settings(mode));
    if let Some(p) = ilm_policy {
        settings["index.lifecycle.name"] = json!(p);
    }
    let mut t = json!({
        "index_patterns": [index_glob(&es.index)],
        "priority": LOGS_PRIORITY,
        "template": {
            "settings": settings,
            "mappings": {
                "dynamic_templates": [
                    labels("labels", "kubernetes_labels"),
                    labels("annotations", "kubernetes_annotations"),
                    labels("namespace_labels", "kubernetes_namespace_labels"),
                ],
                "properties": properties,
            },
        },
        "_meta": {"managed_by": "sluice", "version": env!("CARGO_PKG_VERSION")},
    });
    if es.data_stream {
        t["data_stream"] = json!({});
    }
    t
}

/// The dead-letter template: every field explicit, `dynamic: false`, nothing that can conflict,
/// the original document stored but not indexed (no `match_only_text`: not in every build).
pub fn dead_letter_template(index: &IndexPattern) -> Value {
    let kw = keyword();
    json!({
        "index_patterns": [index_glob(index)],
        "priority": DEAD_LETTER_PRIORITY,
        "template": {"mappings": {
            "dynamic": false,
            "properties": {
                // A document refused for its timestamp must still be kept here.
                "@timestamp": {"type": "date_nanos", "ignore_malformed": true},
                "message": {"type": "text"},
                "error": {"properties": {"type": kw, "code": kw, "message": {"type": "text"}}},
                "event": {"properties": {"original": {"type": "text", "index": false}}},
                "log": {"properties": {"file": {"properties": {"path": kw}}, "offset": {"type": "long"}}},
                "kubernetes": {"properties": {
                    "namespace": kw,
                    "pod": name_object(),
                    "container": name_object(),
                }},
                "host": name_object(),
                "sluice": {"properties": {
                    "target_index": kw,
                    // `event.original` cut to fit a request (see `dead_letter`): its whole size.
                    "original_truncated": {"type": "boolean"},
                    "original_bytes": {"type": "long"},
                }},
            },
        }},
        "_meta": {"managed_by": "sluice", "version": env!("CARGO_PKG_VERSION")},
    })
}

fn hours(d: Duration) -> String {
    format!("{}h", d.as_secs() / 3600)
}

/// ILM: roll a data stream over daily (or at 50 GB a shard); delete after `delete_after`.
pub fn ilm_policy(es: &ElasticsearchConfig) -> Value {
    let mut phases = json!({"hot": {"actions": {}}});
    if es.data_stream {
        phases["hot"]["actions"]["rollover"] =
            json!({"max_age": "1d", "max_primary_shard_size": "50gb"});
    }
    if let Some(d) = es.delete_after {
        phases["delete"] = json!({"min_age": hours(d), "actions": {"delete": {}}});
    }
    json!({"policy": {"phases": phases, "_meta": {"managed_by": "sluice"}}})
}

/// ISM (OpenSearch): the same, attached to new indices by its `ism_template`.
pub fn ism_policy(es: &ElasticsearchConfig) -> Value {
    let mut hot = json!({"name": "hot", "actions": [], "transitions": []});
    if es.data_stream {
        hot["actions"] =
            json!([{"rollover": {"min_index_age": "1d", "min_primary_shard_size": "50gb"}}]);
    }
    let mut states = vec![];
    if let Some(d) = es.delete_after {
        hot["transitions"] =
            json!([{"state_name": "delete", "conditions": {"min_index_age": hours(d)}}]);
        states.push(hot);
        states.push(json!({"name": "delete", "actions": [{"delete": {}}], "transitions": []}));
    } else {
        states.push(hot);
    }
    let pattern = index_glob(&es.index);
    json!({"policy": {
        "description": "sluice: Kubernetes container logs",
        "default_state": "hot",
        "states": states,
        "ism_template": [{"index_patterns": [pattern], "priority": LOGS_PRIORITY}],
    }})
}

mod fluentd;

#[cfg(test)]
mod tests;
