//! Delivery under stress, with real processes and the real Elasticsearch: the agent is killed
//! with SIGKILL over and over while a writer appends and rotates like the kubelet; Elasticsearch
//! goes away for a minute; files rotate every second. Each time every written line must be in
//! Elasticsearch exactly once — checked by sequence numbers, not by counts.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::writer::{self, Writer, WriterConfig};
use support::{Agent, Es, Node, script, unique};

/// These tests each load the machine (a writer at thousands of lines a second, an agent, an
/// Elasticsearch): on two cores they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits until every written line is stored, then checks each (pod, seq) is there exactly once.
fn assert_exactly_once(es: &Es, pattern: &str, written: &[u64], agent: &Agent) {
    let total: u64 = written.iter().sum();
    let got = es.wait_count(pattern, total, Duration::from_secs(240));
    let docs = es.all_docs(pattern);
    let mut seen: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    for d in &docs {
        let m = d["message"].as_str().unwrap_or_default();
        let key = writer::parse_message(m).unwrap_or_else(|| panic!("unexpected document {d}"));
        *seen.entry(key).or_default() += 1;
    }
    let duplicates: Vec<_> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, c)| (*k, *c))
        .collect();
    let mut missing = Vec::new();
    for (p, &n) in written.iter().enumerate() {
        for s in 0..n {
            if !seen.contains_key(&(p, s)) {
                missing.push((p, s));
            }
        }
    }
    assert!(
        missing.is_empty() && duplicates.is_empty() && got == total,
        "written {total}, counted {got}, documents {}; missing {} (first {:?}); duplicated {} (first {:?}); agent log tail:\n{}",
        docs.len(),
        missing.len(),
        &missing[..missing.len().min(10)],
        duplicates.len(),
        &duplicates[..duplicates.len().min(10)],
        tail(&agent.log_text(), 40)
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// xorshift, seeded from the clock; the seed is printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("random seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn crash_loop_twenty_sigkills_under_rotation_loses_and_duplicates_nothing() {
    let _serial = serial();
    let es = Es::new();
    let node = Node::new();
    let index = unique("crash");
    let pattern = format!("{index}-*");
    // Agents live 0.2–1.2 s here: checkpoint more often than the 1 s default so that each one
    // gets to record its progress before it is killed.
    let config = node.config(&format!("{index}-%Y.%m.%d"), "checkpoint_interval: 250ms\n");
    let pods: Vec<_> = (0..3)
        .map(|i| node.add_pod("crash", &format!("writer-{i}"), "app", false))
        .collect();
    let writer = Writer::start(
        pods,
        WriterConfig {
            rate: 1500,
            rotate_every: Some(Duration::from_millis(1500)),
            // As the kubelet does: every rotated file but the newest is compressed, so an agent
            // killed with a backlog comes back to a checkpoint owing bytes of files that exist
            // only as `.gz` (read from there: `reader/compressed.rs`).
            keep_uncompressed: 1,
            keep_compressed: 2,
        },
    );
    let mut rng = Rng::new();
    let mut agent = Agent::start(&config);
    let mut kills = 0;
    while kills < 20 {
        std::thread::sleep(Duration::from_millis(200 + rng.below(1000)));
        agent.kill();
        kills += 1;
        agent = Agent::start(&config);
    }
    let written = writer.stop();
    eprintln!(
        "kills survived: {kills}, lines written: {}",
        written.iter().sum::<u64>()
    );
    assert_exactly_once(&es, &pattern, &written, &agent);
    agent.stop();
}

#[test]
fn fast_rotation_every_second_under_a_high_write_rate_loses_nothing() {
    let _serial = serial();
    let es = Es::new();
    let node = Node::new();
    let index = unique("fastrot");
    let pattern = format!("{index}-*");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let pods: Vec<_> = (0..2)
        .map(|i| node.add_pod("rot", &format!("busy-{i}"), "app", false))
        .collect();
    let agent = Agent::start(&config);
    let writer = Writer::start(
        pods,
        WriterConfig {
            rate: 6000,
            rotate_every: Some(Duration::from_secs(1)),
            keep_uncompressed: 1,
            keep_compressed: 3,
        },
    );
    std::thread::sleep(Duration::from_secs(15));
    let written = writer.stop();
    eprintln!("lines written: {}", written.iter().sum::<u64>());
    assert_exactly_once(&es, &pattern, &written, &agent);
    agent.stop();
}

#[test]
fn elasticsearch_down_for_a_minute_loses_nothing_and_memory_stays_flat() {
    let _serial = serial();
    // Its own Elasticsearch, since this test stops it.
    let url = script(&[
        "scripts/elasticsearch",
        "start",
        "--instance",
        "test-outage",
    ]);
    struct StopEs;
    impl Drop for StopEs {
        fn drop(&mut self) {
            let _ = std::process::Command::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/elasticsearch"
            ))
            .args(["stop", "--instance", "test-outage"])
            .status();
        }
    }
    let _guard = StopEs;
    let es = Es::at(&url);
    let node = Node::new();
    let index = unique("outage");
    let pattern = format!("{index}-*");
    let config = node.config_for(&url, &format!("{index}-%Y.%m.%d"), "");
    let pods: Vec<_> = (0..4)
        .map(|i| node.add_pod("outage", &format!("app-{i}"), "app", false))
        .collect();
    let agent = Agent::start(&config);
    let writer = Writer::start(
        pods,
        WriterConfig {
            rate: 2000,
            rotate_every: Some(Duration::from_secs(10)),
            keep_uncompressed: 5,
            keep_compressed: 1,
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        es.count(&pattern) > 0,
        "nothing shipped before the outage; log:\n{}",
        agent.log_text()
    );

    script(&["scripts/elasticsearch", "stop", "--instance", "test-outage"]);
    let outage_started = Instant::now();
    let mut peak_rss = 0;
    while outage_started.elapsed() < Duration::from_secs(60) {
        peak_rss = peak_rss.max(agent.rss());
        std::thread::sleep(Duration::from_millis(500));
    }
    let written_during = writer.written();
    script(&[
        "scripts/elasticsearch",
        "start",
        "--instance",
        "test-outage",
    ]);
    std::thread::sleep(Duration::from_secs(5));
    let written = writer.stop();
    peak_rss = peak_rss.max(agent.rss());
    eprintln!(
        "outage: 60 s; lines written {} ({} by the end of the outage); agent peak RSS during the outage {:.1} MiB",
        written.iter().sum::<u64>(),
        written_during,
        peak_rss as f64 / (1 << 20) as f64
    );
    assert_exactly_once(&es, &pattern, &written, &agent);
    // The files are the buffer: memory must not grow with the backlog (120,000 lines ≈ 12 MiB
    // written during the outage). The bound covers the bounded batches in flight.
    const BOUND: u64 = 80 << 20;
    assert!(
        peak_rss < BOUND,
        "peak RSS {} MiB during the outage exceeds {} MiB",
        peak_rss >> 20,
        BOUND >> 20
    );
    agent.stop();
}
