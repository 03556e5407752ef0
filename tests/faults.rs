//! The Elasticsearch output under faults, against the real Elasticsearch behind a fault-injecting
//! proxy (`support::proxy`): connection resets before and after the server wrote the batch,
//! timeouts, 503s, 413s, per-item 429s. And mapping conflicts, which must end in the dead-letter
//! index. After each scenario every written line is in the target or the dead-letter index,
//! exactly once (message sets compared, not counts).

#[path = "support/endpoints.rs"]
mod endpoints;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use endpoints::config_full;
use proxy::{Fault, Proxy};
use support::{Agent, Es, Node, PodLog, messages, ts, unique};

const WAIT: Duration = Duration::from_secs(180);

fn write(pods: &[PodLog], range: std::ops::Range<u64>, expected: &mut BTreeSet<String>) {
    for i in range {
        for (p, pod) in pods.iter().enumerate() {
            let msg = format!("pod={p} seq={i} some ordinary payload to make the item larger");
            pod.line(&ts(i), "stdout", &msg);
            expected.insert(msg);
        }
    }
}

/// Checks that `pattern` holds exactly `expected`, once each; returns (documents, dead-lettered).
fn exactly_once(es: &Es, pattern: &str, expected: &BTreeSet<String>, log: &str) -> (usize, usize) {
    let docs = es.all_docs(pattern);
    let seen = messages(&docs);
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let got: BTreeSet<String> = seen.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing (first 5): {missing:?}; unexpected: {extra:?}; agent log:\n{log}"
    );
    let dead = docs.iter().filter(|d| d.get("error").is_some()).count();
    (docs.len(), dead)
}

fn scenario(name: &str, fault: Fault, es_extra: &str) {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    let node = Node::new();
    let index = unique(&format!("fault-{name}"));
    let pattern = format!("{index}-*");
    let config = config_full(
        &node,
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        es_extra,
        "",
    );
    let pods = [
        node.add_pod("shop", "web-1", "nginx", false),
        node.add_pod("shop", "web-2", "nginx", true),
    ];
    let mut expected = BTreeSet::new();
    write(&pods, 0..300, &mut expected);
    proxy.set(fault.clone());
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_millis(500));
    write(&pods, 300..600, &mut expected);

    let n = expected.len() as u64;
    let got = es.wait_count(&pattern, n, WAIT);
    assert_eq!(got, n, "documents found; agent log:\n{}", agent.log_text());
    let log = agent.log_text();
    agent.stop();
    let stats = proxy.stats();
    let (docs, dead) = exactly_once(&es, &pattern, &expected, &log);
    eprintln!(
        "scenario {name}: fault {fault:?}: {n} lines written, {docs} documents found \
         ({dead} dead-lettered); proxy: {stats:?}"
    );
    assert!(
        stats.faulted_requests > 0,
        "the fault was never applied: the scenario tested nothing"
    );
}

#[test]
fn connection_reset_before_forwarding_loses_nothing() {
    scenario("reset-before", Fault::ResetBefore(3), "");
}

#[test]
fn connection_reset_after_the_server_wrote_the_batch_duplicates_nothing() {
    scenario("reset-after", Fault::ResetAfter(3), "");
}

#[test]
fn timeouts_are_retried_without_duplicates() {
    scenario(
        "timeout",
        Fault::Delay(2, Duration::from_secs(3)),
        "  request_timeout: 1s\n",
    );
}

#[test]
fn service_unavailable_is_retried() {
    scenario("unavailable", Fault::Unavailable(5), "");
}

#[test]
fn request_too_large_splits_the_batch() {
    scenario("too-large", Fault::TooLarge(16 << 10), "");
}

#[test]
fn per_item_429_retries_only_the_rejected_items() {
    scenario("item-429", Fault::Reject429(4), "");
}

#[test]
fn mapping_conflict_goes_to_the_dead_letter_index_with_its_source() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("conflict");
    let pattern = format!("{index}-*");
    // Our template maps the JSON object so that it cannot conflict (tests/json_mapping.rs);
    // without it (`setup: off`, a cluster whose templates someone else manages) dynamic mapping
    // decides, and the losing shape must go to the dead-letter index.
    let config = node.config_full(
        &format!("{index}-%Y.%m.%d"),
        &[support::es_url()],
        "  setup: off\n",
        "",
    );
    let a = node.add_pod("shop", "text-status", "app", false);
    let b = node.add_pod("shop", "object-status", "app", false);
    let mut expected = BTreeSet::new();
    for i in 0..100u64 {
        let ma = format!("a-{i}");
        let mb = format!("b-{i}");
        a.line(
            &ts(i),
            "stdout",
            &format!(r#"{{"status":"ok","msg":"{ma}"}}"#),
        );
        b.line(
            &ts(i),
            "stdout",
            &format!(r#"{{"status":{{"code":1}},"msg":"{mb}"}}"#),
        );
        expected.insert(ma);
        expected.insert(mb);
    }
    let agent = Agent::start(&config);
    let n = expected.len() as u64;
    let got = es.wait_count(&pattern, n, WAIT);
    assert_eq!(got, n, "documents found; agent log:\n{}", agent.log_text());
    let log = agent.log_text();
    agent.stop();
    let (docs, dead) = exactly_once(&es, &pattern, &expected, &log);
    eprintln!(
        "scenario mapping-conflict: {n} lines written, {docs} documents found ({dead} dead-lettered)"
    );
    assert!(dead > 0, "a conflict must have happened");

    let dl = es.all_docs(&format!("{index}-*-dlq"));
    assert_eq!(dl.len(), dead);
    for d in &dl {
        let original = d["event"]["original"].as_str().expect("event.original");
        assert!(original.contains("\"status\""), "{original}");
        let kind = d["error"]["type"].as_str().unwrap_or("");
        assert!(kind.contains("parsing_exception"), "error.type {kind}");
        assert!(!d["error"]["message"].as_str().unwrap_or("").is_empty());
        assert_eq!(d["error"]["code"], "400");
        assert!(d["log"]["file"]["path"].as_str().unwrap().ends_with(".log"));
        assert!(d["log"]["offset"].is_u64());
        let pod = d["kubernetes"]["pod"]["name"].as_str().unwrap();
        assert!(pod == "text-status" || pod == "object-status");
        assert!(
            d["sluice"]["target_index"]
                .as_str()
                .unwrap()
                .starts_with(&index)
        );
    }
    // The losing side is one pod's lines, whichever was indexed first.
    let pods: BTreeSet<&str> = dl
        .iter()
        .map(|d| d["kubernetes"]["pod"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        pods.len(),
        1,
        "only one of the two shapes conflicts: {pods:?}"
    );
}

#[test]
fn setup_installs_templates_so_timestamps_keep_nanoseconds() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("setup");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let out = support::sluice(&config, &["setup"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sluice setup failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("index template"), "{stdout}");
    // Idempotent: a second run succeeds too.
    let again = support::sluice(&config, &["setup"]);
    assert!(again.status.success());

    let name = format!("sluice_{index}");
    let t = es.get(&format!("_index_template/{name}"));
    let tmpl = &t["index_templates"][0]["index_template"];
    assert_eq!(tmpl["index_patterns"][0], format!("{index}-*.*.*"));
    let pod = node.add_pod("shop", "web-1", "nginx", false);
    pod.line("2026-11-24T10:00:00.123456789Z", "stdout", "nanos");
    let agent = Agent::start(&node.config(&format!("{index}-%Y.%m.%d"), ""));
    assert_eq!(es.wait_count(&format!("{index}-*"), 1, WAIT), 1);
    agent.stop();
    let m = es.get(&format!("{index}-2026.11.24/_mapping"));
    let props = &m[format!("{index}-2026.11.24")]["mappings"]["properties"];
    assert_eq!(props["@timestamp"]["type"], "date_nanos", "{m}");
    assert_eq!(props["log"]["properties"]["iostream"]["type"], "keyword");
    let docs = es.all_docs(&format!("{index}-*"));
    assert_eq!(docs[0]["@timestamp"], "2026-11-24T10:00:00.123456789Z");
}

#[test]
fn data_stream_mode_writes_one_stream_and_a_replay_duplicates_nothing() {
    let es = Es::new();
    let node = Node::new();
    let name = unique("ds-logs");
    let config = config_full(
        &node,
        &name,
        std::slice::from_ref(&es.url),
        "  data_stream: true\n  lifecycle:\n    delete_after: 7d\n",
        "",
    );
    let pod = node.add_pod("shop", "web-1", "nginx", false);
    let mut expected = BTreeSet::new();
    for i in 0..200u64 {
        let m = format!("ds line {i}");
        pod.line(&ts(i), "stdout", &m);
        expected.insert(m);
    }
    let agent = Agent::start(&config);
    assert_eq!(es.wait_count(&name, 200, WAIT), 200, "{}", agent.log_text());
    let log = agent.log_text();
    agent.stop();
    // The integ-test builds have neither ILM nor ISM: the policy is skipped, loudly.
    assert!(log.contains("lifecycle policy skipped"), "{log}");
    let hit = es.post(&format!("{name}/_search"), &serde_json::json!({"size": 1}));
    let backing = hit["hits"]["hits"][0]["_index"].as_str().unwrap();
    assert!(
        backing.starts_with(".ds-"),
        "a data stream's backing index: {backing}"
    );

    // A replay from the start (checkpoints lost) sends the same ids: 409s, no duplicates.
    std::fs::remove_dir_all(node.state_dir()).unwrap();
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_secs(3));
    let log = agent.log.clone();
    agent.stop();
    let log = strip_ansi(&std::fs::read_to_string(log).unwrap());
    assert!(
        log.contains("delivered=200"),
        "the replay re-sent every line:\n{log}"
    );
    let (docs, _) = exactly_once(&es, &name, &expected, "");
    assert_eq!(docs, 200);
}

/// The agent's text log with terminal colour codes removed.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn rss_mib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

#[test]
fn memory_stays_flat_while_elasticsearch_is_unavailable() {
    let es = Es::new();
    let proxy = Proxy::start(&es.url);
    let node = Node::new();
    let index = unique("fault-outage");
    let config = config_full(
        &node,
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        "",
        "",
    );
    let pod = node.add_pod("shop", "web-1", "nginx", false);
    let payload = "x".repeat(1000);
    let write = |from: u64, to: u64| {
        let mut buf = Vec::new();
        for i in from..to {
            buf.extend_from_slice(&pod.record(&ts(i), "stdout", &format!("{i} {payload}"), false));
        }
        pod.append_raw(&buf);
    };
    proxy.set(Fault::Unavailable(usize::MAX));
    write(0, 5_000);
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_secs(3));
    let before = rss_mib(agent.pid());
    // 60 MB more behind the outage: the log file is the buffer, not the agent's memory.
    write(5_000, 65_000);
    std::thread::sleep(Duration::from_secs(4));
    let after = rss_mib(agent.pid());
    assert_eq!(
        es.count(&format!("{index}-*")),
        0,
        "the outage let nothing through"
    );
    assert!(proxy.stats().faulted_requests > 0);
    eprintln!(
        "scenario outage-memory: 65000 lines (~66 MB) written behind a 503 outage; agent RSS \
         {before} MiB after 5000 lines, {after} MiB after 65000"
    );
    assert!(
        after < before + 32 && after < 128,
        "memory grew with the backlog: {before} MiB → {after} MiB"
    );
    agent.kill();
}
