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
    /// Events the agent ships: each physical line one, unless traces are grouped (see `main`).
    pub events: u64,
    /// Events with each stack trace grouped into one (`--multiline auto`).
    #[serde(default)]
    pub events_with_multiline: u64,
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
        .context(
            "run sluice-loggen (build it: cargo build --release -p sluice -p sluice-tools --bins)",
        )?;
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

/// One container log file of the tree, as the kubelet's paths name it.
#[derive(Debug, Clone)]
pub struct Container {
    pub namespace: String,
    pub pod: String,
    /// The uid in the `/var/log/pods` directory name.
    pub uid: String,
    pub container: String,
    /// From the `/var/log/containers` symlink name.
    pub container_id: String,
    /// `var/log/pods/<ns>_<pod>_<uid>` (absolute).
    pub pod_dir: PathBuf,
    /// `var/log/containers/<pod>_<ns>_<container>-<id>.log` (absolute).
    pub link: PathBuf,
}

/// The tree's container log files, read from its directory names with the agent's own path
/// parser, so the pods created for them match what the agent will look up.
pub fn containers(root: &Path) -> anyhow::Result<Vec<Container>> {
    use sluice::kubernetes::path::{from_containers_path, from_pods_path};
    let root = std::fs::canonicalize(root)?;
    // The symlinks give the container ids; the pod directories the uids. Keyed by the
    // directory so a tree left half-relabelled by an interrupted run is still read right.
    let mut links = std::collections::HashMap::new();
    for e in std::fs::read_dir(root.join("var/log/containers"))? {
        let link = e?.path();
        let r = from_containers_path(&link).context("not a kubelet symlink name")?;
        let id = r
            .container_id
            .context("symlink name without container id")?;
        links.insert((r.namespace, r.pod_name, r.container_name), (id, link));
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join("var/log/pods"))? {
        let pod_dir = e?.path();
        for c in std::fs::read_dir(&pod_dir)? {
            let log = c?.path().join("0.log");
            let r = from_pods_path(&log)
                .with_context(|| format!("{} is not a kubelet path", log.display()))?;
            let key = (r.namespace, r.pod_name, r.container_name);
            let (container_id, link) = links
                .remove(&key)
                .with_context(|| format!("no /var/log/containers link for {}", log.display()))?;
            let (namespace, pod, container) = key;
            out.push(Container {
                namespace,
                pod,
                uid: r.pod_uid.context("pods path without uid")?,
                container,
                container_id,
                pod_dir: pod_dir.clone(),
                link,
            });
        }
    }
    out.sort_by(|a, b| a.link.cmp(&b.link));
    Ok(out)
}

/// Gives a container's pod the uid the API server assigned (clients cannot choose it): renames
/// the pod directory and points the symlink at the new place, as the kubelet would have laid
/// them out for that pod. Renames keep the files' inodes, and so their cached pages.
pub fn set_pod_uid(c: &mut Container, uid: &str) -> anyhow::Result<()> {
    let parent = c.pod_dir.parent().context("pod dir has no parent")?;
    let new_dir = parent.join(format!("{}_{}_{uid}", c.namespace, c.pod));
    // A pod with several containers is renamed with its first one.
    if new_dir != c.pod_dir && c.pod_dir.exists() {
        std::fs::rename(&c.pod_dir, &new_dir)
            .with_context(|| format!("rename {}", c.pod_dir.display()))?;
    }
    let target = new_dir.join(&c.container).join("0.log");
    let tmp = c.link.with_extension("log.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, &c.link)?;
    c.pod_dir = new_dir;
    c.uid = uid.to_string();
    Ok(())
}
