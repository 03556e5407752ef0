//! `sluice-bench`: the end-to-end throughput benchmark.
//!
//! Writes (or reuses) a deterministic kubelet-style log tree with `sluice-loggen`, starts a bulk
//! endpoint that only counts documents (or points at a real Elasticsearch), runs the release
//! `sluice` binary from the same directory against it until every event has arrived, and reports
//! MiB/s, events/s, CPU-seconds per GiB (user + system of the agent, from `/proc/PID/stat`) and
//! peak RSS (`VmHWM`). Each run starts with an empty state directory, so the agent catches up on
//! the whole tree from its head, as after a node restart with a backlog.
//!
//! Not a test: speed is checked here, never in CI. See BENCHMARKS.md for the method.

mod endpoint;
mod es;
mod tree;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use es::{es_cpu_ms, http_json};
use tree::TreeStats;

#[derive(Parser, Clone)]
#[command(about = "Measure sluice catching up on a container log backlog")]
struct Args {
    /// Number of log files (one container per pod).
    #[arg(long, default_value_t = 40)]
    files: usize,
    /// Total size of the tree, e.g. 1GiB, 256MiB.
    #[arg(long, default_value = "1GiB")]
    bytes: String,
    /// Typical plain line length.
    #[arg(long, default_value_t = 120)]
    line_bytes: usize,
    /// cri, docker or mixed (even pods CRI, odd pods docker).
    #[arg(long, default_value = "cri")]
    format: String,
    #[arg(long, default_value_t = 30)]
    json_percent: u32,
    #[arg(long, default_value_t = 5)]
    partial_percent: u32,
    #[arg(long, default_value_t = 3)]
    trace_percent: u32,
    /// Gzip the bulk requests.
    #[arg(long)]
    gzip: bool,
    /// The agent's async runtime threads (`--worker-threads`).
    #[arg(long, default_value_t = 2)]
    worker_threads: u16,
    /// Repetitions; the best and the median are reported (0: only generate the tree).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where generated trees are kept (one per parameter set, reused).
    #[arg(long, default_value = "/tmp/sluice-bench")]
    work_dir: PathBuf,
    /// Ship to this Elasticsearch instead of the counting endpoint (and report its CPU too).
    #[arg(long)]
    es: Option<String>,
    /// Append one JSON line per configuration (best and median) to this file.
    #[arg(long)]
    results: Option<PathBuf>,
    /// A label stored with the results (e.g. the git revision).
    #[arg(long, default_value = "")]
    label: String,
    /// After catching up, keep the agent idle this long and report its CPU use meanwhile (the
    /// cost of polling and rescanning many files with nothing new in them).
    #[arg(long, default_value_t = 0)]
    idle_secs: u64,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Run {
    secs: f64,
    cpu_secs: f64,
    peak_rss_kib: u64,
    mib_per_s: f64,
    events_per_s: f64,
    cpu_per_gib: f64,
    es_cpu_per_gib: Option<f64>,
    /// Agent CPU while idle after catching up, in percent of one core (with `--idle-secs`).
    idle_cpu_percent: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("executable has no directory")?
        .to_path_buf();
    let (root, stats) = tree::tree(&args, &bin_dir)?;
    eprintln!(
        "tree: {} files, {} events, {:.1} MiB at {}",
        stats.files,
        stats.events,
        mib(stats.bytes),
        root.display()
    );
    if args.runs == 0 {
        return Ok(()); // only generate the tree
    }
    tree::warm_page_cache(&root)?;
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let r = run_once(&args, &bin_dir, &root, &stats, i)?;
        eprintln!(
            "run {}/{}: {:.2} s, {:.1} MiB/s, {:.0} events/s, {:.2} CPU-s/GiB, peak RSS {:.1} MiB{}",
            i + 1,
            args.runs,
            r.secs,
            r.mib_per_s,
            r.events_per_s,
            r.cpu_per_gib,
            r.peak_rss_kib as f64 / 1024.0,
            r.es_cpu_per_gib
                .map(|c| format!(", Elasticsearch {c:.1} CPU-s/GiB"))
                .unwrap_or_default()
                + &r.idle_cpu_percent
                    .map(|c| format!(", idle {c:.2}% of a core"))
                    .unwrap_or_default()
        );
        runs.push(r);
    }
    let best = |f: fn(&Run) -> f64, lower: bool| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let b = if lower { v[0] } else { v[v.len() - 1] };
        (b, v[v.len() / 2])
    };
    let (cpu_b, cpu_m) = best(|r| r.cpu_per_gib, true);
    let (mibs_b, mibs_m) = best(|r| r.mib_per_s, false);
    let (eps_b, eps_m) = best(|r| r.events_per_s, false);
    let (rss_b, rss_m) = best(|r| r.peak_rss_kib as f64 / 1024.0, true);
    println!(
        "files={} bytes={} line={} format={} gzip={} workers={} sink={} | CPU-s/GiB best {:.2} median {:.2} | MiB/s best {:.1} median {:.1} | events/s best {:.0} median {:.0} | peak RSS MiB best {:.1} median {:.1}",
        stats.files,
        args.bytes,
        args.line_bytes,
        args.format,
        args.gzip,
        args.worker_threads,
        if args.es.is_some() {
            "elasticsearch"
        } else {
            "counting"
        },
        cpu_b,
        cpu_m,
        mibs_b,
        mibs_m,
        eps_b,
        eps_m,
        rss_b,
        rss_m
    );
    if let Some(path) = &args.results {
        let line = serde_json::json!({
            "label": args.label, "files": stats.files, "bytes": stats.bytes,
            "events": stats.events, "line_bytes": args.line_bytes, "format": args.format,
            "gzip": args.gzip, "workers": args.worker_threads,
            "sink": if args.es.is_some() { "elasticsearch" } else { "counting" },
            "cpu_per_gib": {"best": cpu_b, "median": cpu_m},
            "mib_per_s": {"best": mibs_b, "median": mibs_m},
            "events_per_s": {"best": eps_b, "median": eps_m},
            "peak_rss_mib": {"best": rss_b, "median": rss_m},
            "runs": runs,
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn run_once(
    args: &Args,
    bin_dir: &Path,
    root: &Path,
    stats: &TreeStats,
    i: usize,
) -> anyhow::Result<Run> {
    let run_dir = args.work_dir.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir)?;
    let index = format!("sluice-bench-{}-{i}", std::process::id());
    let (url, counter): (String, Box<dyn Fn() -> anyhow::Result<u64>>) = match &args.es {
        Some(es) => {
            let es = es.trim_end_matches('/').to_string();
            let count_url = format!("{es}/{index}-*/_count");
            (
                es,
                Box::new(move || {
                    let v = http_json("GET", &count_url)?;
                    Ok(v["count"].as_u64().unwrap_or(0))
                }),
            )
        }
        None => {
            let count = Arc::new(AtomicU64::new(0));
            let addr = endpoint::counting_endpoint(count.clone())?;
            (
                format!("http://{addr}"),
                Box::new(move || Ok(count.load(Ordering::Relaxed))),
            )
        }
    };
    let es_cpu_before = args.es.as_deref().map(es_cpu_ms).transpose()?;
    let config = run_dir.join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "node_name: bench-node\ncluster_name: bench\nstate_dir: {state}\n\
             input:\n  root: {root}\n  include: [\"/var/log/containers/*.log\"]\n  read_from: head\n\
             parse:\n  json:\n    enabled: true\n    target: json\n\
             elasticsearch:\n  endpoints: [\"{url}\"]\n  index: \"{index}-%Y.%m.%d\"\n  compression: {comp}\n\
             telemetry:\n  listen: \"off\"\n",
            state = run_dir.join("state").display(),
            root = root.display(),
            comp = if args.gzip { "gzip" } else { "none" },
        ),
    )?;
    let started = Instant::now();
    let mut child = Command::new(bin_dir.join("sluice"))
        .arg("--config")
        .arg(&config)
        .arg("--worker-threads")
        .arg(args.worker_threads.to_string())
        .env("SLUICE_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("start sluice (build it: cargo build --release --bins)")?;
    let pid = child.id();
    let mut result = watch(args, &mut child, pid, stats, &*counter, started, i);
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
    // SIGTERM: the agent's normal stop; then reap it whatever happened.
    // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait()?;
    let (secs, cpu, hwm) = result?;
    if !status.success() {
        bail!("sluice exited with {status}");
    }
    // Duplicates would show as more documents than events once the agent has stopped.
    let final_count = counter()?;
    if args.es.is_none() && final_count != stats.events {
        bail!(
            "endpoint counted {final_count} documents, the tree has {} events",
            stats.events
        );
    }
    let gib = stats.bytes as f64 / (1u64 << 30) as f64;
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
        mib_per_s: mib(stats.bytes) / secs,
        events_per_s: stats.events as f64 / secs,
        cpu_per_gib: cpu / gib,
        es_cpu_per_gib,
        idle_cpu_percent,
    })
}

/// Polls until every event has arrived; returns (seconds, CPU seconds, VmHWM KiB) at that moment.
fn watch(
    args: &Args,
    child: &mut Child,
    pid: u32,
    stats: &TreeStats,
    counter: &dyn Fn() -> anyhow::Result<u64>,
    started: Instant,
    i: usize,
) -> anyhow::Result<(f64, f64, u64)> {
    let poll = if args.es.is_some() {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(20)
    };
    let mut last_print = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            bail!("sluice exited early: {st}");
        }
        let n = counter()?;
        let (cpu, hwm) = proc_usage(pid)?;
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
