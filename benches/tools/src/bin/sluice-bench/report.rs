//! What a run set prints, and the JSON line it appends to `--results`: each run, then the best
//! and the median of each figure.

use std::io::Write;

use crate::Args;
use crate::kube::Setup;
use crate::run::Run;
use crate::tree::TreeStats;

pub fn setup(s: &Setup) {
    eprintln!(
        "kube: {} pods ready in {:.1} s (API server up {:.1} s, old pods deleted {:.1} s, \
         namespaces + pods created {:.1} s = {:.0} pods/s, tree relabelled {:.1} s)",
        s.pods,
        s.start_secs + s.cleanup_secs + s.create_secs + s.relabel_secs,
        s.start_secs,
        s.cleanup_secs,
        s.create_secs,
        s.pods as f64 / s.create_secs.max(1e-9),
        s.relabel_secs
    );
}

pub fn run(args: &Args, i: usize, r: &Run) {
    let mut extra = String::new();
    if let Some(c) = r.es_cpu_per_gib {
        extra += &format!(", Elasticsearch {c:.1} CPU-s/GiB");
    }
    if let Some(c) = r.idle_cpu_percent {
        extra += &format!(", idle {c:.2}% of a core");
    }
    if let Some(b) = r.fragment_bytes_per_doc {
        extra += &format!(", metadata {b:.0} B/doc");
    }
    if let Some(l) = r.listed_secs {
        extra += &format!(", pods listed at {l:.2} s");
    }
    if let Some(c) = r.api_cpu_secs {
        extra += &format!(", API server + etcd {c:.2} CPU-s");
    }
    eprintln!(
        "run {}/{}: {:.2} s, {:.1} MiB/s, {:.0} events/s, {:.2} CPU-s/GiB, peak RSS {:.1} MiB{extra}",
        i + 1,
        args.runs,
        r.secs,
        r.mib_per_s,
        r.events_per_s,
        r.cpu_per_gib,
        r.peak_rss_kib as f64 / 1024.0,
    );
}

/// (best, median) of one figure; `lower`: lower is better.
fn best_median(runs: &[Run], f: fn(&Run) -> f64, lower: bool) -> (f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let b = if lower { v[0] } else { v[v.len() - 1] };
    (b, v[v.len() / 2])
}

pub fn summary(
    args: &Args,
    stats: &TreeStats,
    runs: &[Run],
    setup: Option<&Setup>,
) -> anyhow::Result<()> {
    let (cpu_b, cpu_m) = best_median(runs, |r| r.cpu_per_gib, true);
    let (mibs_b, mibs_m) = best_median(runs, |r| r.mib_per_s, false);
    let (eps_b, eps_m) = best_median(runs, |r| r.events_per_s, false);
    let (rss_b, rss_m) = best_median(runs, |r| r.peak_rss_kib as f64 / 1024.0, true);
    let fragment = runs
        .iter()
        .all(|r| r.fragment_bytes_per_doc.is_some())
        .then(|| best_median(runs, |r| r.fragment_bytes_per_doc.unwrap_or(0.0), true).1);
    let sink = if args.es.is_some() {
        "elasticsearch"
    } else {
        "counting"
    };
    let metadata = if args.kube { "kube" } else { "path" };
    println!(
        "files={} bytes={} line={} format={} gzip={} workers={} sink={sink} metadata={metadata} | CPU-s/GiB best {cpu_b:.2} median {cpu_m:.2} | MiB/s best {mibs_b:.1} median {mibs_m:.1} | events/s best {eps_b:.0} median {eps_m:.0} | peak RSS MiB best {rss_b:.1} median {rss_m:.1}{}",
        stats.files,
        args.bytes,
        args.line_bytes,
        args.format,
        args.gzip,
        args.worker_threads,
        fragment
            .map(|b| format!(" | metadata B/doc {b:.0}"))
            .unwrap_or_default()
    );
    if let Some(path) = &args.results {
        let line = serde_json::json!({
            "label": args.label, "files": stats.files, "bytes": stats.bytes,
            "events": stats.events, "multiline": args.multiline, "route": args.route, "line_bytes": args.line_bytes, "format": args.format,
            "gzip": args.gzip, "workers": args.worker_threads, "sink": sink,
            "metadata": metadata, "kube_setup": setup,
            "cpu_per_gib": {"best": cpu_b, "median": cpu_m},
            "mib_per_s": {"best": mibs_b, "median": mibs_m},
            "events_per_s": {"best": eps_b, "median": eps_m},
            "peak_rss_mib": {"best": rss_b, "median": rss_m},
            "fragment_bytes_per_doc": fragment,
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
