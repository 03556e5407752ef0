//! Pure: edits `prometheus.yml` as a generic YAML value.
//!
//! The document is never deserialized into a fixed struct: the Go service did that and
//! silently dropped every field it did not know. Here only one job's `static_configs` is
//! replaced (or the job is created); every other key, job and field stays as it was.
//! YAML comments and formatting are not kept when the document is written back (the YAML
//! library has no comment-preserving model); the values are.

use serde_norway::{Mapping, Value};

use crate::config::{FederationJob, ProbeJob};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("prometheus.yml is not valid YAML: {0}")]
    Parse(#[source] serde_norway::Error),
    #[error("prometheus.yml: the top level is not a mapping")]
    NotAMapping,
    #[error("prometheus.yml: scrape_configs is not a list")]
    ScrapeConfigsNotASequence,
    #[error("prometheus.yml: scrape_configs[{0}] is not a mapping")]
    JobNotAMapping(usize),
    #[error("prometheus.yml: job {0:?} appears more than once in scrape_configs")]
    DuplicateJob(String),
    #[error("cannot render prometheus.yml: {0}")]
    Render(#[source] serde_norway::Error),
}

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobChange {
    Created,
    Replaced,
    Unchanged,
}

/// Parses the document; an empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Value, EditError> {
    let v: Value = serde_norway::from_str(text).map_err(EditError::Parse)?;
    match v {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(_) => Ok(v),
        _ => Err(EditError::NotAMapping),
    }
}

/// Renders the document as YAML.
pub fn render(doc: &Value) -> Result<String, EditError> {
    serde_norway::to_string(doc).map_err(EditError::Render)
}

fn key(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Sets `static_configs` of the job named `job_name` in `scrape_configs`, creating the job
/// from `template` (which must not contain `static_configs`) when it is missing. Nothing else
/// in the document is touched. A second job with the same name is an error: Prometheus
/// rejects such a file, and guessing which one to edit would hide the problem.
pub fn set_static_configs(
    doc: &mut Value,
    job_name: &str,
    static_configs: Value,
    template: impl FnOnce() -> Mapping,
) -> Result<JobChange, EditError> {
    let root = doc.as_mapping_mut().ok_or(EditError::NotAMapping)?;
    let scrape = root.entry(key("scrape_configs")).or_insert(Value::Null);
    if scrape.is_null() {
        *scrape = Value::Sequence(Vec::new());
    }
    let jobs = scrape
        .as_sequence_mut()
        .ok_or(EditError::ScrapeConfigsNotASequence)?;

    let mut found = None;
    for (i, job) in jobs.iter().enumerate() {
        let job = job.as_mapping().ok_or(EditError::JobNotAMapping(i))?;
        if job.get("job_name").and_then(Value::as_str) == Some(job_name) {
            if found.is_some() {
                return Err(EditError::DuplicateJob(job_name.to_string()));
            }
            found = Some(i);
        }
    }

    match found {
        Some(i) => {
            // Checked above: every entry is a mapping.
            let job = jobs[i]
                .as_mapping_mut()
                .ok_or(EditError::JobNotAMapping(i))?;
            let sc = key("static_configs");
            if job.get(&sc) == Some(&static_configs) {
                return Ok(JobChange::Unchanged);
            }
            // Replacing an existing key keeps its position in the mapping.
            job.insert(sc, static_configs);
            Ok(JobChange::Replaced)
        }
        None => {
            let mut job = Mapping::new();
            job.insert(key("job_name"), key(job_name));
            for (k, v) in template() {
                job.insert(k, v);
            }
            job.insert(key("static_configs"), static_configs);
            jobs.push(Value::Mapping(job));
            Ok(JobChange::Created)
        }
    }
}

/// Settings of a newly created federation job (standard federation settings).
pub fn federation_job_template(job: &FederationJob) -> Mapping {
    let mut params = Mapping::new();
    params.insert(
        key("match[]"),
        Value::Sequence(job.match_selectors.iter().map(|s| key(s)).collect()),
    );
    let mut m = Mapping::new();
    m.insert(key("honor_labels"), Value::Bool(true));
    m.insert(key("metrics_path"), key("/federate"));
    m.insert(key("scheme"), key(job.scheme.as_str()));
    m.insert(key("params"), Value::Mapping(params));
    m
}

/// Settings of a newly created blackbox probe job (the blackbox exporter's standard
/// relabelling: the target becomes `?target=`, the exporter becomes the address).
pub fn probe_job_template(probe: &ProbeJob) -> Mapping {
    let mut params = Mapping::new();
    params.insert(key("module"), Value::Sequence(vec![key(&probe.module)]));
    let relabel = |pairs: &[(&str, Value)]| {
        Value::Mapping(pairs.iter().map(|(k, v)| (key(k), v.clone())).collect())
    };
    let mut m = Mapping::new();
    m.insert(key("metrics_path"), key("/probe"));
    m.insert(key("params"), Value::Mapping(params));
    m.insert(
        key("relabel_configs"),
        Value::Sequence(vec![
            relabel(&[
                ("source_labels", Value::Sequence(vec![key("__address__")])),
                ("target_label", key("__param_target")),
            ]),
            relabel(&[
                (
                    "source_labels",
                    Value::Sequence(vec![key("__param_target")]),
                ),
                ("target_label", key("instance")),
            ]),
            relabel(&[
                ("target_label", key("__address__")),
                ("replacement", key(&probe.exporter_address)),
            ]),
        ]),
    );
    m
}

/// A unified diff of two renderings, empty when they are equal.
pub fn unified_diff(old: &str, new: &str, name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (current)"), &format!("{name} (wanted)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scheme;
    use proptest::prelude::*;

    const RICH: &str = r#"
global:
  scrape_interval: 30s
  external_labels: { cluster: central, "weird key": [1, 2.5, null, true] }
rule_files: [/etc/prometheus/rules/*.yml]
alerting:
  alertmanagers:
    - static_configs: [{ targets: ["alertmanager:9093"] }]
some_future_field: { nested: { x: 1 } }
scrape_configs:
  - job_name: prometheus
    static_configs: [{ targets: ["localhost:9090"] }]
  - job_name: federate
    scrape_interval: 60s
    honor_labels: true
    metrics_path: /federate
    params: { "match[]": ['{job="kubernetes-pods"}'] }
    unknown_option: keep-me
    static_configs:
      - targets: [old.prometheus.internal]
        labels: { clusterID: old }
    relabel_configs: [{ source_labels: [clusterID], target_label: cluster }]
remote_write: [{ url: "http://thanos:19291/api/v1/receive" }]
"#;

    fn fed() -> FederationJob {
        FederationJob {
            job_name: "federate".into(),
            match_selectors: vec!["{job=\"x\"}".into()],
            scheme: Scheme::Http,
        }
    }

    fn targets(names: &[&str]) -> Value {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        crate::targets::to_yaml(&crate::targets::federation_static_configs(
            &[],
            &names,
            None,
        ))
    }

    #[test]
    fn replaces_only_static_configs_of_the_job() {
        let before = parse(RICH).unwrap();
        let mut doc = before.clone();
        let change = set_static_configs(
            &mut doc,
            "federate",
            targets(&["a.prometheus.internal."]),
            fed_template,
        )
        .unwrap();
        assert_eq!(change, JobChange::Replaced);
        let job = &doc["scrape_configs"][1];
        assert_eq!(
            job["static_configs"][0]["targets"][0].as_str(),
            Some("a.prometheus.internal")
        );
        assert_eq!(job["unknown_option"].as_str(), Some("keep-me"));
        // Keys keep their order: static_configs still sits before relabel_configs.
        let keys: Vec<_> = job
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "job_name",
                "scrape_interval",
                "honor_labels",
                "metrics_path",
                "params",
                "unknown_option",
                "static_configs",
                "relabel_configs"
            ]
        );
        // Everything else is equal.
        let mut a = before.clone();
        let mut b = doc.clone();
        a["scrape_configs"][1]
            .as_mapping_mut()
            .unwrap()
            .remove("static_configs");
        b["scrape_configs"][1]
            .as_mapping_mut()
            .unwrap()
            .remove("static_configs");
        assert_eq!(a, b);
        // And it survives rendering.
        assert_eq!(parse(&render(&doc).unwrap()).unwrap(), doc);
    }

    fn fed_template() -> Mapping {
        federation_job_template(&fed())
    }

    #[test]
    fn second_run_is_unchanged() {
        let mut doc = parse(RICH).unwrap();
        set_static_configs(
            &mut doc,
            "federate",
            targets(&["a.prometheus.internal."]),
            fed_template,
        )
        .unwrap();
        let again = set_static_configs(
            &mut doc,
            "federate",
            targets(&["a.prometheus.internal."]),
            fed_template,
        )
        .unwrap();
        assert_eq!(again, JobChange::Unchanged);
    }

    #[test]
    fn regression_missing_job_is_created_not_a_panic() {
        let mut doc =
            parse("global: { scrape_interval: 15s }\nscrape_configs:\n  - job_name: prometheus\n")
                .unwrap();
        let change = set_static_configs(
            &mut doc,
            "federate",
            targets(&["a.prometheus.internal."]),
            fed_template,
        )
        .unwrap();
        assert_eq!(change, JobChange::Created);
        let out = render(&doc).unwrap();
        assert!(out.contains("- job_name: federate\n  honor_labels: true\n  metrics_path: /federate\n  scheme: http\n  params:\n    match[]:\n    - '{job=\"x\"}'\n  static_configs:"), "{out}");
    }

    #[test]
    fn empty_document_gets_scrape_configs() {
        let mut doc = parse("").unwrap();
        assert_eq!(
            set_static_configs(&mut doc, "federate", targets(&[]), fed_template).unwrap(),
            JobChange::Created
        );
        assert_eq!(
            doc["scrape_configs"][0]["job_name"].as_str(),
            Some("federate")
        );
    }

    #[test]
    fn rejects_duplicate_jobs_and_bad_shapes() {
        let mut dup =
            parse("scrape_configs: [{job_name: federate}, {job_name: federate}]").unwrap();
        assert!(matches!(
            set_static_configs(&mut dup, "federate", targets(&[]), fed_template),
            Err(EditError::DuplicateJob(_))
        ));
        let mut bad = parse("scrape_configs: {job_name: federate}").unwrap();
        assert!(matches!(
            set_static_configs(&mut bad, "federate", targets(&[]), fed_template),
            Err(EditError::ScrapeConfigsNotASequence)
        ));
        assert!(matches!(parse("- a\n- b\n"), Err(EditError::NotAMapping)));
        assert!(matches!(parse("a: [\n"), Err(EditError::Parse(_))));
    }

    #[test]
    fn diff_shows_the_target_change() {
        let old = parse(RICH).unwrap();
        let mut new = old.clone();
        set_static_configs(
            &mut new,
            "federate",
            targets(&["a.prometheus.internal."]),
            fed_template,
        )
        .unwrap();
        let d = unified_diff(
            &render(&old).unwrap(),
            &render(&new).unwrap(),
            "prometheus.yml",
        );
        assert!(d.contains("-    - old.prometheus.internal"), "{d}");
        assert!(d.contains("+    - a.prometheus.internal"), "{d}");
        assert!(unified_diff("a\n", "a\n", "x").is_empty());
    }

    // ------------------------------------------------------------------ property tests

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".*".prop_map(Value::String),
            prop::sample::select(vec![
                "true",
                "null",
                "~",
                "1e3",
                "0x1F",
                "yes",
                "NO",
                "-",
                "- x",
                ": x",
                "#c",
                "'q'",
                "\"d\"",
                "*a",
                "&b",
                "!t",
                "%p",
                "@",
                "`",
                "15s",
                "1.0",
                ".inf",
                "2001-01-01"
            ])
            .prop_map(|s| Value::String(s.to_string())),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Sequence),
                prop::collection::vec((".*", inner), 0..6).prop_map(|kv| Value::Mapping(
                    kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                )),
            ]
        })
    }

    /// A document: arbitrary top-level keys, plus scrape_configs with arbitrary jobs; the
    /// federation job is present or not.
    fn document() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec(("[a-z_]{1,12}", value()), 0..6),
            prop::collection::vec(prop::collection::vec(("[a-z_]{1,12}", value()), 0..5), 0..5),
            any::<bool>(),
            prop::collection::vec(("[a-z_]{1,12}", value()), 0..4),
        )
            .prop_map(|(top, jobs, with_fed, fed_fields)| {
                let mut root = Mapping::new();
                for (k, v) in top {
                    if k != "scrape_configs" {
                        root.insert(Value::String(k), v);
                    }
                }
                let mut seq = Vec::new();
                for (i, fields) in jobs.into_iter().enumerate() {
                    let mut job = Mapping::new();
                    job.insert(key("job_name"), Value::String(format!("job{i}")));
                    for (k, v) in fields {
                        if k != "job_name" {
                            job.insert(Value::String(k), v);
                        }
                    }
                    seq.push(Value::Mapping(job));
                }
                if with_fed {
                    let mut job = Mapping::new();
                    job.insert(key("job_name"), key("federate"));
                    for (k, v) in fed_fields {
                        if k != "job_name" {
                            job.insert(Value::String(k), v);
                        }
                    }
                    let at = seq.len() / 2;
                    seq.insert(at, Value::Mapping(job));
                }
                root.insert(key("scrape_configs"), Value::Sequence(seq));
                Value::Mapping(root)
            })
    }

    /// The document less what the update owns: the federation job's static_configs, and the
    /// whole job when the update created it.
    fn without_owned(doc: &Value, created: bool) -> Value {
        let mut doc = doc.clone();
        let jobs = doc["scrape_configs"].as_sequence_mut().unwrap();
        if created {
            jobs.retain(|j| j["job_name"].as_str() != Some("federate"));
        } else {
            for j in jobs.iter_mut() {
                if j["job_name"].as_str() == Some("federate") {
                    j.as_mapping_mut().unwrap().remove("static_configs");
                }
            }
        }
        doc
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn update_keeps_everything_else(doc in document(), names in prop::collection::vec("[a-z0-9-]{1,10}", 0..8)) {
            // Round trip through text, as the real update does.
            let text = render(&doc).unwrap();
            let before = parse(&text).unwrap();
            prop_assert_eq!(&before, &doc, "render/parse is not a round trip:\n{}", text);

            let names: Vec<String> = names.iter().map(|n| format!("{n}.prometheus.internal.")).collect();
            let wanted = crate::targets::to_yaml(&crate::targets::federation_static_configs(&[], &names, Some(9090)));
            let mut after = before.clone();
            let change = set_static_configs(&mut after, "federate", wanted.clone(), fed_template).unwrap();
            let after = parse(&render(&after).unwrap()).unwrap();

            prop_assert_eq!(without_owned(&before, change == JobChange::Created), without_owned(&after, change == JobChange::Created));
            let fed_job = after["scrape_configs"].as_sequence().unwrap().iter()
                .find(|j| j["job_name"].as_str() == Some("federate")).unwrap();
            prop_assert_eq!(&fed_job["static_configs"], &wanted);

            // A second update with the same targets changes nothing.
            let mut again = after.clone();
            prop_assert_eq!(set_static_configs(&mut again, "federate", wanted, fed_template).unwrap(), JobChange::Unchanged);
            prop_assert_eq!(again, after);
        }
    }
}
