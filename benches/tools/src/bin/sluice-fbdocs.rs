//! `sluice-fbdocs`: turns a kubelet-style log tree (as `sluice-loggen` writes it) into the
//! documents Fluent Bit's defaults would send for it, as a bulk NDJSON file, for the disk
//! comparison of `scripts/bench-disk` (BENCHMARKS.md, "Index size"). A development tool: it
//! never runs in the agent and is not a Fluent Bit emulator beyond the document shape.
//!
//! The shape is that of Fluent Bit's `tail` input with the built-in `cri` multiline parser
//! (fields `time`, `stream`, `_p`, `log`; `P` chunks joined into one record), the `kubernetes`
//! filter with `Merge_Log Off` (the line stays a string under `log`; metadata under
//! `kubernetes.{pod_name, namespace_name, pod_id, host, container_name, docker_id}`) and the `es`
//! output's defaults (`@timestamp` with millisecond precision, auto ids, `create`). Labels,
//! annotations and the image fields come from the API server: they are left out here exactly as
//! the agent's documents leave them out when it runs without one, so both sides carry the same
//! information. Stack traces stay one record per line (Fluent Bit joins them only with an extra
//! multiline parser).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Write Fluent Bit's default Elasticsearch documents for a kubelet log tree")]
struct Args {
    /// Root of the fake node (reads <root>/var/log/containers/*.log).
    #[arg(long)]
    root: PathBuf,
    /// The node name Fluent Bit's kubernetes filter would report as `kubernetes.host`.
    #[arg(long, default_value = "bench-node")]
    host: String,
    /// The bulk NDJSON file to write (`{"create":{}}` + document per record).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.root.join("var/log/containers");
    let mut links: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    links.sort();
    let mut out = BufWriter::new(File::create(&args.out)?);
    let (mut docs, mut bytes) = (0u64, 0u64);
    for link in &links {
        let real = fs::canonicalize(link)?;
        let Some(pod) = sluice::kubernetes::path::pod_ref(link, &real) else {
            bail!("{}: not a kubelet log path", link.display());
        };
        let mut kubernetes = json!({
            "pod_name": pod.pod_name,
            "namespace_name": pod.namespace,
            "host": args.host,
            "container_name": pod.container_name,
        });
        if let Some(uid) = &pod.pod_uid {
            kubernetes["pod_id"] = json!(uid);
        }
        if let Some(id) = &pod.container_id {
            kubernetes["docker_id"] = json!(id);
        }
        bytes += fs::metadata(&real)?.len();
        let mut pending: Option<(String, String, String)> = None;
        for line in BufReader::new(File::open(&real)?).lines() {
            let line = line?;
            let mut parts = line.splitn(4, ' ');
            let (Some(time), Some(stream), Some(tag), Some(log)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                bail!("{}: not a CRI record: {line:?}", real.display());
            };
            let (time, stream, mut log) = match pending.take() {
                Some((t, s, mut l)) => {
                    l.push_str(log);
                    (t, s, l)
                }
                None => (time.to_string(), stream.to_string(), log.to_string()),
            };
            if tag == "P" {
                pending = Some((time, stream, log));
                continue;
            }
            // The `es` output writes the record's time as `@timestamp`, milliseconds and `Z`.
            let ts = format!("{}Z", time.get(..23).unwrap_or(&time));
            log.truncate(log.trim_end_matches('\n').len());
            let doc = json!({
                "@timestamp": ts,
                "time": time,
                "stream": stream,
                "_p": "F",
                "log": log,
                "kubernetes": kubernetes,
            });
            out.write_all(b"{\"create\":{}}\n")?;
            serde_json::to_writer(&mut out, &doc)?;
            out.write_all(b"\n")?;
            docs += 1;
        }
    }
    out.flush()?;
    println!(
        "{}",
        json!({"files": links.len(), "docs": docs, "bytes": bytes})
    );
    Ok(())
}
