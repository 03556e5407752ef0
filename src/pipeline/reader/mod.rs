//! The read loop, on its own thread: discover files, read what is new, frame, parse, assemble
//! and encode straight into the open batch; seal batches by size, count and time, and hand them
//! to the sink through a bounded channel. When the sink is saturated the send blocks and reading
//! stops: the log files are the buffer.
//!
//! Each sealed batch records, for every file it touched, the file's *boundary*: the offset below
//! which all events are in this or an earlier batch. Delivery commits those boundaries once the
//! batches are acknowledged, so a checkpoint never lands inside a partial line or a group.
//!
//! Over 1,000 lines, one concept too many: the split by concern (scheduler, opening and closing,
//! metadata wait, sealing) is issue 12 item 2, left until the rotation work (compressed rotations,
//! joins across rotation: new `compressed.rs` / `succession.rs` beside `rotation.rs`) lands, since
//! both move the same code.

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
use crate::sink::elasticsearch::encode::{self, Encoder, FileContext, NodeFields, PodFields};
use crate::sink::elasticsearch::{Batch, BatchPool};
use crate::tail::discover::{self, Found};
use crate::tail::watch::{Changes, Watcher};
use crate::tail::{CheckpointEntry, FileId, Line, ReadOutcome, TailedFile};
use crate::telemetry::Metrics;
use crate::telemetry::health::Health;

mod choice;
mod clock;
mod compressed;
mod rotation;
mod succession;

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
}

impl OpenFile {
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
}

/// Faults the health tests inject into the real (debug) binary through `SLUICE_TEST_FAULT`:
/// `reader-panic:<lines>` or `reader-hang:<lines>`, once that many lines were read. Release
/// builds never read the variable.
#[derive(Debug, Clone, Copy)]
enum TestFault {
    Panic(u64),
    Hang(u64),
}

impl TestFault {
    fn from_env() -> Option<TestFault> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let v = std::env::var("SLUICE_TEST_FAULT").ok()?;
        let (kind, n) = v.split_once(':')?;
        let n = n.parse().ok()?;
        match kind {
            "reader-panic" => Some(TestFault::Panic(n)),
            "reader-hang" => Some(TestFault::Hang(n)),
            _ => None,
        }
    }
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
        let watcher = match Watcher::new() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "file notifications unavailable; polling only");
                None
            }
        };
        let watch_roots = cfg.input.include.iter().map(|p| static_prefix(p)).collect();
        let first_start = checkpoint.is_none();
        // After a copytruncate a done entry and the live file share an inode: the live one wins.
        let mut entries = checkpoint.unwrap_or_default();
        entries.sort_by_key(|e| !e.done);
        let resume = entries.into_iter().map(|e| (e.id, e)).collect();
        Ok(Reader {
            encoder: Encoder::new(
                cfg.elasticsearch.index.clone(),
                cfg.parse.json_target.clone(),
            )
            .with_json_fields(cfg.parse.json_fields.clone()),
            node: NodeFields {
                node_name: cfg.node_name.clone(),
                cluster_name: cfg.cluster_name.clone(),
            },
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
        })
    }

    /// Reports the reader's heartbeat and its first scan to the health endpoints.
    pub fn with_health(mut self, health: Arc<Health>) -> Reader {
        health.reader_beat(Instant::now());
        self.health = Some(health);
        self
    }

    fn inject_fault(&self) {
        let lines = self.metrics.lines_read.get();
        match self.fault {
            Some(TestFault::Panic(n)) if lines >= n => {
                panic!("injected by SLUICE_TEST_FAULT after {lines} lines")
            }
            Some(TestFault::Hang(n)) if lines >= n => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            _ => {}
        }
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
            let mut more = false;
            for key in std::mem::take(&mut dirty) {
                if self.read_file(key) {
                    dirty.insert(key);
                    more = true;
                }
                if full(&self.batch, &self.cfg) && !self.seal() {
                    return;
                }
            }
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
        wait.min(MAX_WAIT)
    }

    /// Looks for new files and for files that are no longer at their path.
    fn rescan(&mut self) {
        let by_id = &self.by_id;
        let found = discover::scan_known(&self.cfg.input.include, &self.cfg.input.exclude, &|id| {
            by_id.contains_key(&id)
        });
        let present: HashSet<FileId> = found.iter().map(|f| f.id).collect();
        let wall = std::time::SystemTime::now();
        for f in found {
            if self.by_id.contains_key(&f.id) {
                continue;
            }
            let stale = self
                .cfg
                .input
                .ignore_older
                .is_some_and(|age| wall.duration_since(f.modified).is_ok_and(|d| d > age));
            if stale && !self.resume.contains_key(&f.id) {
                continue;
            }
            self.open(f, false);
        }
        let now = Instant::now();
        for of in self.files.values_mut() {
            if of.rotated_at.is_none() && !present.contains(&of.tailed.id) {
                tracing::debug!(path = %of.tailed.path.display(), "file rotated or deleted; reading it to its end");
                of.rotated_at = Some(now);
                self.attention.insert(of.key);
            }
        }
        self.scan_siblings();
        self.open_compressed();
        self.link_successors();
        self.bound_rotated();
        if let Some(w) = &mut self.watcher {
            let mut dirs: HashSet<PathBuf> = self
                .watch_roots
                .iter()
                .filter(|d| d.is_dir())
                .cloned()
                .collect();
            for of in self.files.values() {
                if let Some(parent) = of.tailed.real_path.parent() {
                    dirs.insert(parent.to_path_buf());
                }
            }
            for d in &dirs {
                w.watch_dir(d);
            }
            w.retain_dirs(&dirs);
            self.unwatched = self
                .files
                .values()
                .filter(|of| {
                    !of.tailed
                        .real_path
                        .parent()
                        .is_some_and(|dir| w.is_watched(dir))
                })
                .map(|of| of.key)
                .collect();
        }
        self.metrics.files_open.set(self.files.len() as i64);
        self.metrics.files_rotated_open.set(
            self.files
                .values()
                .filter(|f| f.rotated_at.is_some())
                .count() as i64,
        );
    }

    fn open(&mut self, f: Found, rotated: bool) -> Option<FileKey> {
        // A file rotated while the agent was down is opened by its real (new) name.
        let open_path = if rotated { &f.real_path } else { &f.path };
        let mut tailed = match TailedFile::open(open_path.clone(), f.real_path.clone(), 0) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(path = %f.path.display(), error = %e, "cannot open log file; will retry at the next scan");
                return None;
            }
        };
        tailed.path = f.path.clone();
        if tailed.id != f.id {
            // Replaced between the scan and the open; the next scan sees the new one.
            return None;
        }
        let resume = match self.resume.remove(&f.id) {
            Some(e) if tailed.fingerprint.is_some() && e.fingerprint() == tailed.fingerprint => {
                e.offset.min(f.size)
            }
            Some(e) => {
                tracing::info!(path = %f.path.display(), "inode reused by a new file; reading it from the head");
                // The entry's own file may live on compressed (see `compressed`).
                self.displaced.push(e);
                0
            }
            None if self.first_start && self.cfg.input.read_from == ReadFrom::Tail => f.size,
            None => 0,
        };
        let key = self.next_key;
        self.next_key += 1;
        Some(self.insert_open(key, tailed, resume, f.size))
    }

    /// Makes `tailed`, positioned at `resume` (at most `size`), an open file under `key`.
    fn insert_open(
        &mut self,
        key: FileKey,
        mut tailed: TailedFile,
        resume: u64,
        size: u64,
    ) -> FileKey {
        let resume = resume.min(size);
        tailed.start_at(resume);
        let format = match self.cfg.parse.format {
            FormatChoice::Auto => None,
            FormatChoice::Cri => Some(Format::Cri),
            FormatChoice::Docker => Some(Format::Docker),
        };
        let clock =
            clock::FileClock::open(tailed.file(), resume, format, self.cfg.input.max_line_bytes);
        let pod = kubernetes::path::pod_ref(&tailed.path, &tailed.real_path);
        self.by_id.insert(tailed.id, key);
        self.by_real_path.insert(tailed.real_path.clone(), key);
        self.files.insert(
            key,
            Box::new(OpenFile {
                key,
                tailed,
                ctx: None,
                format,
                assembler: Assembler::new(self.assembler_cfg.clone()),
                sealed_boundary: resume,
                tracked: false,
                touched: false,
                rotated_at: None,
                at_eof_since: None,
                resume,
                opened_at: Instant::now(),
                pod,
                meta_version: None,
                clock,
                link: succession::Link::Unlinked,
                held_by: 0,
                handed_over: None,
                predecessor: None,
            }),
        );
        if let Some(of) = self.files.get_mut(&key) {
            track(of, &self.delivery);
        }
        self.metrics.files_open.set(self.files.len() as i64);
        key
    }

    /// Reads a few chunks of one file. Returns whether more data is probably waiting.
    fn read_file(&mut self, key: FileKey) -> bool {
        let was_touched = self.files.get(&key).is_some_and(|f| f.touched);
        let more = self.read_turn(key);
        if let Some(of) = self.files.get(&key) {
            if !was_touched && of.touched {
                self.touched_files.push(key);
            }
            if of.rotated_at.is_some() || of.assembler.in_progress() {
                self.attention.insert(key);
            }
            if of.predecessor.is_some() {
                self.settle_adoption(key);
            }
        }
        more
    }

    fn read_turn(&mut self, key: FileKey) -> bool {
        let Reader {
            files,
            encoder,
            batch,
            buf,
            metrics,
            cfg,
            node,
            delivery,
            kube,
            choices,
            ..
        } = self;
        let Some(of) = files.get_mut(&key) else {
            return false;
        };
        if of.held_by > 0 {
            // A rotated predecessor is not drained yet: its lines are older, and what it ends
            // with may continue here (`succession`).
            return false;
        }
        let now = Instant::now();
        if of.ctx.is_none() {
            match of.tailed.refresh_fingerprint() {
                Ok(true) => {
                    track(of, delivery);
                    if !prepare_context(of, node, choices, delivery, kube.as_mut(), now) {
                        // Waiting for the pod's metadata; `refresh_metadata` brings it back.
                        return false;
                    }
                }
                // No complete first line yet: nothing to read.
                Ok(false) => return false,
                Err(e) => {
                    tracing::warn!(path = %of.tailed.path.display(), error = %e, "cannot read file head");
                    return false;
                }
            }
        }
        for _ in 0..CHUNKS_PER_TURN {
            if full(batch, cfg) {
                // Sealed before this file reads on.
                return true;
            }
            let OpenFile {
                tailed,
                ctx,
                format,
                assembler,
                touched,
                clock,
                predecessor,
                ..
            } = &mut **of;
            let Some(ctx) = ctx.as_ref() else {
                return false;
            };
            let pred = predecessor.as_ref().map(|p| &p.ctx);
            let mut emit_ctx = EmitCtx {
                encoder,
                batch,
                metrics,
                now,
            };
            let outcome = tailed.read(
                buf,
                cfg.input.read_chunk_bytes,
                cfg.input.max_line_bytes,
                &mut |line: Line<'_>| {
                    *touched = true;
                    handle_line(line, ctx, pred, format, assembler, clock, &mut emit_ctx);
                    if full(emit_ctx.batch, cfg) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            );
            match outcome {
                Ok(ReadOutcome::Data { bytes }) => {
                    metrics.bytes_read.inc_by(bytes as u64);
                    of.at_eof_since = None;
                    if bytes < cfg.input.read_chunk_bytes {
                        return false;
                    }
                }
                Ok(ReadOutcome::Paused { bytes }) => {
                    // The batch filled up mid-chunk: it is sealed, then this file reads on.
                    metrics.bytes_read.inc_by(bytes as u64);
                    of.at_eof_since = None;
                    return true;
                }
                Ok(ReadOutcome::Eof) | Ok(ReadOutcome::NotReady) => {
                    of.at_eof_since.get_or_insert(now);
                    return false;
                }
                Ok(ReadOutcome::Truncated) => {
                    tracing::info!(path = %of.tailed.path.display(), "file truncated (copytruncate); reading it again from the head");
                    of.rotated_at = Some(now);
                    of.at_eof_since = Some(now - ROTATED_GRACE);
                    return false;
                }
                Err(e) => {
                    tracing::warn!(path = %of.tailed.path.display(), error = %e, "read failed; closing the file");
                    of.rotated_at = Some(now);
                    of.at_eof_since = Some(now - ROTATED_GRACE);
                    return false;
                }
            }
        }
        true
    }

    /// Idle flushes and closing rotated files at their end.
    fn housekeeping(&mut self, now: Instant) {
        let Reader {
            files,
            touched_files,
            encoder,
            batch,
            metrics,
            closing,
            attention,
            ..
        } = self;
        let mut handoffs: Vec<FileKey> = Vec::new();
        let mut adopters: Vec<FileKey> = Vec::new();
        attention.retain(|key| {
            let Some(of) = files.get_mut(key) else {
                return false; // closed
            };
            let of = &mut **of;
            if of.handed_over.is_some() {
                // Drained; closed once the successor has emitted what it took over.
                return true;
            }
            let done = of.rotated_at.is_some()
                && of
                    .at_eof_since
                    .is_some_and(|t| now.duration_since(t) >= ROTATED_GRACE);
            let pred = of.predecessor.as_ref().map(|p| &p.ctx);
            // Without a context of its own a file has read nothing: all it holds is adopted.
            let Some(ctx) = of.ctx.as_ref().or(pred) else {
                if done && !closing.contains(&of.key) {
                    closing.push(of.key);
                }
                return of.rotated_at.is_some();
            };
            let mut emit_ctx = EmitCtx {
                encoder,
                batch,
                metrics,
                now,
            };
            let before = of.boundary();
            // A rotated file with a live successor keeps what its end holds for it.
            let linked = of.rotated_at.is_some() && of.link.holds().is_some();
            if !linked {
                of.assembler.flush_idle(now, &mut |ev| {
                    emit_ctx.emit(origin(ctx, pred, ev), ev, false)
                });
            }
            if done && !closing.contains(&of.key) {
                if linked && of.assembler.in_progress() && of.ctx.is_some() {
                    handoffs.push(of.key);
                    return true;
                }
                of.assembler
                    .flush_all(&mut |ev| emit_ctx.emit(origin(ctx, pred, ev), ev, false));
                closing.push(of.key);
            }
            if of.predecessor.is_some() {
                adopters.push(of.key);
            }
            if of.boundary() != before && !of.touched {
                of.touched = true;
                touched_files.push(of.key);
            }
            of.rotated_at.is_some() || of.assembler.in_progress()
        });
        for key in handoffs {
            self.hand_over(key, now);
        }
        for key in adopters {
            self.settle_adoption(key);
        }
        if !self.closing.is_empty() && self.batch.opened.is_none() {
            // Nothing waiting in the batch: seal now so closed files are released promptly.
            self.seal();
        }
    }

    fn seal_due(&self, now: Instant) -> bool {
        match self.batch.opened {
            Some(opened) => now.duration_since(opened) >= self.cfg.elasticsearch.batch_timeout,
            // No events, but boundaries moved (e.g. only skipped bytes): acknowledge them.
            None => self
                .touched_files
                .iter()
                .filter_map(|k| self.files.get(k))
                .any(|f| f.tracked && f.boundary() > f.sealed_boundary),
        }
    }

    /// Seals the open batch and hands it to the sink. Returns false when the sink is gone.
    fn seal(&mut self) -> bool {
        // An empty batch (only boundaries moved) is acknowledged below and refilled; a sent one
        // is replaced from the pool once it is handed over, so at most one batch is being
        // filled or waiting here.
        let mut batch = std::mem::take(&mut self.batch);
        batch.seq = self.next_seq;
        self.next_seq += 1;
        for key in std::mem::take(&mut self.touched_files) {
            let Some(of) = self.files.get_mut(&key) else {
                continue;
            };
            if !of.tracked {
                // Its boundary counts once it is registered with delivery.
                self.touched_files.push(key);
                continue;
            }
            of.touched = false;
            let b = of.boundary();
            if b > of.sealed_boundary {
                batch.ranges.push((of.key, b));
                of.sealed_boundary = b;
            }
        }
        let closing = std::mem::take(&mut self.closing);
        self.rescan_wanted |= !closing.is_empty();
        {
            let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
            d.sealed(batch.seq, &batch.ranges);
            for &key in &closing {
                d.retire(key);
            }
            if batch.items.is_empty() {
                d.acked(batch.seq, &batch.ranges);
            }
        }
        for key in closing {
            if let Some(k) = &mut self.kube {
                k.waiting.remove(&key);
            }
            if let Some(of) = self.files.remove(&key) {
                self.by_id.remove(&of.tailed.id);
                if self.by_real_path.get(&of.tailed.real_path) == Some(&key) {
                    self.by_real_path.remove(&of.tailed.real_path);
                }
                self.closed_in_succession(&of);
                tracing::debug!(path = %of.tailed.real_path.display(), "closed a rotated file read to its end");
            }
        }
        self.metrics.files_open.set(self.files.len() as i64);
        if self
            .gauges_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.gauges_at = Some(Instant::now());
            self.metrics.files_rotated_open.set(
                self.files
                    .values()
                    .filter(|f| f.rotated_at.is_some())
                    .count() as i64,
            );
        }
        if batch.items.is_empty() {
            batch.clear();
            self.batch = batch;
            return true;
        }
        // While the sink is saturated reading stops: that is the backpressure. Discovery goes
        // on, so new and rotated files are held open (their lines stay readable even when the
        // kubelet compresses or deletes them) until there is room again.
        let mut last_scan = Instant::now();
        loop {
            let seen = self.pool.taken_so_far();
            match self.tx.try_send(batch) {
                Ok(()) => {
                    self.batch = self.pool.take();
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(b)) => batch = b,
            }
            // Waiting for the sink is not being stuck.
            if let Some(h) = &self.health {
                h.reader_beat(Instant::now());
            }
            if last_scan.elapsed() >= MIN_RESCAN_GAP {
                self.rescan();
                last_scan = Instant::now();
            }
            let until_rescan = MIN_RESCAN_GAP.saturating_sub(last_scan.elapsed());
            self.pool.wait_for_room(seen, until_rescan);
        }
    }
}

/// Whether the open batch has reached a size limit and must be sealed before more is read.
fn full(batch: &Batch, cfg: &Config) -> bool {
    batch.body.len() >= cfg.elasticsearch.batch_max_bytes
        || batch.items.len() >= cfg.elasticsearch.batch_max_events
}

/// What the emit path needs, borrowed apart from the file being read.
struct EmitCtx<'a> {
    encoder: &'a mut Encoder,
    batch: &'a mut Batch,
    metrics: &'a Metrics,
    now: Instant,
}

impl EmitCtx<'_> {
    fn emit(&mut self, ctx: &FileContext, ev: &parse::assemble::Event<'_>, line_truncated: bool) {
        let truncated = ev.truncated || line_truncated;
        if truncated {
            self.metrics.truncated.inc();
        }
        self.push(
            ctx,
            encode::Event {
                timestamp: ev.timestamp,
                stream: ev.stream,
                message: ev.message,
                start: ev.start,
                truncated,
                malformed: false,
            },
        );
    }

    fn push(&mut self, ctx: &FileContext, ev: encode::Event<'_>) {
        if ctx.skip {
            self.metrics.events_excluded.inc();
            return;
        }
        if ctx.partial {
            self.metrics.events_without_metadata.inc();
        }
        let item = self.encoder.encode(&mut self.batch.body, ctx, &ev);
        self.batch.items.push(item);
        self.batch.opened.get_or_insert(self.now);
        self.metrics.events_encoded.inc();
    }
}

/// The context an event is shipped with: its predecessor's when it began there (its `_id` is
/// derived from that file and offset, so a replay of the predecessor gives the same one).
fn origin<'c>(
    own: &'c FileContext,
    pred: Option<&'c FileContext>,
    ev: &parse::assemble::Event<'_>,
) -> &'c FileContext {
    match pred {
        Some(p) if ev.adopted => p,
        _ => own,
    }
}

fn handle_line(
    line: Line<'_>,
    ctx: &FileContext,
    pred: Option<&FileContext>,
    format: &mut Option<Format>,
    assembler: &mut Assembler,
    clock: &mut clock::FileClock,
    out: &mut EmitCtx<'_>,
) {
    out.metrics.lines_read.inc();
    if format.is_none() {
        *format = parse::detect(line.bytes);
    }
    let parsed = match *format {
        Some(f) => parse::parse(f, line.bytes).map_err(|e| e.to_string()),
        None => Err("unrecognised container log format".to_string()),
    };
    match parsed {
        Ok(rec) => {
            clock.saw(rec.timestamp);
            let now = out.now;
            // The cut line's flag belongs to the event that contains it, which ends with it.
            assembler.push(rec, line.start, line.end, now, &mut |ev| {
                out.emit(
                    origin(ctx, pred, ev),
                    ev,
                    line.truncated && ev.end == line.end,
                )
            });
        }
        Err(reason) => {
            out.metrics.parse_errors.inc();
            tracing::debug!(%reason, offset = line.start, "malformed line shipped raw");
            // Never the clock: a replay must land in the same index (see `clock`).
            let timestamp = match clock::leading_timestamp(line.bytes) {
                Some(own) => {
                    clock.saw(own);
                    own
                }
                None => clock.fallback(),
            };
            out.push(
                ctx,
                encode::Event {
                    timestamp,
                    stream: parse::Stream::Stdout,
                    message: line.bytes,
                    start: line.start,
                    truncated: line.truncated,
                    malformed: true,
                },
            );
        }
    }
}

/// How long a file waits for its pod while the agent's first pod list is under way and has not
/// failed (instead of `metadata_wait` only): on a node with a backlog, every file opens at start,
/// before a list that can take seconds. Bounded, as a list that neither answers nor fails would
/// otherwise hold the node's logs back.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(30);

/// Renders the file's context once its fingerprint is known. With Kubernetes on, a file whose
/// pod is not in the store yet waits (returns false) until the metadata arrives or `wait`
/// expires (`FIRST_LIST_WAIT` while the first list is pending); then it ships with what the path
/// tells. Never blocks.
fn prepare_context(
    of: &mut OpenFile,
    node: &NodeFields,
    choices: &choice::MultilineChoices,
    delivery: &Mutex<Delivery>,
    kube: Option<&mut Kube>,
    now: Instant,
) -> bool {
    let Some(fp) = of.tailed.fingerprint else {
        return false;
    };
    let found = match (&kube, &of.pod) {
        (Some(k), Some(p)) => k
            .store
            .find(p.pod_uid.as_deref(), &p.namespace, &p.pod_name),
        _ => None,
    };
    let wanted = kube.is_some() && of.pod.is_some();
    if let Some(k) = kube {
        let waited = now.duration_since(of.opened_at);
        let wait = if k.store.first_pod_list_pending() {
            k.wait.max(FIRST_LIST_WAIT)
        } else {
            k.wait
        };
        if found.is_none() && wanted && waited < wait {
            k.waiting.insert(of.key);
            return false;
        }
        k.waiting.remove(&of.key);
    }
    of.ctx = Some(render(of, fp, found.as_ref(), node, choices, wanted));
    track(of, delivery);
    true
}

/// Registers the file with delivery as soon as its fingerprint is known, before its context
/// (which may wait for Kubernetes metadata): from then on the checkpoint keeps its offset.
fn track(of: &mut OpenFile, delivery: &Mutex<Delivery>) {
    let Some(fp) = of.tailed.fingerprint else {
        return;
    };
    if of.tracked {
        return;
    }
    delivery.lock().unwrap_or_else(|p| p.into_inner()).track(
        of.key,
        of.tailed.id,
        fp,
        of.tailed.path.clone(),
        of.tailed.real_path.clone(),
        of.resume,
    );
    of.tracked = true;
}

fn render(
    of: &mut OpenFile,
    fp: crate::tail::Fingerprint,
    found: Option<&kubernetes::store::Found>,
    node: &NodeFields,
    choices: &choice::MultilineChoices,
    wanted: bool,
) -> FileContext {
    let api = found.map(|f| PodFields {
        pod: &f.pod,
        namespace_labels: &f.namespace_labels,
    });
    let source = kubernetes::path::source_identity(&of.tailed.path, &of.tailed.real_path);
    let mut ctx =
        FileContext::new(fp, &of.tailed.path, of.pod.as_ref(), api, node).identify(&source);
    ctx.partial = wanted && found.is_none();
    if let (Some(f), Some(p)) = (found, &of.pod) {
        ctx.skip = f.pod.excludes(&p.container_name);
        ctx.json = f
            .pod
            .parser_for(&p.container_name)
            .map(|parser| parser == kubernetes::meta::Parser::Json);
    }
    set_multiline(of, found, choices);
    of.meta_version = found.map(|f| f.version);
    ctx
}

/// The multiline rules of one file: its pod's annotation, else the node's. An annotation
/// naming no preset is logged and ignored (the node's rules apply). Rules never change under a
/// line or group in progress: a change that arrives then waits for the next rendering.
fn set_multiline(
    of: &mut OpenFile,
    found: Option<&kubernetes::store::Found>,
    choices: &choice::MultilineChoices,
) {
    let asked = match (found, &of.pod) {
        (Some(f), Some(p)) => f.pod.multiline_for(&p.container_name),
        _ => None,
    };
    let rules = choices.resolve(asked).unwrap_or_else(|reason| {
        tracing::warn!(
            path = %of.tailed.path.display(),
            annotation = "sluice.io/multiline",
            %reason,
            "ignoring the pod's multiline annotation; the node's rules apply"
        );
        choices.resolve(None).unwrap_or(None)
    });
    if !of.assembler.set_rules(rules) {
        tracing::debug!(path = %of.tailed.path.display(), "multiline rules change after the event in progress");
    }
}

impl Reader {
    /// Once per loop: files waiting for metadata get another look, and when the store changed,
    /// files whose pod's metadata changed are re-rendered (only those).
    fn refresh_metadata(&mut self, dirty: &mut HashSet<FileKey>) {
        let Some(k) = &mut self.kube else {
            return;
        };
        dirty.extend(k.waiting.iter().copied());
        let generation = k.store.generation();
        if generation == k.seen {
            return;
        }
        k.seen = generation;
        for of in self.files.values_mut() {
            let (Some(ctx), Some(p)) = (&of.ctx, &of.pod) else {
                continue;
            };
            let Some(found) = k
                .store
                .find(p.pod_uid.as_deref(), &p.namespace, &p.pod_name)
            else {
                // Not (or no longer) known: keep what was rendered.
                continue;
            };
            if of.meta_version == Some(found.version) {
                continue;
            }
            let fp = ctx.fingerprint;
            let ctx = render(of, fp, Some(&found), &self.node, &self.choices, true);
            of.ctx = Some(ctx);
        }
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
