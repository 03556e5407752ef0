//! Hot reload against the real agent and the real Elasticsearch: a setting changed under load
//! shows in the documents from one line on, with every line stored once; an invalid file and a
//! file changing a restart-only key keep the old configuration running (and are counted);
//! rotated credentials (nginx in front of Elasticsearch) heal the batches already waiting; a
//! newly excluded file stops being read and, included again, goes on from where it stopped; a
//! ConfigMap-style `..data` swap is seen; a `touch` is not a reload.

#[path = "support/nginx.rs"]
mod nginx;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nginx::{Nginx, Pki, basic};
use support::{Agent, Es, Node, PodLog, assert_stored, es_url, free_port, ts, unique, wait_metric};

const WAIT: Duration = Duration::from_secs(120);

fn outcome(o: &str) -> String {
    format!("sluice_config_reloads_total{{outcome=\"{o}\"}}")
}

/// A whole configuration for `node`, `/metrics` on `port` (the same across reloads: the
/// listener is restart-only).
struct Conf<'a> {
    node: &'a Node,
    port: u16,
    endpoint: String,
    index: String,
    state_dir: PathBuf,
    input: String,
    parse: String,
    es: String,
}

impl<'a> Conf<'a> {
    fn new(node: &'a Node, index: &str) -> Conf<'a> {
        Conf {
            node,
            port: free_port(),
            endpoint: es_url(),
            index: index.to_string(),
            state_dir: node.state_dir(),
            input: String::new(),
            parse: String::new(),
            es: String::new(),
        }
    }

    fn text(&self) -> String {
        format!(
            concat!(
                "node_name: test-node\n",
                "state_dir: {state}\n",
                "input:\n  root: {root}\n  poll_interval: 200ms\n  scan_interval: 1s\n{input}",
                "{parse}",
                "elasticsearch:\n  endpoints: [\"{es}\"]\n  index: \"{index}-%Y.%m.%d\"\n",
                "  dead_letter_index: \"{index}-dlq\"\n",
                "  batch:\n    timeout: 200ms\n    max_events: 200\n",
                "  retry:\n    initial_backoff: 50ms\n    max_backoff: 500ms\n{es_extra}",
                "telemetry:\n  listen: 127.0.0.1:{port}\n",
                "shutdown_timeout: 10s\n",
            ),
            state = self.state_dir.display(),
            root = self.node.root().display(),
            input = self.input,
            parse = self.parse,
            es = self.endpoint,
            index = self.index,
            es_extra = self.es,
            port = self.port,
        )
    }

    /// Writes the configuration as an editor would (a new file renamed over the old one).
    fn write(&self, path: &Path) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, self.text()).unwrap();
        fs::rename(&tmp, path).unwrap();
    }
}

/// Bulk items Elasticsearch answered "already there" (409): documents sent twice. Not exported
/// until the first one.
fn duplicates(agent: &Agent) -> f64 {
    let m = agent.metrics();
    m.text
        .lines()
        .find_map(|l| l.strip_prefix("sluice_bulk_items_total{outcome=\"duplicate\"} "))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn hup(agent: &Agent) {
    unsafe { libc::kill(agent.pid(), libc::SIGHUP) };
}

/// The sequence number in a message written by [`json_writer`], parsed JSON or raw.
fn seq_of(message: &str) -> Option<u64> {
    let rest = &message[message.find("line ")? + 5..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Appends JSON app-log lines `{"msg":"line N","level":"info"}` to `pod` at about `rate` lines
/// a second until `stop`; returns how many it wrote.
fn json_writer(pod: PodLog, rate: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = started.elapsed().as_millis() as u64 * rate / 1000;
            while n < due {
                pod.line(
                    &ts(n),
                    "stdout",
                    &format!("{{\"msg\":\"line {n}\",\"level\":\"info\"}}"),
                );
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    })
}

#[test]
fn reload_under_load_applies_json_from_one_line_on_and_stores_every_line_once() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("reload-load");
    let pattern = format!("{index}-*");
    let config = node.root().join("sluice.yaml");
    let mut conf = Conf::new(&node, &index);
    conf.parse = "parse:\n  json:\n    enabled: false\n".into();
    conf.write(&config);
    let pod = node.add_pod("shop", "web-1", "app", false);
    let agent = Agent::start(&config);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = json_writer(pod, 400, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    conf.parse = "parse:\n  json:\n    enabled: true\n".into();
    conf.write(&config);
    wait_metric(&agent, &outcome("applied"), 1.0);
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let n = writer.join().unwrap();

    assert_eq!(
        es.wait_count(&pattern, n, WAIT),
        n,
        "log:\n{}",
        agent.log_text()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let docs = es.all_docs(&pattern);
    let mut seen: BTreeMap<u64, (usize, bool)> = BTreeMap::new();
    for d in &docs {
        let message = d["message"].as_str().unwrap_or_default();
        let seq = seq_of(message).unwrap_or_else(|| panic!("unexpected document {d}"));
        let parsed = d["log"]["level"] == "info";
        let e = seen.entry(seq).or_insert((0, parsed));
        e.0 += 1;
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, (c, _))| *c != 1).collect();
    assert!(dupes.is_empty(), "stored more than once: {dupes:?}");
    assert_eq!(seen.len() as u64, n, "lines lost");
    let raw: Vec<u64> = seen
        .iter()
        .filter(|(_, (_, p))| !p)
        .map(|(s, _)| *s)
        .collect();
    let parsed: Vec<u64> = seen
        .iter()
        .filter(|(_, (_, p))| *p)
        .map(|(s, _)| *s)
        .collect();
    assert!(
        !raw.is_empty() && !parsed.is_empty(),
        "raw {} parsed {}",
        raw.len(),
        parsed.len()
    );
    // From one line on: every line before it shipped raw, every line after it parsed.
    assert!(
        raw.last() < parsed.first(),
        "parsed and raw interleave: last raw {:?}, first parsed {:?}",
        raw.last(),
        parsed.first()
    );
    assert_eq!(duplicates(&agent), 0.0, "lines sent twice");
    let m = agent.metrics();
    agent.stop();
    eprintln!(
        "scenario reload-under-load: {n} lines written at ~400/s, {} documents, each once; \
         lines 0..{} raw, {}..{} parsed as JSON; reloads applied {}",
        docs.len(),
        raw.len(),
        parsed[0],
        n,
        m.get(&outcome("applied"))
    );
}

#[test]
fn invalid_and_restart_only_files_keep_the_running_configuration_and_are_counted() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("reload-bad");
    let other = unique("reload-bad-other");
    let config = node.root().join("sluice.yaml");
    let conf = Conf::new(&node, &index);
    conf.write(&config);
    let pod = node.add_pod("shop", "web-1", "app", false);
    let agent = Agent::start(&config);
    let mut want = Vec::new();
    let mut write = |from: u64, to: u64| {
        for i in from..to {
            let m = format!("line {i}");
            pod.line(&ts(i), "stdout", &m);
            want.push(m);
        }
        want.clone()
    };
    assert_stored(&es, &format!("{index}-*"), &write(0, 50), &agent);

    // Invalid: a bad value (the other index with it must not be applied either).
    let mut bad = Conf::new(&node, &other);
    bad.port = conf.port;
    bad.input = "  include: []\n".into();
    bad.write(&config);
    wait_metric(&agent, &outcome("invalid"), 1.0);
    let log = agent.log_text();
    assert!(
        log.contains("input.include") && log.contains("running configuration stays"),
        "the error names the key:\n{log}"
    );
    assert_stored(&es, &format!("{index}-*"), &write(50, 100), &agent);

    // Restart-only: state_dir (with the other index: nothing of the file is applied).
    let mut moved = Conf::new(&node, &other);
    moved.port = conf.port;
    moved.state_dir = node.root().join("elsewhere");
    moved.write(&config);
    wait_metric(&agent, &outcome("refused"), 1.0);
    let log = agent.log_text();
    assert!(
        log.contains("configuration reload refused") && log.contains("state_dir"),
        "the refusal names the key:\n{log}"
    );
    assert_stored(&es, &format!("{index}-*"), &write(100, 150), &agent);
    assert_eq!(
        es.count(&format!("{other}-*")),
        0,
        "nothing went to the new index"
    );

    // The running file again, then a touch: no reload on either event; a SIGHUP says
    // "unchanged".
    conf.write(&config);
    std::thread::sleep(Duration::from_secs(1));
    let f = fs::File::options().append(true).open(&config).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    std::thread::sleep(Duration::from_secs(1));
    let m = agent.metrics();
    assert_eq!(
        m.get(&outcome("unchanged")),
        0.0,
        "a file event with the same content counts"
    );
    hup(&agent);
    wait_metric(&agent, &outcome("unchanged"), 1.0);
    let m = agent.metrics();
    assert_eq!(m.get(&outcome("applied")), 0.0);
    assert_eq!(m.get(&outcome("invalid")), 1.0);
    assert_eq!(m.get(&outcome("refused")), 1.0);
    assert_eq!(
        m.get(&outcome("unchanged")),
        1.0,
        "{}",
        m.show("sluice_config")
    );
    agent.stop();
}

/// Replaces one accepted `Authorization` value in nginx's configuration and reloads it.
fn rotate_nginx(proxy: &Nginx, old: &str, new: &str) {
    let conf = proxy.dir.join("nginx.conf");
    let text = fs::read_to_string(&conf).unwrap();
    assert!(text.contains(old));
    fs::write(&conf, text.replace(old, new)).unwrap();
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx");
    let status = std::process::Command::new(bin)
        .arg("-p")
        .arg(&proxy.dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(proxy.dir.join("error.log"))
        .args(["-s", "reload"])
        .status()
        .unwrap();
    assert!(status.success(), "nginx -s reload failed");
    // The workers of the old configuration finish their requests and leave.
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
fn rotated_credentials_heal_the_batches_sealed_before_the_reload() {
    const OLD: &str = "old-pass-1a2b";
    const NEW: &str = "new-pass-3c4d";
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let proxy = Nginx::start(tmp.path(), &pki, &es.url, &[basic("sluice", OLD)]);
    let node = Node::new();
    let index = unique("reload-creds");
    let pattern = format!("{index}-*");
    let config = node.root().join("sluice.yaml");
    let mut conf = Conf::new(&node, &index);
    conf.endpoint = proxy.url.clone();
    let es_extra = |password: &str| {
        format!(
            "  setup: off\n  auth:\n    username: sluice\n    password: {password}\n  tls:\n    ca_file: {}\n",
            pki.ca.display()
        )
    };
    conf.es = es_extra(OLD);
    conf.write(&config);
    let pod = node.add_pod("shop", "web-1", "app", false);
    let agent = Agent::start(&config);
    let mut want = Vec::new();
    for i in 0..100 {
        let m = format!("line {i}");
        pod.line(&ts(i), "stdout", &m);
        want.push(m);
    }
    assert_stored(&es, &pattern, &want, &agent);

    // The Secret is rotated: Elasticsearch (nginx) takes the new password only, at once.
    rotate_nginx(&proxy, &basic("sluice", OLD), &basic("sluice", NEW));
    let refused_before = proxy.count_status(401);
    for i in 100..200 {
        let m = format!("line {i}");
        pod.line(&ts(i), "stdout", &m);
        want.push(m);
    }
    let deadline = Instant::now() + WAIT;
    while proxy.count_status(401) == refused_before {
        assert!(
            Instant::now() < deadline,
            "no request refused after the rotation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        es.count(&pattern),
        100,
        "nothing passes with the old password"
    );

    // The agent's file follows (as a mounted ConfigMap or Secret would): the batches waiting
    // since the rotation go out with the new password, and so does everything after.
    conf.es = es_extra(NEW);
    conf.write(&config);
    wait_metric(&agent, &outcome("applied"), 1.0);
    for i in 200..300 {
        let m = format!("line {i}");
        pod.line(&ts(i), "stdout", &m);
        want.push(m);
    }
    assert_stored(&es, &pattern, &want, &agent);
    let log = agent.log_text();
    agent.stop();
    assert!(
        !log.contains(OLD) && !log.contains(NEW),
        "a secret in the log:\n{log}"
    );
    eprintln!(
        "scenario credentials-rotation: 300 lines, 300 documents each once; nginx 401s while the \
         old password was in force: {}",
        proxy.count_status(401) - refused_before
    );
}

#[test]
fn an_excluded_file_stops_and_included_again_goes_on_from_where_it_stopped() {
    let es = Es::new();
    let node = Node::new();
    let index = unique("reload-exclude");
    let pattern = format!("{index}-*");
    let config = node.root().join("sluice.yaml");
    let mut conf = Conf::new(&node, &index);
    conf.write(&config);
    let a = node.add_pod("shop", "a", "app", false);
    let b = node.add_pod("shop", "b", "app", false);
    let agent = Agent::start(&config);
    let mut want = Vec::new();
    let write = |pod: &PodLog, from: u64, to: u64, want: &mut Vec<String>| {
        for i in from..to {
            let m = format!("{} line {i}", pod.pod);
            pod.line(&ts(i), "stdout", &m);
            want.push(m);
        }
    };
    write(&a, 0, 50, &mut want);
    write(&b, 0, 50, &mut want);
    assert_stored(&es, &pattern, &want, &agent);

    conf.input = "  exclude: [\"/var/log/containers/b_*\"]\n".into();
    conf.write(&config);
    wait_metric(&agent, &outcome("applied"), 1.0);
    let mut later_b = Vec::new();
    write(&a, 50, 100, &mut want);
    write(&b, 50, 100, &mut later_b);
    assert_stored(&es, &pattern, &want, &agent);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        es.count(&pattern),
        want.len() as u64,
        "the excluded file was read on; log:\n{}",
        agent.log_text()
    );
    let checkpoint = fs::read_to_string(node.state_dir().join("checkpoints.json")).unwrap();
    assert!(
        checkpoint.contains(&b.path.display().to_string()),
        "the excluded file's checkpoint entry is gone:\n{checkpoint}"
    );

    // Included again: from where it stopped, nothing twice.
    conf.input = String::new();
    conf.write(&config);
    wait_metric(&agent, &outcome("applied"), 2.0);
    want.extend(later_b);
    assert_stored(&es, &pattern, &want, &agent);
    // Resumed at its boundary, not read again from its head (whose ids Elasticsearch would
    // turn away as already there).
    assert_eq!(duplicates(&agent), 0.0, "lines sent twice");
    let log = agent.log_text();
    agent.stop();
    assert!(
        log.contains("no longer included") && log.contains("included again"),
        "{log}"
    );
}

#[test]
fn a_configmap_data_swap_is_applied() {
    let es = Es::new();
    let node = Node::new();
    let first = unique("reload-cm-a");
    let second = unique("reload-cm-b");
    // The kubelet's layout of a mounted ConfigMap: the file is a link through `..data`, which
    // an update points at a new timestamped directory (a rename over the old link).
    let dir = node.root().join("etc/sluice");
    let a = dir.join("..2026_12_03_10_00_00.1");
    fs::create_dir_all(&a).unwrap();
    let conf = Conf::new(&node, &first);
    fs::write(a.join("sluice.yaml"), conf.text()).unwrap();
    std::os::unix::fs::symlink(a.file_name().unwrap(), dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/sluice.yaml", dir.join("sluice.yaml")).unwrap();
    let config = dir.join("sluice.yaml");
    let pod = node.add_pod("shop", "web-1", "app", false);
    let agent = Agent::start(&config);
    let mut want = Vec::new();
    for i in 0..20 {
        let m = format!("line {i}");
        pod.line(&ts(i), "stdout", &m);
        want.push(m);
    }
    assert_stored(&es, &format!("{first}-*"), &want, &agent);

    let b = dir.join("..2026_12_03_10_05_00.2");
    fs::create_dir_all(&b).unwrap();
    let mut next = Conf::new(&node, &second);
    next.port = conf.port;
    fs::write(b.join("sluice.yaml"), next.text()).unwrap();
    std::os::unix::fs::symlink(b.file_name().unwrap(), dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    fs::remove_dir_all(&a).unwrap();
    wait_metric(&agent, &outcome("applied"), 1.0);
    let mut more = Vec::new();
    for i in 20..40 {
        let m = format!("line {i}");
        pod.line(&ts(i), "stdout", &m);
        more.push(m);
    }
    assert_stored(&es, &format!("{second}-*"), &more, &agent);
    assert_eq!(es.count(&format!("{first}-*")), 20);
    agent.stop();
}
