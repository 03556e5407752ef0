//! One measured run: a fresh state directory and configuration, the release `sluice` started
//! against the sink, its CPU and peak RSS polled until every event has arrived, then SIGTERM and
//! the checks that make a figure trustworthy (clean exit, exactly the tree's events, and with
//! `--kube` every event enriched from the API server).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::endpoint::{self, Counts};
use crate::http::{es_cpu_ms, http, http_json, metric};
use crate::kube::RunSet;
use crate::tree::TreeStats;
use crate::{Args, mib};

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Run {
    pub secs: f64,
    pub cpu_secs: f64,
    pub peak_rss_kib: u64,
    pub mib_per_s: f64,
    pub events_per_s: f64,
    pub cpu_per_gib: f64,
    pub es_cpu_per_gib: Option<f64>,
    /// Agent CPU while idle after catching up, in percent of one core (with `--idle-secs`).
    pub idle_cpu_percent: Option<f64>,
    /// Average bytes of the per-file metadata fragment in the sampled documents (counting
    /// endpoint only).
    pub fragment_bytes_per_doc: Option<f64>,
    /// kube-apiserver + etcd CPU seconds during the run (with `--kube`).
    pub api_cpu_secs: Option<f64>,
    /// When the agent had listed its node's pods, seconds after its start (with `--kube`).
    pub listed_secs: Option<f64>,
}

/// What the runs of one configuration share.
pub struct Target<'a> {
    pub bin_dir: &'a Path,
    pub root: &'a Path,
    pub stats: &'a TreeStats,
    pub kube: Option<&'a RunSet>,
}

/// Where the documents go, and how many have arrived.
enum Sink {
    Counting(Arc<Counts>),
    Elasticsearch { url: String, index: String },
}

impl Sink {
    fn count(&self) -> anyhow::Result<u64> {
        match self {
            Sink::Counting(c) => Ok(c.docs()),
            Sink::Elasticsearch { url, index } => {
                let v = http_json("GET", &format!("{url}/{index}-*/_count"))?;
                Ok(v["count"].as_u64().unwrap_or(0))
            }
        }
    }
}

pub fn run_once(args: &Args, t: &Target<'_>, i: usize) -> anyhow::Result<Run> {
    let run_dir = args.work_dir.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir)?;
    let index = format!("sluice-bench-{}-{i}", std::process::id());
    let (url, sink) = match &args.es {
        Some(es) => {
            let url = es.trim_end_matches('/').to_string();
            let index = index.clone();
            (url.clone(), Sink::Elasticsearch { url, index })
        }
        None => {
            let counts = Arc::new(Counts::default());
            let marker = t.kube.map(RunSet::endpoint_marker);
            let addr = endpoint::counting_endpoint(counts.clone(), marker)?;
            (format!("http://{addr}"), Sink::Counting(counts))
        }
    };
    let es_cpu_before = args.es.as_deref().map(es_cpu_ms).transpose()?;
    // With --kube the agent's own count of events shipped without API metadata is read from
    // its /metrics before it stops.
    let telemetry = match t.kube {
        Some(_) => Some(free_local_port()?),
        None => None,
    };
    let mut config = format!(
        "node_name: {node}\ncluster_name: bench\nstate_dir: {state}\n\
         input:\n  root: {root}\n  include: [\"/var/log/containers/*.log\"]\n  read_from: head\n\
         parse:\n  json:\n    enabled: true\n    target: json\n  multiline:\n    parsers: [{multiline}]\n\
         elasticsearch:\n  endpoints: [\"{url}\"]\n  index: \"{index}-{route}%Y.%m.%d\"\n  compression: {comp}\n\
         telemetry:\n  listen: \"{listen}\"\n",
        node = crate::podspec::NODE,
        state = run_dir.join("state").display(),
        root = t.root.display(),
        comp = if args.gzip { "gzip" } else { "none" },
        multiline = args.multiline,
        route = if args.route {
            "{kubernetes.namespace}-"
        } else {
            ""
        },
        listen = telemetry.as_deref().unwrap_or("off"),
    );
    if let Some(k) = t.kube {
        config.push_str(&k.api.agent_config(args.kube_metadata_wait.as_deref())?);
    }
    let config_file = run_dir.join("sluice.yaml");
    std::fs::write(&config_file, config)?;
    let api_pids = t.kube.map(|k| k.api.pids()).unwrap_or_default();
    let api_cpu_before = cpu_of(&api_pids);
    let mut agent = Command::new(t.bin_dir.join("sluice"));
    agent
        .arg("--config")
        .arg(&config_file)
        .arg("--worker-threads")
        .arg(args.worker_threads.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // With --kube the pod watch's "listed" line tells how long the initial list took.
    agent.env(
        "SLUICE_LOG",
        match t.kube {
            Some(_) => "warn,sluice::kubernetes::watch=info",
            None => "warn",
        },
    );
    // SAFETY: prctl(2) only, between fork and exec. The agent is stopped when this driver dies
    // (a broken pipe, ^C), instead of lingering and skewing later measurements.
    unsafe {
        agent.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        })
    };
    let started = Instant::now();
    let mut child = agent.spawn().context(
        "start sluice (build it: cargo build --release -p sluice -p sluice-tools --bins)",
    )?;
    let pid = child.id();
    let log = child.stderr.take().map(|e| follow_log(e, started));
    let mut result = watch(args, t.stats, &mut child, &sink, started, i);
    let api_cpu_secs = t.kube.map(|_| cpu_of(&api_pids) - api_cpu_before);
    let mut idle_cpu_percent = None;
    if result.is_ok() && args.idle_secs > 0 {
        let (before, _) = proc_usage(pid)?;
        std::thread::sleep(Duration::from_secs(args.idle_secs));
        let (after, hwm) = proc_usage(pid)?;
        idle_cpu_percent = Some((after - before) / args.idle_secs as f64 * 100.0);
        if let Ok(r) = &mut result {
            r.2 = r.2.max(hwm);
        }
    }
    let unenriched = match (&telemetry, &result) {
        (Some(addr), Ok(_)) => Some(events_without_metadata(addr)),
        _ => None,
    };
    // SIGTERM: the agent's normal stop; then reap it whatever happened.
    // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait()?;
    let listed_secs = match log {
        Some(log) => log
            .join()
            .map_err(|_| anyhow::anyhow!("agent log reader panicked"))?,
        None => None,
    };
    let (secs, cpu, hwm) = result?;
    if !status.success() {
        bail!("sluice exited with {status}");
    }
    // Duplicates would show as more documents than events once the agent has stopped.
    let final_count = sink.count()?;
    if args.es.is_none() && final_count != t.stats.events {
        bail!(
            "endpoint counted {final_count} documents, the tree has {} events",
            t.stats.events
        );
    }
    if let Some(unenriched) = unenriched {
        check_enriched(unenriched?, &sink)?;
    }
    let gib = t.stats.bytes as f64 / (1u64 << 30) as f64;
    let es_cpu_per_gib = match (&args.es, es_cpu_before) {
        (Some(es), Some(before)) => {
            let after = es_cpu_ms(es)?;
            let _ = http_json("DELETE", &format!("{es}/{index}-*"));
            Some((after - before) as f64 / 1000.0 / gib)
        }
        _ => None,
    };
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok(Run {
        secs,
        cpu_secs: cpu,
        peak_rss_kib: hwm,
        mib_per_s: mib(t.stats.bytes) / secs,
        events_per_s: t.stats.events as f64 / secs,
        cpu_per_gib: cpu / gib,
        es_cpu_per_gib,
        idle_cpu_percent,
        fragment_bytes_per_doc: match &sink {
            Sink::Counting(c) => Some(c.fragment_bytes_per_doc()),
            Sink::Elasticsearch { .. } => None,
        },
        api_cpu_secs,
        listed_secs,
    })
}

/// Passes the agent's log through to stderr; returns, once the agent has exited, when it said
/// it had listed the node's pods (seconds after its start).
fn follow_log(
    stderr: std::process::ChildStderr,
    started: Instant,
) -> std::thread::JoinHandle<Option<f64>> {
    std::thread::spawn(move || {
        let mut listed = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if listed.is_none() && line.contains("pod metadata listed") {
                listed = Some(started.elapsed().as_secs_f64());
            } else {
                eprintln!("{line}");
            }
        }
        listed
    })
}

/// A run whose events were not all enriched measured something else: it fails. Two
/// independent views: the agent's counter (every event) and the endpoint's sample.
fn check_enriched(unenriched: f64, sink: &Sink) -> anyhow::Result<()> {
    if unenriched != 0.0 {
        bail!(
            "the agent shipped {unenriched} events without API server metadata \
             (sluice_events_without_metadata_total)"
        );
    }
    let Sink::Counting(c) = sink else {
        return Ok(());
    };
    let sampled = c.sampled.load(Ordering::Relaxed);
    let marked = c.marked.load(Ordering::Relaxed);
    if sampled == 0 || marked != sampled {
        bail!(
            "{} of {sampled} sampled documents lack the run set's pod label: not enriched from the API server",
            sampled - marked
        );
    }
    let labelled = c.namespace_labelled.load(Ordering::Relaxed);
    if labelled != sampled {
        eprintln!(
            "note: {} of {sampled} sampled documents have no namespace labels",
            sampled - labelled
        );
    }
    Ok(())
}

fn events_without_metadata(telemetry: &str) -> anyhow::Result<f64> {
    let text = String::from_utf8(http("GET", &format!("http://{telemetry}/metrics"))?)?;
    metric(&text, "sluice_events_without_metadata_total")
        .context("no sluice_events_without_metadata_total in the agent's /metrics")
}

fn free_local_port() -> anyhow::Result<String> {
    // Bound and released: the agent binds it a moment later (a race only with another
    // process picking the same ephemeral port meanwhile).
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// Polls until every event has arrived; returns (seconds, CPU seconds, VmHWM KiB) at that moment.
fn watch(
    args: &Args,
    stats: &TreeStats,
    child: &mut Child,
    sink: &Sink,
    started: Instant,
    i: usize,
) -> anyhow::Result<(f64, f64, u64)> {
    let poll = match sink {
        Sink::Elasticsearch { .. } => Duration::from_millis(500),
        Sink::Counting(_) => Duration::from_millis(20),
    };
    let mut last_print = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            bail!("sluice exited early: {st}");
        }
        let n = sink.count()?;
        let (cpu, hwm) = proc_usage(child.id())?;
        let secs = started.elapsed().as_secs_f64();
        if n >= stats.events {
            eprint!("\r\x1b[K");
            return Ok((secs, cpu, hwm));
        }
        if secs > args.timeout_secs as f64 {
            bail!(
                "timed out after {secs:.0} s with {n} of {} documents",
                stats.events
            );
        }
        if last_print.elapsed() >= Duration::from_millis(500) {
            let done = n as f64 / stats.events as f64;
            eprint!(
                "\r\x1b[K[run {}/{}] {secs:5.1} s  {:6.1}/{:.1} MiB  {n}/{} docs  {:.1} MiB/s  cpu {cpu:.1} s  rss {:.1} MiB",
                i + 1,
                args.runs,
                done * mib(stats.bytes),
                mib(stats.bytes),
                stats.events,
                done * mib(stats.bytes) / secs,
                hwm as f64 / 1024.0
            );
            let _ = std::io::stderr().flush();
            last_print = Instant::now();
        }
        std::thread::sleep(poll);
    }
}

/// CPU seconds of several processes (those that have exited count as 0).
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| proc_usage(*p).ok())
        .map(|(cpu, _)| cpu)
        .sum()
}

/// User + system CPU seconds and VmHWM (KiB) of a live process.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').context("bad /proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok((ticks as f64 / hz, hwm))
}
