//! Shared helpers for the integration tests: a fake node's kubelet-style log tree, the real
//! `sluice` binary as a child process, and queries against the real Elasticsearch named by
//! `SLUICE_ES_URL` (started by `scripts/test`).
#![allow(dead_code)]

pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Elasticsearch under test. Missing is a hard failure, never a skip.
pub fn es_url() -> String {
    match std::env::var("SLUICE_ES_URL") {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => panic!(
            "SLUICE_ES_URL is not set: this test needs a real Elasticsearch. Run `scripts/test` \
             (it starts one), or `export SLUICE_ES_URL=$(scripts/elasticsearch start)` first."
        ),
    }
}

/// A name unique to this test run, usable in index names.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

pub struct Es {
    pub url: String,
    client: reqwest::blocking::Client,
}

impl Es {
    pub fn new() -> Es {
        Es::at(&es_url())
    }

    /// A client for another server than `SLUICE_ES_URL`.
    pub fn at(url: &str) -> Es {
        Es {
            url: url.trim_end_matches('/').to_string(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn get(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/{path}", self.url))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        let body = resp.bytes().unwrap();
        assert!(
            status.is_success() || status.as_u16() == 404,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        let resp = self
            .client
            .post(format!("{}/{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status();
        let bytes = resp.bytes().unwrap();
        assert!(
            status.is_success(),
            "POST {path}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Documents in indices matching `pattern` (refreshed first; 0 if none exist yet).
    pub fn count(&self, pattern: &str) -> u64 {
        let _ = self
            .client
            .post(format!(
                "{}/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true",
                self.url
            ))
            .send();
        // While an index is being created its shards answer 503 for a moment: that is "not yet".
        let resp = self
            .client
            .get(format!(
                "{}/{pattern}/_count?ignore_unavailable=true&allow_no_indices=true",
                self.url
            ))
            .send();
        match resp {
            Ok(r) if r.status().is_success() => {
                serde_json::from_slice::<Value>(&r.bytes().unwrap()).unwrap()["count"]
                    .as_u64()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Waits (bounded) until `pattern` holds at least `n` documents; returns the last count.
    pub fn wait_count(&self, pattern: &str, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.count(pattern);
            if c >= n || Instant::now() >= deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every document's `_source` in `pattern`, with its `_id` under `"_id"`. Uses a scroll: a
    /// consistent snapshot, where paging with `search_after` on `_doc` may skip or repeat
    /// documents while segments merge.
    pub fn all_docs(&self, pattern: &str) -> Vec<Value> {
        let _ = self
            .client
            .post(format!("{}/{pattern}/_refresh", self.url))
            .send();
        let mut out = Vec::new();
        let mut page = self.post(
            &format!("{pattern}/_search?scroll=2m"),
            &serde_json::json!({"size": 5000, "sort": ["_doc"]}),
        );
        loop {
            let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
            if hits.is_empty() {
                break;
            }
            for h in hits {
                let mut src = h["_source"].clone();
                src["_id"] = h["_id"].clone();
                out.push(src);
            }
            let id = page["_scroll_id"].as_str().unwrap().to_string();
            page = self.post(
                "_search/scroll",
                &serde_json::json!({"scroll": "2m", "scroll_id": id}),
            );
        }
        if let Some(id) = page["_scroll_id"].as_str() {
            let _ = self
                .client
                .delete(format!("{}/_search/scroll", self.url))
                .header("content-type", "application/json")
                .body(serde_json::json!({"scroll_id": id}).to_string())
                .send();
        }
        out
    }
}

/// A fake node: a kubelet-style log tree under a temp dir, and a state dir.
pub struct Node {
    pub dir: tempfile::TempDir,
}

/// One container's log file.
#[derive(Clone)]
pub struct PodLog {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    pub container_id: String,
    /// `/var/log/pods/...` real file.
    pub path: PathBuf,
    /// `/var/log/containers/...` symlink.
    pub link: PathBuf,
    pub docker: bool,
}

impl Node {
    pub fn new() -> Node {
        Node {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Creates a pod's log file (empty) and its `/var/log/containers` symlink.
    pub fn add_pod(&self, namespace: &str, pod: &str, container: &str, docker: bool) -> PodLog {
        let uid = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            pod.len() * 7919,
            fxhash(pod) & 0xffff_ffff_ffff
        );
        let container_id = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            fxhash(pod),
            fxhash(container),
            fxhash(namespace),
            7u64
        );
        let dir = self
            .root()
            .join(format!("var/log/pods/{namespace}_{pod}_{uid}/{container}"));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("0.log");
        fs::write(&path, b"").unwrap();
        let links = self.root().join("var/log/containers");
        fs::create_dir_all(&links).unwrap();
        let link = links.join(format!("{pod}_{namespace}_{container}-{container_id}.log"));
        std::os::unix::fs::symlink(&path, &link).unwrap();
        PodLog {
            namespace: namespace.into(),
            pod: pod.into(),
            uid,
            container: container.into(),
            container_id,
            path,
            link,
            docker,
        }
    }

    /// A config for this node shipping to `index` (a pattern like `t-x-%Y.%m.%d`).
    pub fn config(&self, index: &str, extra: &str) -> PathBuf {
        self.config_for(&es_url(), index, extra)
    }

    /// Like [`Node::config`], for another Elasticsearch than `SLUICE_ES_URL`.
    pub fn config_for(&self, es: &str, index: &str, extra: &str) -> PathBuf {
        self.config_full(index, &[es.to_string()], "", extra)
    }

    /// The general form: several endpoints, `es_extra` lines inside `elasticsearch:` (indented
    /// by two spaces; for proxies, credentials, TLS) and `extra` lines at the top level.
    pub fn config_full(
        &self,
        index: &str,
        endpoints: &[String],
        es_extra: &str,
        extra: &str,
    ) -> PathBuf {
        let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        let text = format!(
            concat!(
                "node_name: test-node\n",
                "cluster_name: test-cluster\n",
                "state_dir: {state}\n",
                "input:\n  root: {root}\n  poll_interval: 200ms\n  scan_interval: 1s\n",
                "elasticsearch:\n  endpoints: [{es}]\n  index: \"{index}\"\n  dead_letter_index: \"{index}-dlq\"\n",
                "  batch:\n    timeout: 200ms\n    max_events: 500\n",
                "  retry:\n    initial_backoff: 50ms\n    max_backoff: 1s\n",
                "{es_extra}",
                "telemetry:\n  listen: off\n",
                "shutdown_timeout: 10s\n",
                "{extra}"
            ),
            state = self.state_dir().display(),
            root = self.root().display(),
            es = eps.join(", "),
            index = index,
            es_extra = es_extra,
            extra = extra,
        );
        let p = self.root().join("sluice.yaml");
        fs::write(&p, text).unwrap();
        p
    }
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl PodLog {
    /// Appends raw bytes.
    pub fn append_raw(&self, bytes: &[u8]) {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    /// Appends one complete record in the file's format.
    pub fn line(&self, ts: &str, stream: &str, msg: &str) {
        self.append_raw(&self.record(ts, stream, msg, false));
    }

    /// Appends a partial record (CRI `P`, docker without trailing newline in `log`).
    pub fn partial(&self, ts: &str, stream: &str, msg: &str) {
        self.append_raw(&self.record(ts, stream, msg, true));
    }

    pub fn record(&self, ts: &str, stream: &str, msg: &str, partial: bool) -> Vec<u8> {
        if self.docker {
            let log = if partial {
                msg.to_string()
            } else {
                format!("{msg}\n")
            };
            format!(
                "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{ts}\"}}\n",
                serde_json::to_string(&log).unwrap()
            )
            .into_bytes()
        } else {
            format!("{ts} {stream} {} {msg}\n", if partial { "P" } else { "F" }).into_bytes()
        }
    }
}

/// A timestamp on 2026-11-24 a given number of milliseconds after 10:00, with nanoseconds.
pub fn ts(ms: u64) -> String {
    format!(
        "2026-11-24T{:02}:{:02}:{:02}.{:03}123456Z",
        10 + ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}

/// A local port that was free a moment ago (bound, then released: the agent binds it a moment
/// later). Chosen below the kernel's ephemeral range (32768-60999 by default): a port from
/// `bind(0)` comes from that range, where every outgoing connection (to Elasticsearch, between
/// tests running in parallel) also takes its local port, and one of them could take it before
/// the agent binds it ("Address already in use" seen in tests/replay.rs).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Per test process a different start (tests of one binary share the counter; binaries
    // running at the same time start apart by their pid).
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1_000) as u16 * 12;
    for _ in 0..12_000 {
        let port = 20_000 + (base - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999 on 127.0.0.1")
}

/// Turns on `/metrics` in a config written by [`Node::config`] (which has `telemetry.listen:
/// off`), on a free local port; [`Agent::metrics`] then scrapes it.
pub fn serve_metrics(config: &Path) {
    let text = fs::read_to_string(config).unwrap();
    let off = "telemetry:\n  listen: off\n";
    assert!(text.contains(off), "{} has no `{off}`", config.display());
    let on = format!("telemetry:\n  listen: 127.0.0.1:{}\n", free_port());
    fs::write(config, text.replace(off, &on)).unwrap();
}

/// One scrape of the agent's `/metrics`: each sample, as exposed (`name{labels}`), → its value.
pub struct Metrics {
    pub text: String,
    samples: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn parse(text: String) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (sample, value) = l.rsplit_once(' ')?;
                Some((sample.to_string(), value.parse().ok()?))
            })
            .collect();
        Metrics { text, samples }
    }

    /// A sample's value, e.g. `sluice_kubernetes_watch_errors_total{resource="pods"}`; a sample
    /// the agent does not export fails the test, with the whole exposition.
    pub fn get(&self, sample: &str) -> f64 {
        match self.samples.get(sample) {
            Some(v) => *v,
            None => panic!("no sample {sample} in /metrics:\n{}", self.text),
        }
    }

    /// A sample's value, `None` when the agent does not export it (yet).
    pub fn find(&self, sample: &str) -> Option<f64> {
        self.samples.get(sample).copied()
    }

    /// The samples whose name starts with `prefix`, one a line (for failure messages).
    pub fn show(&self, prefix: &str) -> String {
        self.samples
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| format!("{k} {v}\n"))
            .collect()
    }
}

/// The real agent as a child process.
pub struct Agent {
    child: Option<Child>,
    pub log: PathBuf,
    config: PathBuf,
}

impl Agent {
    pub fn start(config: &Path) -> Agent {
        Agent::start_with_env(config, &[])
    }

    /// Like [`Agent::start`], with extra environment variables. Every `AWS_*` variable of the
    /// test's own environment is removed first, so the machine's AWS settings never leak in.
    pub fn start_with_env(config: &Path, env: &[(&str, String)]) -> Agent {
        let log = config.with_extension(format!(
            "log.{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let out = fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("--config")
            .arg(config)
            .env("SLUICE_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start sluice");
        let mut agent = Agent {
            child: Some(child),
            log,
            config: config.to_path_buf(),
        };
        // A configuration error ends the process at once: fail here, with its message.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = agent.child.as_mut().unwrap().try_wait().unwrap() {
            panic!(
                "sluice exited at start with {status}:\n{}",
                agent.log_text()
            );
        }
        agent
    }

    /// The config's `telemetry.listen` (see [`serve_metrics`]).
    fn listen(&self) -> String {
        let config = fs::read_to_string(&self.config).unwrap();
        config
            .split_once("telemetry:\n  listen: ")
            .and_then(|(_, rest)| rest.lines().next())
            .filter(|l| *l != "off")
            .unwrap_or_else(|| panic!("{}: /metrics is off", self.config.display()))
            .to_string()
    }

    /// `GET` of a telemetry endpoint (`/healthz`, `/readyz`): status and body.
    pub fn telemetry_get(&self, path: &str) -> (u16, String) {
        let listen = self.listen();
        let resp = reqwest::blocking::Client::new()
            .get(format!("http://{listen}{path}"))
            .timeout(Duration::from_secs(10))
            .send()
            .unwrap_or_else(|e| panic!("GET {listen}{path}: {e}\nlog:\n{}", self.log_text()));
        let status = resp.status().as_u16();
        (status, resp.text().unwrap_or_default())
    }

    /// Scrapes `/metrics` at the config's `telemetry.listen` (see [`serve_metrics`]).
    pub fn metrics(&self) -> Metrics {
        let listen = self.listen();
        let text = reqwest::blocking::Client::new()
            .get(format!("http://{listen}/metrics"))
            .timeout(Duration::from_secs(10))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("scrape {listen}: {e}\nlog:\n{}", self.log_text()));
        Metrics::parse(text)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM, then waits (bounded) and asserts a clean exit 0.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "sluice exited with {status}; log:\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not stop within 30 s after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush or checkpoint.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Resident set size now (VmRSS), in bytes.
    pub fn rss(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:") * 1024
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn proc_status_kib(pid: i32, key: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the binary under test, `sluice --config CONFIG ARGS...` (a command such as `setup`),
/// to its end.
pub fn sluice(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sluice {args:?}: {e}"))
}

/// Runs a repository script (`scripts/...`) and returns the last line of its stdout.
pub fn script(args: &[&str]) -> String {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(args[0]))
        .args(&args[1..])
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed with {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Writes `n` CRI lines `"<pod> line <i>"` into a new pod of namespace `shop`; returns them.
pub fn lines(node: &Node, pod: &str, n: u64) -> BTreeSet<String> {
    let p = node.add_pod("shop", pod, "app", false);
    (0..n)
        .map(|i| {
            let m = format!("{pod} line {i}");
            p.line(&ts(i), "stdout", &m);
            m
        })
        .collect()
}

/// The documents in `pattern` are exactly `expected`, each once (compared by `message`).
pub fn assert_exactly(es: &Es, pattern: &str, expected: &BTreeSet<String>) {
    let docs = es.all_docs(pattern);
    let seen = messages(&docs);
    assert!(seen.values().all(|&c| c == 1), "duplicates");
    assert_eq!(&seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
}

/// Counts documents by their `message`, to find losses and duplicates.
/// How long the waits below wait for documents and metrics.
const SETTLE_WAIT: Duration = Duration::from_secs(120);

/// Every stored document's message in `pattern` with how often it is stored.
pub fn stored(es: &Es, pattern: &str) -> BTreeMap<String, usize> {
    messages(&es.all_docs(pattern))
}

/// Waits (bounded) until `want.len()` documents are in `pattern`, a moment longer for anything
/// more (a torn piece or a duplicate comes with the same batches), then compares the stored
/// messages with `want`, each stored once.
pub fn assert_stored<S: AsRef<str>>(es: &Es, pattern: &str, want: &[S], agent: &Agent) {
    let want: BTreeMap<String, usize> = want.iter().map(|m| (m.as_ref().to_string(), 1)).collect();
    es.wait_count(pattern, want.len() as u64, SETTLE_WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(stored(es, pattern), want, "log:\n{}", agent.log_text());
}

/// Scrapes the agent until the sample `name` is at least `at_least` (bounded).
pub fn wait_metric(agent: &Agent, name: &str, at_least: f64) {
    let deadline = Instant::now() + SETTLE_WAIT;
    loop {
        let m = agent.metrics();
        if m.get(name) >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} < {at_least}: {}\nlog:\n{}",
            m.show("sluice_"),
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn messages(docs: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in docs {
        *m.entry(d["message"].as_str().unwrap_or("<none>").to_string())
            .or_insert(0) += 1;
    }
    m
}
