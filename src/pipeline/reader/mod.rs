//! The read loop, on its own thread: discover files, read what is new, frame, parse, assemble
//! and encode straight into the open batch; seal batches by size, count and time, and hand them
//! to the sink through a bounded channel. When the sink is saturated the send blocks and reading
//! stops: the log files are the buffer.
//!
//! Each sealed batch records, for every file it touched, the file's *boundary*: the offset below
//! which all events are in this or an earlier batch. Delivery commits those boundaries once the
//! batches are acknowledged, so a checkpoint never lands inside a partial line or a group.
//!
//! This file holds the reader's state and the loop that schedules it; by concern:
//! `files` (scan, open, close), `read` (one file's turn: frame, parse, assemble, encode),
//! `seal` (idle flushes, closing rotated files, sealing batches: the backpressure),
//! `metadata` (a file's context and the wait for its pod), `rotation` (rotated siblings, the
//! bound on open rotated files), `compressed` (owed `.gz` rotations), `succession` (events split
//! by a rotation), `clock`, `choice` (per-pod multiline rules), `fair` (which file reads next:
//! round robin by tenant, read budgets), `fault` (test faults); `dry` runs one file's
//! bytes through the same emit path without the loop (`sluice test`).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::{Config, FormatChoice, ReadFrom};
use crate::delivery::{Delivery, FileKey};
use crate::kubernetes::{self, PodRef, store::Store};
use crate::parse::assemble::{Assembler, AssemblerConfig};
use crate::parse::{self, Format, multiline};
use crate::sink::elasticsearch::config::Compat;
use crate::sink::elasticsearch::encode::{self, Encoder, FileContext, NodeFields, PodFields};
use crate::sink::elasticsearch::{Batch, BatchPool, IndexPattern};
use crate::tail::discover::{self, Found};
use crate::tail::watch::{Changes, Watcher};
use crate::tail::{CheckpointEntry, FileId, IdScheme, Line, ReadOutcome, TailedFile};
use crate::telemetry::Metrics;
use crate::telemetry::health::Health;

mod choice;
mod clock;
mod compressed;
pub mod dry;
mod fair;
mod fault;
mod files;
mod live;
mod metadata;
mod read;
mod rotation;
mod route;
mod seal;
mod succession;

pub use live::{Live, LiveSlot};

use fault::TestFault;
use metadata::{prepare_context, render, track};
use read::{EmitCtx, full, handle_line, origin};
use route::Routing;

/// How many chunks one file may read before the others get their turn.
const CHUNKS_PER_TURN: usize = 4;
/// Longest sleep between checks of the stop flag.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// A rotated file is closed once it has been at its end for this long.
const ROTATED_GRACE: Duration = Duration::from_secs(1);
/// Event-driven rescans happen at most this often.
const MIN_RESCAN_GAP: Duration = Duration::from_millis(200);

struct OpenFile {
    key: FileKey,
    tailed: TailedFile,
    /// Rendered once the fingerprint is known.
    ctx: Option<FileContext>,
    format: Option<Format>,
    assembler: Assembler,
    /// The boundary recorded in the last sealed batch.
    sealed_boundary: u64,
    /// Registered with delivery (needs the fingerprint).
    tracked: bool,
    /// Lines or flushed events since the last seal.
    touched: bool,
    /// The path no longer leads to this file: read to the end, then close.
    rotated_at: Option<Instant>,
    at_eof_since: Option<Instant>,
    /// When a read last found nothing more to read (cleared by a read that got data but stopped
    /// short of the end). An idle flush measures a group's idleness up to this moment only: a
    /// file not read for a while (a read budget, a full pipeline) may hold the group's
    /// continuation unread, and must not have its group cut.
    read_to_end_at: Option<Instant>,
    /// Offset to resume from, from the checkpoint.
    resume: u64,
    opened_at: Instant,
    /// What the path tells about the file's pod.
    pod: Option<PodRef>,
    /// The time of lines without a timestamp of their own.
    clock: clock::FileClock,
    /// The store version of the pod metadata rendered into `ctx`; `None`: path metadata only.
    meta_version: Option<u64>,
    /// A rotated file's link to the live file that continues it (see `succession`).
    link: succession::Link,
    /// Rotated predecessors not drained yet: this file does not read until they are.
    held_by: u32,
    /// Events in progress at this rotated file's end were handed to the successor: the
    /// boundary stays at their start until the successor has emitted them.
    handed_over: Option<u64>,
    /// The rotated file whose events in progress this file adopted, until it emitted them.
    predecessor: Option<succession::Predecessor>,
    /// Its tenant (`fair`), placed when the file is opened, and its read budgets, settled when
    /// its context is rendered.
    share: fair::Share,
    /// The index the file was routed to before a restart (its checkpoint entry's `route`):
    /// its first rendering takes it instead of resolving one from today's metadata.
    kept_route: Option<IndexPattern>,
    /// How its document ids are made: [`IdScheme::CURRENT`], or what its checkpoint entry says
    /// (a file an earlier version began keeps that version's ids to its end).
    ids: IdScheme,
}

impl OpenFile {
    /// A file just opened at `resume` (a checkpointed event boundary, or 0): nothing read,
    /// nothing rendered, not registered with delivery yet, linked to no other file.
    fn new(
        key: FileKey,
        tailed: TailedFile,
        format: Option<Format>,
        assembler: Assembler,
        resume: u64,
        pod: Option<PodRef>,
        clock: clock::FileClock,
    ) -> OpenFile {
        OpenFile {
            key,
            tailed,
            ctx: None,
            format,
            assembler,
            sealed_boundary: resume,
            tracked: false,
            touched: false,
            rotated_at: None,
            at_eof_since: None,
            read_to_end_at: None,
            resume,
            opened_at: Instant::now(),
            pod,
            meta_version: None,
            clock,
            link: succession::Link::Unlinked,
            held_by: 0,
            handed_over: None,
            predecessor: None,
            share: fair::Share::default(),
            kept_route: None,
            ids: IdScheme::CURRENT,
        }
    }

    fn boundary(&self) -> u64 {
        let framed = self.tailed.framed_offset();
        let b = self
            .assembler
            .pending_start()
            .map_or(framed, |p| p.min(framed));
        self.handed_over.map_or(b, |h| h.min(b))
    }
}

pub struct Reader {
    cfg: Arc<Config>,
    /// Boxed: an open file's state is several hundred bytes, and the table's spare slots
    /// (up to half of it) should not each hold that much.
    files: HashMap<FileKey, Box<OpenFile>>,
    /// Files whose `touched` went up since the last seal, each once: sealing visits these,
    /// not every open file (10,000 of them at every batch cost 5 % of the agent's CPU).
    touched_files: Vec<FileKey>,
    /// When the open-file gauges were last counted (they need a walk over every file).
    gauges_at: Option<Instant>,
    by_id: HashMap<FileId, FileKey>,
    by_real_path: HashMap<PathBuf, FileKey>,
    next_key: FileKey,
    /// Checkpoint entries not yet matched to an open file.
    resume: HashMap<FileId, CheckpointEntry>,
    /// Checkpoint entries whose inode now holds another file (their file may live on
    /// compressed).
    displaced: Vec<CheckpointEntry>,
    /// Compressed rotations still owed, opened a few at a time (see `compressed`).
    compressed: compressed::Owed,
    first_start: bool,
    delivery: Arc<Mutex<Delivery>>,
    metrics: Arc<Metrics>,
    encoder: Encoder,
    node: NodeFields,
    assembler_cfg: AssemblerConfig,
    /// The multiline rules a pod's annotation may pick, built once.
    choices: choice::MultilineChoices,
    /// `elasticsearch.index`'s field references, when it has any: each file's route.
    routing: Option<Routing>,
    batch: Batch,
    next_seq: u64,
    closing: Vec<FileKey>,
    /// The files housekeeping visits: those with a partial line or multiline group in progress
    /// (an idle flush may be due) and rotated ones (closed at their end). Idle files are not in
    /// it, so an idle node costs nothing per file here.
    attention: HashSet<FileKey>,
    /// Open files whose directory inotify does not watch (it failed there): polled every
    /// `poll_interval`; the others only every `scan_interval`, as a safety net.
    unwatched: HashSet<FileKey>,
    /// Rotated files present at a first start with `read_from: tail`: history, not read.
    ignored_siblings: HashSet<FileId>,
    first_scan_done: Option<Instant>,
    /// A file was closed: its path may hold a new file with the same inode (copytruncate),
    /// which no create event announces.
    rescan_wanted: bool,
    tx: mpsc::Sender<Batch>,
    /// Where new batches come from (the sink returns settled ones to it).
    pool: Arc<BatchPool>,
    buf: Vec<u8>,
    watcher: Option<Watcher>,
    watch_roots: Vec<PathBuf>,
    stop: Arc<AtomicBool>,
    kube: Option<Kube>,
    health: Option<Arc<Health>>,
    /// Debug builds only: a fault the integration tests inject (`SLUICE_TEST_FAULT`).
    fault: Option<TestFault>,
    /// Files to read at the next turn (a successor whose predecessors are drained).
    wake: Vec<FileKey>,
    /// Which file reads next, and the read budgets.
    fair: fair::Fair,
    /// Where reloaded settings arrive (see `live`); `None`: the start configuration for good.
    live: Option<Arc<LiveSlot>>,
    /// What sealed batches are delivered with (`None`: the sink's own).
    output: Option<Arc<crate::sink::elasticsearch::sink::Output>>,
    /// `input.include` compiled, to tell an excluded file from a rotated one.
    include: Vec<glob::Pattern>,
    /// Files a reload excluded (see `live`).
    parked: HashMap<FileId, live::Parked>,
    /// Files whose record format a reload changed while an event was in progress: switched
    /// once nothing is.
    reformat: HashSet<FileKey>,
}

/// The Kubernetes metadata cache and how long a new file waits for its pod to appear in it.
struct Kube {
    store: Arc<Store>,
    wait: Duration,
    /// The store generation last looked at.
    seen: u64,
    /// Files not read yet because their pod's metadata has not arrived (bounded by `wait`).
    waiting: HashSet<FileKey>,
}

impl Reader {
    pub fn new(
        cfg: Arc<Config>,
        checkpoint: Option<Vec<CheckpointEntry>>,
        delivery: Arc<Mutex<Delivery>>,
        metrics: Arc<Metrics>,
        tx: mpsc::Sender<Batch>,
        pool: Arc<BatchPool>,
        stop: Arc<AtomicBool>,
    ) -> Result<Reader, multiline::MultilineError> {
        let (assembler_cfg, choices) = assembly(&cfg)?;
        let watcher = match Watcher::new() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "file notifications unavailable; polling only");
                None
            }
        };
        let watch_roots = cfg.input.include.iter().map(|p| static_prefix(p)).collect();
        let include = live::include_patterns(&cfg);
        let first_start = checkpoint.is_none();
        // After a copytruncate a done entry and the live file share an inode: the live one wins.
        let mut entries = checkpoint.unwrap_or_default();
        entries.sort_by_key(|e| !e.done);
        let resume = entries.into_iter().map(|e| (e.id, e)).collect();
        Ok(Reader {
            encoder: encoder(&cfg).with_index_gauge(metrics.indices_written.clone()),
            routing: Routing::new(&cfg),
            node: node_fields(&cfg),
            fair: fair::Fair::new(&cfg, metrics.clone()),
            cfg,
            files: HashMap::new(),
            touched_files: Vec::new(),
            gauges_at: None,
            by_id: HashMap::new(),
            by_real_path: HashMap::new(),
            next_key: 1,
            resume,
            displaced: Vec::new(),
            compressed: compressed::Owed::default(),
            first_start,
            delivery,
            metrics,
            assembler_cfg,
            choices,
            batch: pool.take(),
            next_seq: 1,
            closing: Vec::new(),
            attention: HashSet::new(),
            unwatched: HashSet::new(),
            rescan_wanted: false,
            ignored_siblings: HashSet::new(),
            first_scan_done: None,
            tx,
            pool,
            buf: Vec::new(),
            watcher,
            watch_roots,
            stop,
            kube: None,
            health: None,
            fault: TestFault::from_env(),
            wake: Vec::new(),
            live: None,
            output: None,
            include,
            parked: HashMap::new(),
            reformat: HashSet::new(),
        })
    }

    /// Reports the reader's heartbeat and its first scan to the health endpoints.
    /// Offers what is encoded to the live tap (`telemetry.tap: true`).
    pub fn with_tap(mut self, tap: Arc<crate::telemetry::tap::Tap>) -> Reader {
        self.encoder.set_tap(tap);
        self
    }

    pub fn with_health(mut self, health: Arc<Health>) -> Reader {
        health.reader_beat(Instant::now());
        self.health = Some(health);
        self
    }

    /// Enriches events from the watched metadata in `store`. Without it, events carry what
    /// the log path tells.
    pub fn with_kubernetes(mut self, store: Arc<Store>, wait: Duration) -> Reader {
        self.kube = Some(Kube {
            store,
            wait,
            seen: 0,
            waiting: HashSet::new(),
        });
        self
    }

    /// Runs until the stop flag is set (or the sink is gone), then seals what is complete.
    pub fn run(mut self) {
        compressed::clear_leftovers(&self.cfg.state_dir);
        self.rescan();
        // Before the entries not found are forgotten: the ones compressed while the agent was
        // down are registered again and read from their `.gz`.
        self.find_compressed();
        self.open_compressed();
        // Checkpoint entries whose files were found nowhere: nothing is left to read of them.
        self.resume.retain(|_, e| {
            tracing::info!(path = %e.path.display(), "file in the checkpoint no longer exists; forgetting it");
            false
        });
        // Every file the checkpoint knew is registered again (or known gone): from now on a
        // checkpoint written cannot forget an offset.
        self.delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_ready();
        if let Some(h) = &self.health {
            h.first_scan_done();
        }
        let mut last_scan = Instant::now();
        let mut last_poll = Instant::now();
        let mut last_full_poll = Instant::now();
        let mut dirty: HashSet<FileKey> = self.files.keys().copied().collect();
        let mut rescan_requested = false;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if let Some(h) = &self.health {
                h.reader_beat(now);
            }
            if self.fault.is_some() {
                self.inject_fault();
            }
            if !self.take_up_live() {
                return;
            }
            self.refresh_metadata(&mut dirty);
            rescan_requested |= std::mem::take(&mut self.rescan_wanted);
            let since_scan = now.duration_since(last_scan);
            if (rescan_requested && since_scan >= MIN_RESCAN_GAP)
                || since_scan >= self.cfg.input.scan_interval
            {
                let before: HashSet<FileKey> = self.files.keys().copied().collect();
                self.rescan();
                dirty.extend(self.files.keys().filter(|k| !before.contains(k)));
                last_scan = now;
                rescan_requested = false;
            }
            if now.duration_since(last_poll) >= self.cfg.input.poll_interval {
                // Files in watched directories are announced by inotify: the poll looks at
                // them only every `scan_interval`, so idle files cost nothing in between.
                if self.watcher.is_none()
                    || now.duration_since(last_full_poll) >= self.cfg.input.scan_interval
                {
                    dirty.extend(self.files.keys().copied());
                    last_full_poll = now;
                } else {
                    dirty.extend(self.unwatched.iter().copied());
                    dirty.extend(self.attention.iter().copied());
                }
                last_poll = now;
            }

            dirty.extend(self.wake.drain(..));
            let Some(more) = self.read_round(&mut dirty) else {
                return;
            };
            self.housekeeping(now);
            if self.seal_due(now) && !self.seal() {
                return;
            }
            // Busy reading: only pick up notifications without waiting, so rotations and new
            // files are seen promptly even while catching up.
            let wait = if more {
                Duration::ZERO
            } else {
                self.next_wake(now, last_poll)
            };
            let mut changes = Changes::default();
            match &self.watcher {
                Some(w) => w.wait(wait, &mut changes),
                None if more => {}
                None => std::thread::sleep(wait),
            }
            if changes.overflow {
                dirty.extend(self.files.keys().copied());
                rescan_requested = true;
            }
            rescan_requested |= changes.rescan;
            for p in &changes.paths {
                match self.by_real_path.get(p) {
                    Some(&k) => {
                        dirty.insert(k);
                    }
                    None => rescan_requested = true,
                }
            }
        }
        // Stop: ship what is complete. Partial lines and open groups stay beyond the boundary
        // and are read again at the next start.
        self.seal();
    }

    fn next_wake(&self, now: Instant, last_poll: Instant) -> Duration {
        let mut wait = (last_poll + self.cfg.input.poll_interval).saturating_duration_since(now);
        if let Some(opened) = self.batch.opened {
            wait = wait.min(
                (opened + self.cfg.elasticsearch.batch_timeout).saturating_duration_since(now),
            );
        }
        wait.min(self.fair.until_unpark(now)).min(MAX_WAIT)
    }
}

/// The multiline rules and assembler settings of `cfg`, built once (the agent and `dry`).
fn assembly(
    cfg: &Config,
) -> Result<(AssemblerConfig, choice::MultilineChoices), multiline::MultilineError> {
    let multiline = match &cfg.parse.multiline {
        Some((rules, _)) => Some(Arc::new(multiline::Rules::new(rules)?)),
        None => None,
    };
    let max_lines = cfg
        .parse
        .multiline
        .as_ref()
        .map_or(multiline::Config::auto().max_lines, |(r, _)| r.max_lines);
    let choices = choice::MultilineChoices::new(multiline.clone(), max_lines)?;
    let assembler_cfg = AssemblerConfig {
        max_event_bytes: cfg.parse.max_event_bytes,
        multiline,
        timeout: cfg
            .parse
            .multiline
            .as_ref()
            .map_or(Duration::from_secs(1), |(_, t)| *t),
    };
    Ok((assembler_cfg, choices))
}

fn encoder(cfg: &Config) -> Encoder {
    Encoder::new(
        cfg.elasticsearch.index.clone(),
        cfg.parse.json_target.clone(),
    )
    .with_json_fields(cfg.parse.json_fields.clone())
    .keep_lifted(cfg.parse.json_keep_lifted)
    .fluentd_shape(cfg.elasticsearch.compat == Compat::Fluentd)
}

fn node_fields(cfg: &Config) -> NodeFields {
    NodeFields {
        node_name: cfg.node_name.clone(),
        cluster_name: cfg.cluster_name.clone(),
        fluentd: (cfg.elasticsearch.compat == Compat::Fluentd).then(|| {
            encode::FluentdNode::new(cfg.kubernetes.source.as_ref(), &|k| std::env::var(k).ok())
        }),
    }
}

/// The record format `parse.format` fixes for every file; `None`: detected per file.
fn configured_format(cfg: &Config) -> Option<Format> {
    match cfg.parse.format {
        FormatChoice::Auto => None,
        FormatChoice::Cri => Some(Format::Cri),
        FormatChoice::Docker => Some(Format::Docker),
    }
}

/// The directory part of a glob pattern before its first wildcard.
fn static_prefix(pattern: &str) -> PathBuf {
    let cut = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    let head = &pattern[..cut];
    match head.rfind('/') {
        Some(i) => PathBuf::from(&head[..i.max(1)]),
        None => Path::new("/").to_path_buf(),
    }
}
