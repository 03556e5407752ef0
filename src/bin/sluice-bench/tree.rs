//! The log tree a run reads: generated once per parameter set by `sluice-loggen` and reused,
//! and read once before the runs so the page cache is warm.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::Args;

/// What `sluice-loggen` wrote (its JSON summary).
#[derive(serde::Deserialize)]
pub struct TreeStats {
    pub files: usize,
    pub events: u64,
    pub bytes: u64,
}

/// Generates the tree once per parameter set; later runs reuse it.
pub fn tree(args: &Args, bin_dir: &Path) -> anyhow::Result<(PathBuf, TreeStats)> {
    let name = format!(
        "tree-f{}-b{}-l{}-{}-j{}-p{}-t{}",
        args.files,
        args.bytes,
        args.line_bytes,
        args.format,
        args.json_percent,
        args.partial_percent,
        args.trace_percent
    );
    let root = args.work_dir.join(name);
    let stats_file = root.join("stats.json");
    if let Ok(s) = std::fs::read(&stats_file) {
        return Ok((root, serde_json::from_slice(&s)?));
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    eprintln!("generating {} …", root.display());
    let out = Command::new(bin_dir.join("sluice-loggen"))
        .arg("--root")
        .arg(&root)
        .args(["--pods", &args.files.to_string()])
        .args(["--bytes", &args.bytes])
        .args(["--line-bytes", &args.line_bytes.to_string()])
        .args(["--format", &args.format])
        .args(["--json-percent", &args.json_percent.to_string()])
        .args(["--partial-percent", &args.partial_percent.to_string()])
        .args(["--trace-percent", &args.trace_percent.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("run sluice-loggen (build it: cargo build --release --bins)")?;
    if !out.status.success() {
        bail!("sluice-loggen failed: {}", out.status);
    }
    std::fs::write(&stats_file, &out.stdout)?;
    Ok((root, serde_json::from_slice(&out.stdout)?))
}

/// Reads every file once so all runs, the first included, find the page cache warm.
pub fn warm_page_cache(root: &Path) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for e in std::fs::read_dir(root.join("var/log/containers"))? {
        let mut f = std::fs::File::open(e?.path())?;
        while f.read(&mut buf)? > 0 {}
    }
    Ok(())
}
