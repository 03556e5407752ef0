//! The documentation checked against the code, so it stays true: the reference configuration,
//! copied as it is (with the files it names provided), and every other configuration shown
//! pass the real `sluice check`; every metric the docs name is one the agent registers; every
//! relative link (and its `#anchor`) resolves. No server is needed: these read the repository,
//! run the agent binary's `check` and render the agent's own metrics registry.
//! (The dashboards and alert rules are checked against a real agent in deploy_artifacts.rs.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

/// The documents these checks cover: the README, the architecture, everything under docs/, and
/// the chart's README (it names metrics and links to the configuration reference).
fn documents() -> Vec<String> {
    let mut docs = vec![
        "README.md".to_string(),
        "ARCHITECTURE.md".to_string(),
        "deploy/helm/sluice/README.md".to_string(),
    ];
    let mut under: Vec<String> = std::fs::read_dir(repo_path("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    under.sort();
    assert!(
        under.contains(&"docs/configuration.md".to_string()),
        "{under:?}"
    );
    docs.extend(under);
    docs
}

/// Where the configuration reference lives, and the heading of its section.
const REFERENCE: (&str, &str) = ("docs/configuration.md", "# Configuration reference");

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn repo(path: &str) -> String {
    let p = repo_path(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The first ```yaml block after `heading` in a Markdown text.
fn yaml_block<'a>(doc: &'a str, heading: &str) -> &'a str {
    let section = doc
        .split_once(&format!("\n{heading}\n"))
        .or_else(|| {
            doc.strip_prefix(&format!("{heading}\n"))
                .map(|rest| ("", rest))
        })
        .unwrap_or_else(|| panic!("no `{heading}` section"))
        .1;
    let block = section
        .split_once("```yaml\n")
        .expect("no ```yaml block in the section")
        .1;
    block.split_once("\n```").expect("unterminated ```yaml").0
}

/// `sluice check` of a configuration text; returns (success, stdout + stderr).
fn check(text: &str, dir: &Path) -> (bool, String) {
    let path = dir.join("sluice.yaml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    // The reference is copied into a clean environment: only what a DaemonSet pod is given
    // (NODE_NAME from the downward API); nothing of this machine's credentials or cluster.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AWS_") || k.starts_with("KUBERNETES_") || k.starts_with("ES_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(["check", "--config"])
        .arg(&path)
        .env("NODE_NAME", "docs-node")
        .output()
        .expect("run sluice check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_reference_configuration_passes_sluice_check() {
    let (file, heading) = REFERENCE;
    let doc = repo(file);
    let reference = yaml_block(&doc, heading);
    // A guard against checking a fragment: the reference shows every section.
    for section in [
        "input:",
        "parse:",
        "elasticsearch:",
        "telemetry:",
        "kubernetes:",
    ] {
        assert!(
            reference.lines().any(|l| l.starts_with(section)),
            "{file}: the reference has no `{section}` section:\n{reference}"
        );
    }
    // The files it names (a password, a CA bundle, a client certificate) are provided: each
    // absolute path of a `*_file` key that is not commented out points into a temp dir, under
    // the same name. Keys and every other value are kept as they are.
    let dir = tempfile::tempdir().unwrap();
    let file_key = Regex::new(r"(?m)^(\s*[a-z_]+_file:\s*)(/[^\s#]+)").unwrap();
    let mut provided = 0;
    let config = file_key.replace_all(reference, |c: &regex::Captures| {
        let name = Path::new(&c[2]).file_name().unwrap().to_owned();
        let path = dir.path().join(name);
        std::fs::write(&path, "placeholder\n").unwrap();
        provided += 1;
        format!("{}{}", &c[1], path.display())
    });
    assert!(
        provided >= 2,
        "no files named in the reference:\n{reference}"
    );
    let (ok, out) = check(&config, dir.path());
    assert!(
        ok,
        "{file}: the reference configuration is refused:\n{out}\n{config}"
    );
    assert!(out.contains("configuration is valid"), "{out}");
    assert!(out.contains("node: docs-node"), "{out}");
}

#[test]
fn every_configuration_shown_in_the_docs_passes_sluice_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for file in [
        "README.md",
        "docs/configuration.md",
        "docs/migrating-from-fluentd.md",
    ] {
        let doc = repo(file);
        for block in doc.split("```yaml\n").skip(1) {
            let block = block.split_once("\n```").expect("unterminated ```yaml").0;
            if block.contains("_file: /") {
                continue; // the reference: checked with its files provided, above
            }
            let (ok, out) = check(block, dir.path());
            assert!(ok, "{file}: this configuration is refused:\n{out}\n{block}");
            checked += 1;
        }
    }
    assert!(checked >= 1, "the README shows no minimal configuration");
}

/// Every metric name the agent exports: sample names and, from the `# TYPE` lines, the names a
/// family has once it has series (`_total` of a counter; `_bucket`, `_sum`, `_count`).
fn exported_metrics() -> BTreeSet<String> {
    let metrics = sluice::telemetry::Metrics::new();
    // A family (by outcome) is rendered once it has a series: give each one, as a run does.
    metrics.item("created");
    metrics.request("ok");
    let text = metrics.render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                panic!("bad TYPE line {line}");
            };
            names.insert(name.to_string());
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{s}"));
                    }
                }
                _ => {}
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            names.insert(line.split(['{', ' ']).next().unwrap().to_string());
        }
    }
    names
}

#[test]
fn every_metric_named_in_the_docs_is_exported() {
    let exported = exported_metrics();
    assert!(exported.contains("sluice_bulk_items_total"), "{exported:?}");
    let metric = Regex::new(r"\bsluice_[a-z0-9_]+").unwrap();
    let mut named = 0;
    for file in documents() {
        let doc = repo(&file);
        let unknown: BTreeSet<&str> = metric
            .find_iter(&doc)
            .map(|m| m.as_str())
            .inspect(|_| named += 1)
            .filter(|n| !exported.contains(*n))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the agent does not export: {unknown:?}\n(exported: {exported:?})"
        );
    }
    assert!(
        named >= 10,
        "too few metric names found in the docs ({named})"
    );
}

/// GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces → `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut checked = 0;
    for file in documents() {
        let doc = repo(&file);
        let base = repo_path(&file).parent().unwrap().to_path_buf();
        for c in link.captures_iter(&doc) {
            let target = &c[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target, None),
            };
            let resolved = if path.is_empty() {
                repo_path(&file)
            } else {
                base.join(path)
            };
            assert!(
                resolved.exists(),
                "{file}: link `{target}` points to {}, which does not exist",
                resolved.display()
            );
            if let Some(fragment) = fragment {
                let text = std::fs::read_to_string(&resolved).unwrap();
                assert!(
                    anchors(&text).contains(fragment),
                    "{file}: link `{target}`: no heading `#{fragment}` in {}",
                    resolved.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "too few links found ({checked})");
}
