//! End to end against the real Elasticsearch: container log files in both formats go in, exactly
//! the expected documents come out, with the schema's fields; restarts neither lose nor
//! duplicate.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{Agent, Es, Node, messages, ts, unique};

const WAIT: Duration = Duration::from_secs(180);

#[test]
fn lines_from_several_pods_in_both_formats_arrive_exactly_once_with_their_fields() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("e2e-formats");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");

    let pods = [
        node.add_pod("shop", "web-1", "nginx", false),
        node.add_pod("shop", "web-2", "nginx", true),
        node.add_pod("payments", "api-0", "app", false),
        node.add_pod("payments", "api-1", "app", true),
    ];
    let per_pod = 250;
    let mut expected = BTreeSet::new();
    for (p, pod) in pods.iter().enumerate() {
        for i in 0..per_pod {
            let msg = format!("pod={p} seq={i} GET /cart \"quoted\" \\ tab\tend");
            let stream = if i % 5 == 0 { "stderr" } else { "stdout" };
            if i % 10 == 3 {
                // A long line the runtime split into three partial records.
                let (a, rest) = msg.split_at(6);
                let (b, c) = rest.split_at(6);
                pod.partial(&ts(i), stream, a);
                pod.partial(&ts(i), stream, b);
                pod.line(&ts(i), stream, c);
            } else {
                pod.line(&ts(i), stream, &msg);
            }
            expected.insert(msg);
        }
    }

    let agent = Agent::start(&config);
    let n = expected.len() as u64;
    let got = es.wait_count(&pattern, n, WAIT);
    assert_eq!(
        got,
        n,
        "documents in Elasticsearch; agent log:\n{}",
        agent.log_text()
    );
    agent.stop();

    let docs = es.all_docs(&pattern);
    assert_eq!(docs.len() as u64, n);
    let seen = messages(&docs);
    assert!(
        seen.values().all(|&c| c == 1),
        "duplicates: {:?}",
        seen.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "messages differ"
    );

    for d in &docs {
        let msg = d["message"].as_str().unwrap();
        let p: usize = msg[4..5].parse().unwrap();
        let i: u64 = msg
            .split("seq=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let pod = &pods[p];
        assert_eq!(d["@timestamp"], ts(i), "{d}");
        assert_eq!(
            d["log"]["iostream"],
            if i.is_multiple_of(5) {
                "stderr"
            } else {
                "stdout"
            },
            "{d}"
        );
        assert_eq!(d["kubernetes"]["namespace"], pod.namespace.as_str());
        assert_eq!(d["kubernetes"]["pod"]["name"], pod.pod.as_str());
        assert_eq!(d["kubernetes"]["pod"]["uid"], pod.uid.as_str());
        assert_eq!(d["kubernetes"]["container"]["name"], pod.container.as_str());
        assert_eq!(d["container"]["id"], pod.container_id.as_str());
        assert_eq!(d["kubernetes"]["node"]["name"], "test-node");
        assert_eq!(d["orchestrator"]["cluster"]["name"], "test-cluster");
        assert_eq!(d["log"]["file"]["path"], pod.link.to_str().unwrap());
        assert!(d["log"]["offset"].is_u64());
        assert_eq!(d["_id"].as_str().unwrap().len(), 22);
    }
    // The index is the event's date, not today's.
    let indices = es.get(&format!("_cat/indices/{pattern}?format=json"));
    let names: Vec<&str> = indices
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{index}-2026.11.24").as_str()]);
}

#[test]
fn restart_neither_loses_nor_duplicates_and_joins_a_line_split_across_it() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("e2e-restart");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let cri = node.add_pod("ns", "cri-pod", "c", false);
    let docker = node.add_pod("ns", "docker-pod", "c", true);

    for i in 0..300 {
        cri.line(&ts(i), "stdout", &format!("cri first-run {i}"));
        docker.line(&ts(i), "stdout", &format!("docker first-run {i}"));
    }
    let agent = Agent::start(&config);
    assert_eq!(
        es.wait_count(&pattern, 600, WAIT),
        600,
        "log:\n{}",
        agent.log_text()
    );
    // The first half of a long line is written just before the stop, the rest after the restart.
    // (Written earlier, it would rightly be flushed on its own once idle for the partial-line
    // timeout, 1 s by default.)
    cri.partial(&ts(400), "stdout", "split-across-");
    agent.stop();

    // Another stream may interleave; the next stdout record ends the split line.
    cri.line(&ts(401), "stderr", "stderr between the halves");
    cri.line(&ts(402), "stdout", "the-restart");
    for i in 0..300 {
        cri.line(&ts(500 + i), "stdout", &format!("cri second-run {i}"));
        docker.line(&ts(500 + i), "stdout", &format!("docker second-run {i}"));
    }

    let agent = Agent::start(&config);
    let expected = 600 + 600 + 2;
    assert_eq!(
        es.wait_count(&pattern, expected, WAIT),
        expected,
        "log:\n{}",
        agent.log_text()
    );
    // Give a wrongly re-sent batch the time to show up before counting again.
    std::thread::sleep(Duration::from_secs(1));
    agent.stop();

    let docs = es.all_docs(&pattern);
    let seen = messages(&docs);
    assert_eq!(docs.len() as u64, expected, "document count");
    assert!(seen.values().all(|&c| c == 1), "duplicates found");
    assert_eq!(
        seen.get("split-across-the-restart"),
        Some(&1),
        "joined line missing: {:?}",
        seen.keys().rev().take(5).collect::<Vec<_>>()
    );
    for i in 0..300 {
        for m in [
            format!("cri first-run {i}"),
            format!("docker second-run {i}"),
        ] {
            assert_eq!(seen.get(&m), Some(&1), "{m}");
        }
    }
}

#[test]
fn a_malformed_line_is_shipped_raw_and_tagged_not_dropped() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("e2e-malformed");
    let config = node.config(&index, "");
    let pod = node.add_pod("ns", "p", "c", false);
    pod.line(&ts(1), "stdout", "before");
    pod.append_raw(b"this is not a CRI record\n");
    pod.line(&ts(2), "stdout", "after");

    let agent = Agent::start(&config);
    assert_eq!(
        es.wait_count(&index, 3, WAIT),
        3,
        "log:\n{}",
        agent.log_text()
    );
    agent.stop();
    let docs = es.all_docs(&index);
    let bad: Vec<_> = docs
        .iter()
        .filter(|d| d["message"] == "this is not a CRI record")
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["tags"], serde_json::json!(["malformed"]));
    assert_eq!(bad[0]["kubernetes"]["pod"]["name"], "p");
}

#[test]
fn check_rejects_an_unknown_key_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "state_dir: /tmp/x\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n  indx: foo\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("indx"), "{err}");
}
