//! A dry run (`sluice test`): one file's bytes through the reader's own framing, parsing,
//! multiline assembly, context rendering and encoding, collected as documents instead of sent.
//! Never touches Elasticsearch, the Kubernetes API, the checkpoint or the state directory; not
//! on the agent's path (it allocates per document freely).

use std::fs::File;
use std::io::{self, Write};

use k8s_openapi::api::core::v1::Pod;

use super::*;

/// One document as the agent would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub index: String,
    pub id: String,
    pub doc: serde_json::Value,
}

/// Why a line or event would not be shipped as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a CRI/Docker record: shipped raw, tagged `malformed`.
    Malformed { reason: String },
    /// A line longer than `input.max_line_bytes`: its first bytes are shipped, tagged
    /// `truncated`, the rest is lost.
    LineTruncated { line_bytes: u64, max: usize },
    /// An event longer than `parse.max_event_bytes` (a multiline group or a CRI partial line
    /// sequence): cut, tagged `truncated`.
    EventTruncated { max: usize },
    /// The pod's `sluice.io/exclude` annotation: the event is dropped.
    Excluded,
    /// The input ends without `\n`: the agent waits for the line's end and ships nothing yet.
    Incomplete,
    /// No complete first line (and fewer bytes than a fingerprint needs): the agent waits.
    NotReady,
}

impl ProblemKind {
    /// Whether something would be lost or held back (rather than shipped, maybe tagged).
    pub fn loses_data(&self) -> bool {
        !matches!(self, ProblemKind::Malformed { .. })
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProblemKind::Malformed { reason } => write!(f, "malformed line, shipped raw: {reason}"),
            ProblemKind::LineTruncated { line_bytes, max } => write!(
                f,
                "truncated: the line has {line_bytes} bytes, input.max_line_bytes is {max}; the rest is dropped"
            ),
            ProblemKind::EventTruncated { max } => write!(
                f,
                "truncated: the event is longer than parse.max_event_bytes ({max}); the rest is dropped"
            ),
            ProblemKind::Excluded => {
                write!(
                    f,
                    "dropped: excluded by the pod's sluice.io/exclude annotation"
                )
            }
            ProblemKind::Incomplete => write!(
                f,
                "incomplete last line (no newline): not shipped until it ends"
            ),
            ProblemKind::NotReady => write!(
                f,
                "no complete first line: the agent reads nothing of this file yet"
            ),
        }
    }
}

/// A problem at a byte offset of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub offset: u64,
    pub kind: ProblemKind,
}

/// What a dry run of one input gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DryRun {
    pub documents: Vec<Document>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("invalid multiline rules: {0}")]
    Multiline(#[from] multiline::MultilineError),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the pod has no metadata.uid")]
    PodWithoutUid,
    #[error("the encoder wrote a line that is not JSON: {0}")]
    Encoded(serde_json::Error),
}

/// Runs the log file at `file` as the agent would read it under the name `path` (its path
/// metadata and document ids come from `path`; pass the file's own path to use that), with
/// `pod` standing for what the API server would tell. The file is read from its start.
pub fn run_file(
    cfg: &Config,
    path: &Path,
    file: &Path,
    pod: Option<&Pod>,
) -> Result<DryRun, DryRunError> {
    let io_err = |source| DryRunError::Io {
        path: file.to_path_buf(),
        source,
    };
    let tailed = TailedFile::open(file.to_path_buf(), file.to_path_buf(), 0).map_err(io_err)?;
    run(cfg, path, tailed, pod).map_err(|e| match e {
        DryRunError::Io { source, .. } => io_err(source),
        e => e,
    })
}

/// Runs `bytes` (stdin, say) as if they were the log file at `path`. They are spooled to an
/// unlinked temporary file, so the reader's own framing reads them.
pub fn run_bytes(
    cfg: &Config,
    path: &Path,
    bytes: &[u8],
    pod: Option<&Pod>,
) -> Result<DryRun, DryRunError> {
    static SPOOLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let spool = std::env::temp_dir().join(format!(
        "sluice-test-{}-{}.log",
        std::process::id(),
        SPOOLS.fetch_add(1, Ordering::Relaxed)
    ));
    let io_err = |source| DryRunError::Io {
        path: spool.clone(),
        source,
    };
    let tailed = (|| {
        let mut f = File::options().write(true).create_new(true).open(&spool)?;
        f.write_all(bytes)?;
        TailedFile::open(spool.clone(), spool.clone(), 0)
    })();
    // Open (or failed): the name is not needed any more.
    let _ = std::fs::remove_file(&spool);
    run(cfg, path, tailed.map_err(io_err)?, pod)
}

fn run(
    cfg: &Config,
    path: &Path,
    mut tailed: TailedFile,
    pod: Option<&Pod>,
) -> Result<DryRun, DryRunError> {
    let (assembler_cfg, choices) = assembly(cfg)?;
    let mut encoder = encoder(cfg);
    let node = node_fields(cfg);
    let metrics = Metrics::new();
    let mut out = DryRun::default();
    let io_err = |source| DryRunError::Io {
        path: path.to_path_buf(),
        source,
    };

    let real_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    tailed.path = path.to_path_buf();
    tailed.real_path = real_path;
    let size = tailed.size().map_err(io_err)?;
    let Some(fp) = tailed.fingerprint else {
        out.problems.push(Problem {
            offset: 0,
            kind: ProblemKind::NotReady,
        });
        return Ok(out);
    };
    let found = match pod {
        Some(p) => Some(kubernetes::store::Found {
            pod: Arc::new(
                kubernetes::meta::from_pod(p, &cfg.kubernetes.annotation_allowlist)
                    .ok_or(DryRunError::PodWithoutUid)?,
            ),
            namespace_labels: Arc::new(Vec::new()),
            namespace_rate_limit: None,
            version: 1,
        }),
        None => None,
    };
    let format = configured_format(cfg);
    let clock = clock::FileClock::open(tailed.file(), 0, format, cfg.input.max_line_bytes);
    // A pod given for a file whose path names none stands for the path's metadata too (its
    // only or first container): the ids still come from the path alone.
    let pod_ref = kubernetes::path::pod_ref(&tailed.path, &tailed.real_path).or_else(|| {
        found.as_ref().map(|f| PodRef {
            namespace: f.pod.namespace.clone(),
            pod_name: f.pod.name.clone(),
            pod_uid: Some(f.pod.uid.clone()),
            container_name: f
                .pod
                .containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            container_id: None,
        })
    });
    let now = Instant::now();
    let mut of = OpenFile::new(
        1,
        tailed,
        format,
        Assembler::new(assembler_cfg),
        0,
        pod_ref,
        clock,
    );
    // `wanted` as in the agent with Kubernetes on: a pod given and a kubelet path.
    let wanted = found.is_some() && of.pod.is_some();
    let routing = route::Routing::new(cfg);
    let ctx = render(
        &mut of,
        fp,
        found.as_ref(),
        &node,
        (&choices, routing.as_ref()),
        wanted,
    );

    let mut batch = Batch::with_capacity(0);
    let mut buf = Vec::new();
    let mut line_cuts = Vec::new();
    let OpenFile {
        tailed,
        format,
        assembler,
        clock,
        ..
    } = &mut of;
    let mut emit_ctx = EmitCtx {
        encoder: &mut encoder,
        batch: &mut batch,
        metrics: &metrics,
        now,
    };
    // Bounded: every turn reads at least one byte until the end of the input.
    for _ in 0..=size / cfg.input.read_chunk_bytes.max(1) as u64 + 1 {
        let outcome = tailed
            .read(
                &mut buf,
                cfg.input.read_chunk_bytes,
                cfg.input.max_line_bytes,
                &mut |line: Line<'_>| {
                    let malformed = emit_ctx.metrics.parse_errors.get();
                    let excluded = emit_ctx.metrics.events_excluded.get();
                    handle_line(line, &ctx, None, format, assembler, clock, &mut emit_ctx);
                    if emit_ctx.metrics.parse_errors.get() > malformed {
                        let reason = match *format {
                            Some(f) => parse::parse(f, line.bytes)
                                .err()
                                .map_or_else(String::new, |e| e.to_string()),
                            None => "unrecognised container log format".to_string(),
                        };
                        out.problems.push(Problem {
                            offset: line.start,
                            kind: ProblemKind::Malformed { reason },
                        });
                    }
                    if line.truncated {
                        line_cuts.push(line.start);
                        out.problems.push(Problem {
                            offset: line.start,
                            kind: ProblemKind::LineTruncated {
                                line_bytes: line.end - line.start - 1,
                                max: cfg.input.max_line_bytes,
                            },
                        });
                    }
                    if emit_ctx.metrics.events_excluded.get() > excluded {
                        out.problems.push(Problem {
                            offset: line.start,
                            kind: ProblemKind::Excluded,
                        });
                    }
                    ControlFlow::Continue(())
                },
            )
            .map_err(io_err)?;
        match outcome {
            ReadOutcome::Data { .. } | ReadOutcome::Paused { .. } => {}
            ReadOutcome::Eof | ReadOutcome::NotReady | ReadOutcome::Truncated => break,
        }
    }
    // The end of the input is the end of the file: what is in progress is flushed, as the
    // agent does once the multiline timeout has passed.
    assembler.flush_all(&mut |ev| {
        let excluded = emit_ctx.metrics.events_excluded.get();
        emit_ctx.emit(&ctx, ev, false);
        if emit_ctx.metrics.events_excluded.get() > excluded {
            out.problems.push(Problem {
                offset: ev.start,
                kind: ProblemKind::Excluded,
            });
        }
    });
    let framed = tailed.framed_offset();
    if framed < size {
        out.problems.push(Problem {
            offset: framed,
            kind: ProblemKind::Incomplete,
        });
    }

    for item in &batch.items {
        let action: serde_json::Value =
            serde_json::from_slice(&batch.body[item.start as usize..item.doc as usize])
                .map_err(DryRunError::Encoded)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&batch.body[item.doc as usize..item.end as usize])
                .map_err(DryRunError::Encoded)?;
        let meta = action.as_object().and_then(|a| a.values().next());
        let field = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        out.documents.push(Document {
            index: field("_index"),
            id: field("_id"),
            doc,
        });
    }
    event_cuts(&mut out, &line_cuts, cfg.parse.max_event_bytes);
    out.problems.sort_by_key(|p| p.offset);
    Ok(out)
}

/// Events tagged `truncated` that no cut line explains were cut at `parse.max_event_bytes`.
fn event_cuts(out: &mut DryRun, line_cuts: &[u64], max: usize) {
    let mut starts: Vec<u64> = out.documents.iter().filter_map(offset).collect();
    starts.sort_unstable();
    for d in &out.documents {
        let tagged = d.doc["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "truncated"));
        let Some(start) = offset(d).filter(|_| tagged) else {
            continue;
        };
        let next = starts
            .iter()
            .copied()
            .find(|&s| s > start)
            .unwrap_or(u64::MAX);
        if !line_cuts.iter().any(|&c| (start..next).contains(&c)) {
            out.problems.push(Problem {
                offset: start,
                kind: ProblemKind::EventTruncated { max },
            });
        }
    }
}

fn offset(d: &Document) -> Option<u64> {
    d.doc["log"]["offset"].as_u64()
}

#[cfg(test)]
mod tests;
