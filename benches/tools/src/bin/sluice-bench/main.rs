//! `sluice-bench`: the end-to-end throughput benchmark.
//!
//! Writes (or reuses) a deterministic kubelet-style log tree with `sluice-loggen`, starts a bulk
//! endpoint that only counts documents (or points at a real Elasticsearch), runs the release
//! `sluice` binary from the same directory against it until every event has arrived, and reports
//! MiB/s, events/s, CPU-seconds per GiB (user + system of the agent, from `/proc/PID/stat`) and
//! peak RSS (`VmHWM`). Each run starts with an empty state directory, so the agent catches up on
//! the whole tree from its head, as after a node restart with a backlog.
//!
//! With `--kube`, a real kube-apiserver holds one pod per log file, and every event must carry
//! the pod's API metadata (labels, annotations, owner, image, IP, namespace labels) as in
//! production; a run where it does not fails.
//!
//! Not a test: speed is checked here, never in CI. See BENCHMARKS.md (at the repository root) for
//! the method. A development tool: it lives in the `sluice-tools` crate, never in the agent.
//!
//! Modules: `tree` (the log tree), `endpoint` (the counting bulk endpoint), `run` (one measured
//! run and its checks), `report` (best / median, results file), `kube` and `podspec` (the API
//! server, and what its pods look like), `http` (a minimal client for plain-http calls).

mod endpoint;
mod http;
mod kube;
mod podspec;
mod report;
mod run;
mod tree;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

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
    /// The agent's multiline grouping: `none` (`parsers: [none]`, every line an event: the
    /// figures of BENCHMARKS.md before multiline `auto` became the default) or `auto` (the
    /// agent's default: the tree's traces become one event each).
    #[arg(long, default_value = "none")]
    multiline: String,
    /// Route each file to an index of its own namespace (`elasticsearch.index` with
    /// `{kubernetes.namespace}`): the cost of routing, against the same run without.
    #[arg(long)]
    route: bool,
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
    /// Enrich from a real kube-apiserver: one pod per log file, created before the runs.
    #[arg(long)]
    kube: bool,
    /// The `scripts/kube-apiserver` instance to use (started if not running).
    #[arg(long, default_value = "bench")]
    kube_instance: String,
    #[arg(long, default_value = "scripts/kube-apiserver")]
    kube_script: PathBuf,
    /// Pod creations in flight at once during set-up.
    #[arg(long, default_value_t = 16)]
    kube_concurrency: usize,
    /// Leave the API server running at the end (it is stopped if this run set started it).
    #[arg(long)]
    kube_keep: bool,
    /// The agent's `kubernetes.metadata_wait` (unset: the agent's default, 2s): how long a file
    /// waits for its pod's metadata before it ships with what the path tells.
    #[arg(long)]
    kube_metadata_wait: Option<String>,
}

fn main() -> anyhow::Result<()> {
    // reqwest (--kube's admin client) uses rustls, and the workspace enables both the ring and
    // aws-lc-rs providers: pick one, as the agent does. Err: one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("executable has no directory")?
        .to_path_buf();
    let (root, mut stats) = tree::tree(&args, &bin_dir)?;
    match args.multiline.as_str() {
        "none" => {}
        "auto" if stats.events_with_multiline > 0 => stats.events = stats.events_with_multiline,
        "auto" => anyhow::bail!("the tree was written without a multiline count: delete it"),
        other => anyhow::bail!("--multiline {other}: none or auto"),
    }
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
    let kube = match args.kube {
        true => Some(kube::RunSet::prepare(&args, &root)?),
        false => None,
    };
    if let Some(k) = &kube {
        report::setup(&k.setup);
    }
    let target = run::Target {
        bin_dir: &bin_dir,
        root: &root,
        stats: &stats,
        kube: kube.as_ref(),
    };
    let runs = run_all(&args, &target);
    // Pods are deleted (and the API server stopped if started here) whatever the runs did.
    let setup = kube.as_ref().map(|k| k.setup);
    if let Some(k) = kube {
        k.api.finish(args.kube_keep)?;
    }
    report::summary(&args, &stats, &runs?, setup.as_ref())
}

fn run_all(args: &Args, target: &run::Target<'_>) -> anyhow::Result<Vec<run::Run>> {
    tree::warm_page_cache(target.root)?;
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let r = run::run_once(args, target, i)?;
        report::run(args, i, &r);
        runs.push(r);
    }
    Ok(runs)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}
