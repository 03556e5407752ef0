//! Replays land where the first copy did, and two files never share an id space, against the
//! real agent and the real Elasticsearch:
//! - a line without a timestamp of its own takes a time the file itself reproduces (the last
//!   timestamp before it, else the file's birth time), so its index is the same after a replay;
//! - two containers whose logs start with the same line keep all their events, while a rotated
//!   file replayed by a fresh agent still gets the ids it had as the live file.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::{Agent, Es, Node, messages, serve_metrics, unique};

const WAIT: Duration = Duration::from_secs(120);

/// Waits (bounded) until this agent has had `n` events acknowledged (created or duplicates).
fn wait_delivered(agent: &Agent, n: f64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let m = agent.metrics();
        if m.get("sluice_events_delivered_total") >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}\nlog:\n{}",
            m.show("sluice_events"),
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn by_message(docs: &[Value]) -> BTreeMap<String, Value> {
    docs.iter()
        .map(|d| (d["message"].as_str().unwrap_or("").to_string(), d.clone()))
        .collect()
}

/// The index each document lives in, by message.
fn indices(es: &Es, pattern: &str) -> BTreeMap<String, String> {
    let r = es.post(
        &format!("{pattern}/_search"),
        &serde_json::json!({"size": 100, "_source": ["message"]}),
    );
    r["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["_source"]["message"].as_str().unwrap().to_string(),
                h["_index"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// An RFC 3339 UTC time without trailing zeros in its fraction (`…58.500Z` → `…58.5Z`,
/// `…59.000Z` → `…59Z`), so that times compare as instants whatever the source's spelling.
fn canonical(t: &str) -> String {
    let Some((head, frac)) = t.strip_suffix('Z').and_then(|t| t.split_once('.')) else {
        return t.to_string();
    };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{frac}Z")
    }
}

#[test]
fn lines_without_a_timestamp_take_one_the_file_reproduces_and_a_replay_adds_nothing() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("replay-ts");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);

    // A day long past: "now" would put the malformed lines into today's index.
    let a = node.add_pod("shop", "old", "app", false);
    a.line("2020-01-01T23:59:58.5Z", "stdout", "valid before");
    a.append_raw(b"no timestamp of its own\n");
    a.append_raw(b"2020-01-01T23:59:59Z stdin X own timestamp, bad stream\n");
    a.append_raw(b"{not cri at all}\n");
    a.line("2020-01-02T00:00:01Z", "stdout", "valid after");
    // A file whose first line has no timestamp: the file's birth time.
    let b = node.add_pod("shop", "banner", "app", false);
    b.append_raw(b"=== fixed banner without a timestamp ===\n");
    b.line("2020-03-03T03:03:03Z", "stdout", "after the banner");
    let birth = std::fs::metadata(&b.path).unwrap().created().unwrap();
    let mut birth_ts = Vec::new();
    sluice::sink::elasticsearch::encode::format_rfc3339(birth, &mut birth_ts);
    let birth_ts = String::from_utf8(birth_ts).unwrap();

    let agent = Agent::start(&config);
    assert_eq!(es.wait_count(&pattern, 7, WAIT), 7, "{}", agent.log_text());
    agent.stop();
    // After a stop the agent resumes at its checkpoint: a malformed line written now must find
    // the last timestamp before the checkpoint in the file.
    a.append_raw(b"appended while the agent was stopped\n");
    let agent = Agent::start(&config);
    assert_eq!(es.wait_count(&pattern, 8, WAIT), 8, "{}", agent.log_text());
    agent.stop();

    let docs = by_message(&es.all_docs(&pattern));
    // As an instant: a logsdb index (synthetic `_source`) gives `23:59:58.500Z` for the
    // `23:59:58.5Z` that was sent.
    let ts = |m: &str| canonical(docs[m]["@timestamp"].as_str().unwrap());
    assert_eq!(ts("no timestamp of its own"), "2020-01-01T23:59:58.5Z");
    assert_eq!(
        ts("2020-01-01T23:59:59Z stdin X own timestamp, bad stream"),
        "2020-01-01T23:59:59Z"
    );
    assert_eq!(ts("{not cri at all}"), "2020-01-01T23:59:59Z");
    assert_eq!(
        ts("appended while the agent was stopped"),
        "2020-01-02T00:00:01Z"
    );
    assert_eq!(
        ts("=== fixed banner without a timestamp ==="),
        canonical(&birth_ts)
    );
    let idx = indices(&es, &pattern);
    assert_eq!(
        idx["no timestamp of its own"],
        format!("{index}-2020.01.01")
    );
    assert_eq!(
        idx["appended while the agent was stopped"],
        format!("{index}-2020.01.02")
    );

    // A replay of everything (checkpoint gone): the same times, the same indices, no copy.
    std::fs::remove_file(node.state_dir().join("checkpoints.json")).unwrap();
    let agent = Agent::start(&config);
    wait_delivered(&agent, 8.0);
    agent.stop();
    let again = es.all_docs(&pattern);
    assert_eq!(again.len(), 8, "{:?}", messages(&again));
    assert_eq!(by_message(&again), docs);
}

#[test]
fn two_containers_whose_logs_start_with_the_same_line_keep_all_their_events() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("replay-ids");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);
    // Replayed logs: the same content in two pods, and a banner without a timestamp.
    let content: Vec<u8> = (0..100)
        .flat_map(|i| {
            format!(
                "2026-11-24T10:00:{:02}.{i:03}Z stdout F event {i}\n",
                i % 60
            )
            .into_bytes()
        })
        .collect();
    let pods = [
        node.add_pod("shop", "replica-a", "app", false),
        node.add_pod("shop", "replica-b", "app", false),
        node.add_pod("blue", "replica-a", "app", false),
    ];
    for p in &pods {
        p.append_raw(b"=== banner ===\n");
        p.append_raw(&content);
    }
    let agent = Agent::start(&config);
    let n = 3 * 101;
    assert_eq!(es.wait_count(&pattern, n, WAIT), n, "{}", agent.log_text());

    // A kubelet rotation of one of them, then more lines in its new file.
    let rotated = pods[0].path.with_file_name("0.log.20261124-101500");
    std::fs::rename(&pods[0].path, &rotated).unwrap();
    pods[0].line("2026-11-24T10:05:00Z", "stdout", "after the rotation");
    assert_eq!(
        es.wait_count(&pattern, n + 1, WAIT),
        n + 1,
        "{}",
        agent.log_text()
    );
    agent.stop();

    // A fresh agent (no checkpoint) reads the rotated file by its new name and the live one
    // again: the same ids, so nothing is stored twice.
    std::fs::remove_file(node.state_dir().join("checkpoints.json")).unwrap();
    let agent = Agent::start(&config);
    wait_delivered(&agent, (n + 1) as f64);
    agent.stop();
    let docs = es.all_docs(&pattern);
    assert_eq!(docs.len() as u64, n + 1);
    let per_pod = |ns: &str, pod: &str| {
        docs.iter()
            .filter(|d| d["kubernetes"]["namespace"] == ns && d["kubernetes"]["pod"]["name"] == pod)
            .count()
    };
    assert_eq!(per_pod("shop", "replica-a"), 102);
    assert_eq!(per_pod("shop", "replica-b"), 101);
    assert_eq!(per_pod("blue", "replica-a"), 101);
}

#[test]
fn plain_files_with_the_same_first_line_keep_all_their_lines() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("replay-plain");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "input:\n",
        "input:\n  include: [\"/var/log/plain/*.log\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let dir = node.root().join("var/log/plain");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a.log", "b.log"] {
        std::fs::write(dir.join(name), b"starting\nready\nserving\n").unwrap();
    }
    serve_metrics(&config);
    let agent = Agent::start(&config);
    wait_delivered(&agent, 6.0);
    agent.stop();
    let docs = es.all_docs(&pattern);
    let paths: Vec<&str> = docs
        .iter()
        .map(|d| d["log"]["file"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(docs.len(), 6, "{paths:?}");
}

/// A file an earlier version began keeps that version's ids (`IdScheme::Hash`) to its end: an
/// upgrade that follows a SIGKILL replays the window the old agent had sent but not committed,
/// and those documents must meet their first copies (409), not be stored again under new ids.
/// The "old agent" here is the state it leaves: documents with hashed ids for lines 0..15 in
/// the index and a checkpoint entry without `ids` committed after line 9.
#[test]
fn a_file_begun_by_an_earlier_version_keeps_its_ids_across_an_upgrade() {
    use sluice::sink::elasticsearch::encode::{document_id, id_seed};
    use sluice::tail::{Fingerprint, IdScheme};
    use std::os::unix::fs::MetadataExt;

    let es = Es::new();
    let node = Node::new();
    let index = unique("upgrade-ids");
    let pattern = format!("{index}-2*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    serve_metrics(&config);
    let setup = support::sluice(&config, &["setup"]);
    assert!(setup.status.success(), "{setup:?}");
    let pod = node.add_pod("shop", "web", "app", false);
    let mut offsets = Vec::new();
    for i in 0..20u64 {
        offsets.push(std::fs::metadata(&pod.path).unwrap().len());
        pod.line(&support::ts(i * 10), "stdout", &format!("line {i}"));
    }
    let bytes = std::fs::read(&pod.path).unwrap();
    let fp = Fingerprint::of_head(&bytes).unwrap();
    let source = sluice::kubernetes::path::source_identity(&pod.link, &pod.path);
    let seed = id_seed(Some(&source), fp);
    let mut bulk = String::new();
    for (i, &offset) in offsets.iter().enumerate().take(15) {
        let id = document_id(IdScheme::Hash, seed, offset);
        bulk += &format!(
            "{{\"create\":{{\"_index\":\"{index}-2026.11.24\",\"_id\":\"{}\"}}}}\n",
            std::str::from_utf8(&id).unwrap()
        );
        bulk += &format!(
            "{{\"@timestamp\":\"{}\",\"message\":\"line {i}\"}}\n",
            support::ts(i as u64 * 10)
        );
    }
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/_bulk?refresh=true", es.url))
        .header("content-type", "application/x-ndjson")
        .body(bulk)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let r: Value = serde_json::from_slice(&r).unwrap();
    assert_eq!(r["errors"], false, "{r}");
    let meta = std::fs::metadata(&pod.path).unwrap();
    std::fs::create_dir_all(node.state_dir()).unwrap();
    let checkpoint = serde_json::json!({"version": 1, "files": [{
        "dev": meta.dev(), "inode": meta.ino(), "fingerprint": fp.to_hex(),
        "path": pod.link, "real_path": pod.path, "offset": offsets[10],
    }]});
    std::fs::write(
        node.state_dir().join("checkpoints.json"),
        checkpoint.to_string(),
    )
    .unwrap();

    let agent = Agent::start(&config);
    // Lines 10..20 are read again: 5 meet their copies, 5 are new.
    wait_delivered(&agent, 10.0);
    let m = agent.metrics();
    agent.stop();
    let stored = support::stored(&es, &pattern);
    let want: BTreeMap<String, usize> = (0..20).map(|i| (format!("line {i}"), 1)).collect();
    assert_eq!(stored, want, "{}", m.show("sluice_bulk_items"));
    assert_eq!(
        m.get("sluice_bulk_items_total{outcome=\"duplicate\"}"),
        5.0,
        "{}",
        m.show("sluice_bulk_items")
    );
    // The checkpoint says so from now on, and the new agent's own files get the new ids.
    let text = std::fs::read_to_string(node.state_dir().join("checkpoints.json")).unwrap();
    assert!(text.contains(r#""ids":"hash""#), "{text}");
}
