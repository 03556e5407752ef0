//! Taking up a reloaded configuration: the one place where the reader swaps its settings, between
//! two batches. It builds nothing that can fail (the bundle is built and checked by
//! `pipeline::reload` before it arrives), and never changes a file's multiline rules or record
//! format under an event in progress.
//!
//! A later feature with settings of its own (routing, rate limits) adds them to [`Live`], builds
//! them in [`Live::build`] and takes them up in [`Reader::take_up_live`]; nothing else changes.

use std::sync::atomic::Ordering;

use super::*;
use crate::sink::elasticsearch::sink::Output;
use crate::tail::Fingerprint;

/// Everything the reader reads, parses and ships with that a reload may change.
pub struct Live {
    pub(super) cfg: Arc<Config>,
    pub(super) assembler_cfg: AssemblerConfig,
    pub(super) choices: choice::MultilineChoices,
    pub(super) include: Vec<glob::Pattern>,
    pub(super) output: Arc<Output>,
}

impl Live {
    /// The bundle for `cfg` (validated), shipping through `output`. Fails only on multiline
    /// rules that do not compile.
    pub fn build(cfg: Arc<Config>, output: Arc<Output>) -> Result<Live, multiline::MultilineError> {
        let (assembler_cfg, choices) = assembly(&cfg)?;
        Ok(Live {
            include: include_patterns(&cfg),
            cfg,
            assembler_cfg,
            choices,
            output,
        })
    }
}

/// Where the reload task leaves the next bundle: a newer one replaces one not taken up yet.
/// The reader looks once per loop turn (an atomic load), so it takes a bundle up within
/// `MAX_WAIT` of its arrival, or after the batch it is blocked on is queued.
#[derive(Default)]
pub struct LiveSlot {
    waiting: AtomicBool,
    next: Mutex<Option<Live>>,
}

impl LiveSlot {
    pub fn offer(&self, live: Live) {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some(live);
        self.waiting.store(true, Ordering::Release);
    }

    fn take(&self) -> Option<Live> {
        if !self.waiting.swap(false, Ordering::Acquire) {
            return None;
        }
        self.next.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A file a reload excluded: no longer read, its checkpoint entry kept under its key (so the
/// acknowledgements of its batches still in flight find it), resumed from `offset` if a later
/// reload includes it again.
pub(super) struct Parked {
    pub(super) key: FileKey,
    pub(super) fingerprint: Fingerprint,
    pub(super) offset: u64,
}

/// The include globs as patterns, matched as `glob` matches them (`*` stays in one component).
pub(super) fn include_patterns(cfg: &Config) -> Vec<glob::Pattern> {
    cfg.input
        .include
        .iter()
        // Validated in `tail::config`: a pattern that does not compile was refused there.
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect()
}

const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Reader {
    /// Reads and ships with `output` (the sink's own otherwise) and takes up the bundles a
    /// reload leaves in `slot`.
    pub fn with_live(mut self, slot: Arc<LiveSlot>, output: Arc<Output>) -> Reader {
        self.live = Some(slot);
        self.output = Some(output);
        self
    }

    /// Takes up a bundle waiting in the slot, if any. The open batch is sealed first, so it goes
    /// out with the settings it was encoded under. Returns false when the sink is gone.
    pub(super) fn take_up_live(&mut self) -> bool {
        let Some(live) = self.live.as_ref().and_then(|s| s.take()) else {
            return true;
        };
        if !self.seal() {
            return false;
        }
        let old = std::mem::replace(&mut self.cfg, live.cfg);
        let tap = self.encoder.tap();
        self.encoder = encoder(&self.cfg);
        if let Some(t) = tap {
            self.encoder.set_tap(t);
        }
        // Files opened from now on are routed by the new pattern; an open file keeps the index
        // it was given (`route`), so its lines never move between indices mid-file.
        self.routing = Routing::new(&self.cfg);
        self.fair.reconfigure(&self.cfg);
        self.assembler_cfg = live.assembler_cfg;
        self.choices = live.choices;
        self.include = live.include;
        self.output = Some(live.output);
        let format_changed = old.parse.format != self.cfg.parse.format;
        let format = configured_format(&self.cfg);
        let (max, timeout) = (
            self.assembler_cfg.max_event_bytes,
            self.assembler_cfg.timeout,
        );
        for of in self.files.values_mut() {
            let of = &mut **of;
            of.assembler.set_limits(max, timeout);
            // Its group under the new `input.fairness` (its budgets are settled below, or when
            // it is rendered).
            self.fair.place(&mut of.share, of.pod.as_ref());
            if format_changed {
                if of.assembler.in_progress() {
                    self.reformat.insert(of.key);
                } else {
                    of.format = format;
                }
            }
            // Rendered again for its multiline rules (the node's or its pod's choice, both
            // rebuilt): the assembler takes them up once nothing is in progress.
            let Some(fp) = of.ctx.as_ref().map(|c| c.fingerprint) else {
                continue; // rendered later, from the new settings
            };
            let found = match (&self.kube, &of.pod) {
                (Some(k), Some(p)) => k
                    .store
                    .find(p.pod_uid.as_deref(), &p.namespace, &p.pod_name),
                _ => None,
            };
            if found.is_none() && of.meta_version.is_some() {
                // Its pod left the store: keep what was rendered (as `refresh_metadata` does).
                continue;
            }
            let wanted = self.kube.is_some() && of.pod.is_some();
            of.ctx = Some(render(
                of,
                fp,
                found.as_ref(),
                &self.node,
                (&self.choices, self.routing.as_ref()),
                wanted,
            ));
            self.fair
                .settle(&mut of.share, of.pod.as_ref(), found.as_ref());
        }
        if old.input.include != self.cfg.input.include
            || old.input.exclude != self.cfg.input.exclude
        {
            self.watch_roots = self
                .cfg
                .input
                .include
                .iter()
                .map(|p| static_prefix(p))
                .collect();
            // Newly excluded files are parked by it, newly included ones opened.
            self.rescan();
        }
        tracing::info!("reader: reloaded configuration taken up");
        true
    }

    /// Whether the configuration still includes `path` (a file found by an earlier scan).
    pub(super) fn included(&self, path: &Path) -> bool {
        self.include
            .iter()
            .any(|i| i.matches_path_with(path, MATCH))
            && !self
                .cfg
                .input
                .exclude
                .iter()
                .any(|x| x.matches_path_with(path, MATCH))
    }

    /// Stops reading an open file the configuration excludes now. Only a live file with nothing
    /// owed to or by another file (not rotated, no rotation join) is parked; the others are read
    /// to their end as before. What it holds in progress is beyond its boundary: read again if
    /// it is included again, never shipped twice.
    pub(super) fn park(&mut self, key: FileKey) -> bool {
        let Some(of) = self.files.get(&key) else {
            return false;
        };
        let free = of.rotated_at.is_none()
            && of.held_by == 0
            && of.predecessor.is_none()
            && of.handed_over.is_none()
            && of.link.holds().is_none();
        // Lines read since the last seal may be in the open batch: parked at a later scan.
        if !free || of.touched || self.closing.contains(&key) {
            return false;
        }
        let Some(of) = self.files.remove(&key) else {
            return false;
        };
        self.by_id.remove(&of.tailed.id);
        if self.by_real_path.get(&of.tailed.real_path) == Some(&key) {
            self.by_real_path.remove(&of.tailed.real_path);
        }
        self.attention.remove(&key);
        self.unwatched.remove(&key);
        self.reformat.remove(&key);
        self.touched_files.retain(|&k| k != key);
        self.wake.retain(|&k| k != key);
        if let Some(k) = &mut self.kube {
            k.waiting.remove(&key);
        }
        // The last seal recorded its boundary: delivery moves the entry there once the batches
        // in flight are acknowledged, and a re-inclusion resumes from it.
        let offset = of.sealed_boundary;
        if of.tracked
            && let Some(fingerprint) = of.tailed.fingerprint
        {
            self.delivery
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .park(key);
            self.parked.insert(
                of.tailed.id,
                Parked {
                    key,
                    fingerprint,
                    offset,
                },
            );
        }
        tracing::info!(path = %of.tailed.path.display(), offset, "file no longer included by the configuration: not read any more, its checkpoint entry stays");
        true
    }
}
