//! Events split by a rotation: a rotated file's live successor (the new `0.log` beside it)
//! waits until the rotated file is drained, then adopts the partial lines and multiline groups
//! still in progress at its end, so a line written in chunks across the rotation arrives as one
//! event. Part of the reader; it shares its state. It decides who continues whom and when, and
//! what the checkpoint may pass; the joining itself is `parse::assemble`'s. It never reorders
//! a file's lines and never makes a checkpoint pass an event not yet acknowledged.
//!
//! Offsets: the joined event's `start` and `_id` are the rotated file's (its first piece is
//! there). Until the successor has emitted it, the rotated file stays open with its boundary at
//! that start, and the successor's boundary stays below its own first record of that stream;
//! the batch holding the joined event moves both files past it at once. So after a crash in
//! between, the next start reads the rotated file again from the event's start, hands it over
//! again, and the successor joins it with the same continuation: the same `_id`, one document.

use std::path::PathBuf;
use std::time::Instant;

use super::{EmitCtx, Reader, origin, rotation};
use crate::delivery::FileKey;
use crate::sink::elasticsearch::encode::FileContext;

/// A rotated file's relation to its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    /// No successor found yet (looked for at every scan).
    Unlinked,
    /// The successor does not read until this file is drained (and handed over or closed).
    Holds(FileKey),
    /// Handed over (or given up): never linked again.
    Released,
}

impl Link {
    pub(super) fn holds(self) -> Option<FileKey> {
        match self {
            Link::Holds(k) => Some(k),
            _ => None,
        }
    }
}

/// The rotated file whose events in progress a successor adopted.
#[derive(Debug)]
pub(super) struct Predecessor {
    pub key: FileKey,
    /// Adopted events are shipped with it: their `_id` is the predecessor's file and offset.
    pub ctx: FileContext,
    /// The predecessor's end: its boundary once the adopted events are emitted.
    pub end: u64,
}

/// Where the live successor of a rotated file is: `0.log` of `0.log` (renamed while we held
/// it open) or `0.log.<timestamp>` (a rotated sibling opened by that name).
fn successor_path(real: &std::path::Path) -> Option<PathBuf> {
    let name = real.file_name()?.to_str()?;
    Some(real.with_file_name(rotation::base_name(name)))
}

impl Reader {
    /// Links every rotated file not linked yet to its live successor, if that is open and has
    /// read nothing: the successor holds off until the rotated file is drained. After a
    /// restart the live file is opened before its rotated siblings, in the same scan, and
    /// nothing reads before the scan ends.
    pub(super) fn link_successors(&mut self) {
        let unlinked: Vec<FileKey> = self
            .attention
            .iter()
            .copied()
            .filter(|k| {
                self.files.get(k).is_some_and(|f| {
                    // A `.gz` is never the live file's predecessor: the kubelet keeps the
                    // newest rotation uncompressed.
                    f.rotated_at.is_some()
                        && f.tailed.real_path.extension().is_none_or(|x| x != "gz")
                        && f.link == Link::Unlinked
                        && f.handed_over.is_none()
                        && f.predecessor.is_none()
                })
            })
            .collect();
        for p in unlinked {
            if self.closing.contains(&p) {
                continue;
            }
            // Without a complete first line a file holds nothing and may never be read to its
            // end (an empty file rotated at once): it holds nobody. One that was empty when we
            // last read it may have been written since, just before its rotation (a `P` chunk
            // and then the rename): its head is read here, or its end would be torn from the
            // continuation in the successor.
            let has_head = self
                .files
                .get_mut(&p)
                .is_some_and(|f| f.tailed.refresh_fingerprint().unwrap_or(false));
            if !has_head {
                continue;
            }
            let Some(next) = self
                .files
                .get(&p)
                .and_then(|f| successor_path(&f.tailed.real_path))
            else {
                continue;
            };
            let Some(&s) = self.by_real_path.get(&next) else {
                continue;
            };
            if s == p {
                continue;
            }
            let Some(sf) = self.files.get_mut(&s) else {
                continue;
            };
            if sf.rotated_at.is_some()
                || sf.predecessor.is_some()
                || sf.assembler.in_progress()
                || sf.tailed.framed_offset() != sf.resume
            {
                // It has read already (found before the rotation was): too late to hold it.
                continue;
            }
            sf.held_by += 1;
            if let Some(pf) = self.files.get_mut(&p) {
                pf.link = Link::Holds(s);
                tracing::debug!(
                    rotated = %pf.tailed.real_path.display(),
                    successor = %next.display(),
                    "the live successor waits until the rotated file is drained"
                );
            }
        }
    }

    /// A linked rotated file is drained with events in progress: its successor adopts them if
    /// it is still waiting for this file alone; otherwise they are flushed here as before.
    pub(super) fn hand_over(&mut self, p: FileKey, now: Instant) {
        let Some(s) = self.files.get(&p).and_then(|f| f.link.holds()) else {
            self.flush_and_close(p);
            return;
        };
        let ready = self.files.get(&s).is_some_and(|sf| {
            sf.held_by == 1
                && sf.predecessor.is_none()
                && !sf.assembler.in_progress()
                && sf.tailed.framed_offset() == sf.resume
        });
        let Some(pf) = self.files.get_mut(&p) else {
            return;
        };
        let (true, Some(ctx)) = (ready, pf.ctx.clone()) else {
            self.flush_and_close(p);
            return;
        };
        let Some(pending) = pf.assembler.take_pending() else {
            self.flush_and_close(p);
            return;
        };
        let start = pending.start();
        let end = pf.tailed.framed_offset();
        let from = pf.tailed.real_path.clone();
        let Some(sf) = self.files.get_mut(&s) else {
            return;
        };
        match sf.assembler.adopt(pending, now) {
            Ok(()) => {
                tracing::debug!(
                    from = %from.display(),
                    offset = start,
                    "events in progress at a rotated file's end continue in its successor"
                );
                sf.predecessor = Some(Predecessor { key: p, ctx, end });
                sf.held_by -= 1;
                self.wake.push(s);
                self.attention.insert(s);
                self.metrics.rotation_joins.inc();
                if let Some(pf) = self.files.get_mut(&p) {
                    pf.handed_over = Some(start);
                    pf.link = Link::Released;
                }
            }
            Err(pending) => {
                // Checked above (`ready`); should it happen, the events are the rotated file's
                // own again (adopted there, they are shipped with its context) and flushed.
                if let Some(pf) = self.files.get_mut(&p) {
                    let _ = pf.assembler.adopt(pending, now);
                }
                self.flush_and_close(p);
            }
        }
    }

    /// Emits what a drained rotated file holds and closes it (its successor is released when
    /// it is closed, in `closed_in_succession`).
    fn flush_and_close(&mut self, p: FileKey) {
        let Reader {
            files,
            encoder,
            batch,
            metrics,
            closing,
            touched_files,
            ..
        } = self;
        let Some(of) = files.get_mut(&p) else {
            return;
        };
        let of = &mut **of;
        if let Some(ctx) = of.ctx.as_ref() {
            let pred = of.predecessor.as_ref().map(|p| &p.ctx);
            let before = of.boundary();
            let mut emit_ctx = EmitCtx {
                encoder,
                batch,
                metrics,
                now: Instant::now(),
            };
            of.assembler
                .flush_all(&mut |ev| emit_ctx.emit(origin(ctx, pred, ev), ev, false));
            if of.boundary() != before && !of.touched {
                of.touched = true;
                touched_files.push(p);
            }
        }
        // `link` is left as it is: the close releases the successor it holds.
        if !closing.contains(&p) {
            closing.push(p);
        }
    }

    /// Once a successor has emitted every event it adopted, its predecessor's boundary moves
    /// to its end, in the batch holding them, and it is closed.
    pub(super) fn settle_adoption(&mut self, s: FileKey) {
        let Some(sf) = self.files.get_mut(&s) else {
            return;
        };
        if sf.assembler.adopted() {
            return;
        }
        let Some(pred) = sf.predecessor.take() else {
            return;
        };
        self.release_predecessor(pred.key, pred.end);
    }

    fn release_predecessor(&mut self, key: FileKey, end: u64) {
        match self.files.get_mut(&key) {
            Some(pf) => {
                pf.handed_over = None;
                if !pf.touched {
                    pf.touched = true;
                    self.touched_files.push(key);
                }
                if !self.closing.contains(&key) {
                    self.closing.push(key);
                }
            }
            // Closed meanwhile (the bound on rotated files): its end goes with this batch.
            None => self.batch.ranges.push((key, end)),
        }
    }

    /// A file was closed: a successor it held may read; a predecessor whose events it had
    /// adopted (closed before it emitted them: the bound on rotated files) is released.
    pub(super) fn closed_in_succession(&mut self, of: &super::OpenFile) {
        if let Some(s) = of.link.holds()
            && let Some(sf) = self.files.get_mut(&s)
        {
            sf.held_by = sf.held_by.saturating_sub(1);
            if sf.held_by == 0 {
                self.wake.push(s);
            }
        }
        if let Some(pred) = &of.predecessor {
            self.release_predecessor(pred.key, pred.end);
        }
    }
}
