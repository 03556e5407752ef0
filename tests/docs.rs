//! The documentation checked against the code, so it stays true: the reference configuration,
//! copied as it is (with the files it names provided), passes the real `sluice check`.
//! No server is needed: these read the repository and run the agent binary's `check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

/// Where the configuration reference lives, and the heading of its section.
const REFERENCE: (&str, &str) = ("README.md", "## Configuration reference");

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
