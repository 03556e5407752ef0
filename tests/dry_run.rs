//! `sluice test`, the dry run: the real binary on files and stdin, its exit codes, and the
//! `_id`s and `_index`es it prints compared with what the real agent ships for the same files
//! to the real Elasticsearch.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Agent, Es, Node, ts, unique};

const WAIT: Duration = Duration::from_secs(180);

/// Runs `sluice test --config CONFIG ARGS...` with `stdin`.
fn sluice_test(config: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("test")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice test");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The printed documents.
fn documents(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_dry_run_prints_the_ids_and_indices_the_agent_ships() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("dry-run");
    let pattern = format!("{index}-*");
    let config = node.config(
        &format!("{index}-%Y.%m.%d"),
        "parse:\n  multiline:\n    parsers: [java]\n",
    );
    let cri = node.add_pod("shop", "web-1", "app", false);
    let docker = node.add_pod("shop", "web-2", "app", true);
    for pod in [&cri, &docker] {
        pod.line(&ts(0), "stdout", r#"{"level":"info","msg":"started"}"#);
        pod.line(
            &ts(1),
            "stderr",
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
        );
        pod.line(&ts(1), "stderr", "\tat com.example.App.main(App.java:3)");
        pod.partial(&ts(2), "stdout", "split ");
        pod.line(&ts(2), "stdout", "line");
        // The next day: another index.
        pod.line("2026-11-25T00:00:01.000000001Z", "stdout", "tomorrow");
    }
    cri.append_raw(b"not a container log line\n");

    let mut dry = BTreeSet::new();
    for pod in [&cri, &docker] {
        // The agent finds the pod's file by its /var/log/containers link.
        let out = sluice_test(&config, &[pod.link.to_str().unwrap()], b"");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for d in documents(&out) {
            dry.insert((
                d["_index"].as_str().unwrap().to_string(),
                d["_id"].as_str().unwrap().to_string(),
                d["doc"]["message"].as_str().unwrap().to_string(),
            ));
        }
        // The real file gives the same ids (its source is the container, not the name).
        let real = sluice_test(&config, &[pod.path.to_str().unwrap()], b"");
        let ids = |o: &Output| -> BTreeSet<String> {
            documents(o)
                .iter()
                .map(|d| d["_id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(&real), ids(&out));
    }
    assert_eq!(dry.len(), 9, "{dry:#?}");
    // "tomorrow" twice, and the malformed line after it (the file's clock: its last time).
    assert_eq!(
        dry.iter()
            .filter(|(i, _, _)| i.ends_with("2026.11.25"))
            .count(),
        3
    );

    let agent = Agent::start(&config);
    let got = es.wait_count(&pattern, dry.len() as u64, WAIT);
    assert_eq!(got, dry.len() as u64, "agent log:\n{}", agent.log_text());
    agent.stop();
    let hits = es.post(
        &format!("{pattern}/_search"),
        &serde_json::json!({"size": 100}),
    );
    let shipped: BTreeSet<(String, String, String)> = hits["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["_index"].as_str().unwrap().to_string(),
                h["_id"].as_str().unwrap().to_string(),
                h["_source"]["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(shipped, dry);
}

/// A configuration that needs no server: `sluice test` never connects.
fn offline_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("sluice.yaml");
    std::fs::write(
        &p,
        format!(
            "state_dir: {}\nnode_name: n\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9\"]\n  index: \"t-%Y.%m.%d\"\n{extra}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    p
}

const AS_POD: &str = "/var/log/pods/shop_web-1_0000-uid/app/0.log";

#[test]
fn stdin_pod_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = offline_config(dir.path(), "input:\n  max_line_bytes: 1KiB\n");
    let input = format!(
        "{ts} stdout F hello\n{ts} stdout F {{\"msg\":\"json\",\"level\":\"warn\"}}\n",
        ts = ts(0)
    );

    // stdin, as a pod's file: documents with the path's metadata, exit 0.
    let out = sluice_test(&config, &["--path-as", AS_POD], input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = documents(&out);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["_index"], "t-2026.11.24");
    assert_eq!(docs[0]["_id"].as_str().unwrap().len(), 22);
    assert_eq!(docs[0]["doc"]["kubernetes"]["namespace"], "shop");
    assert_eq!(docs[1]["doc"]["log"]["level"], "warn");
    // `-` is stdin too.
    let dash = sluice_test(&config, &["--path-as", AS_POD, "-"], input.as_bytes());
    assert_eq!(documents(&dash), docs);

    // A malformed line is shipped raw: reported, still exit 0.
    let out = sluice_test(&config, &[], b"garbage\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("<stdin>:0: malformed line"),
        "{}",
        stderr(&out)
    );
    assert_eq!(documents(&out).len(), 1);

    // A cut line: exit 1, with the reason at its offset.
    let long = format!("{} stdout F {}\n", ts(1), "x".repeat(2000));
    let out = sluice_test(&config, &[], format!("{input}{long}").as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("<stdin>:{}: truncated", input.len())),
        "{}",
        stderr(&out)
    );
    assert_eq!(documents(&out).len(), 3);

    // The pod excludes itself: nothing printed, exit 1.
    let pod = dir.path().join("pod.json");
    std::fs::write(
        &pod,
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop","uid":"0000-uid","labels":{"app":"web"},"annotations":{"sluice.io/exclude":"true"}}}"#,
    )
    .unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, &input).unwrap();
    let out = sluice_test(
        &config,
        &["--pod", pod.to_str().unwrap(), log.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(documents(&out), Vec::<Value>::new());
    assert!(
        stderr(&out).contains(&format!("{}:0: dropped: excluded", log.display())),
        "{}",
        stderr(&out)
    );

    // The pod's labels, for a file whose path names no pod.
    std::fs::write(
        &pod,
        r#"{"metadata":{"name":"web-1","namespace":"shop","uid":"0000-uid","labels":{"app":"web"}},"spec":{"containers":[{"name":"app"}]}}"#,
    )
    .unwrap();
    let out = sluice_test(
        &config,
        &["--pod", pod.to_str().unwrap(), log.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = documents(&out);
    assert_eq!(docs[0]["doc"]["kubernetes"]["labels"]["app"], "web");
    assert_eq!(docs[0]["doc"]["kubernetes"]["container"]["name"], "app");

    // Errors exit 2: a broken configuration, a pod that is not JSON, a missing file.
    let broken = offline_config(dir.path(), "input:\n  max_line_bytes: 1B\n");
    let out = sluice_test(&broken, &[], input.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("max_line_bytes"), "{}", stderr(&out));
    let config = offline_config(dir.path(), "");
    std::fs::write(&pod, "not json").unwrap();
    let out = sluice_test(&config, &["--pod", pod.to_str().unwrap()], input.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a Pod object"),
        "{}",
        stderr(&out)
    );
    let out = sluice_test(&config, &["/nonexistent/0.log"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
