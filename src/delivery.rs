//! Acknowledgements → per-file committed offsets.
//!
//! The reader seals batches in order. For every file a batch touches it records the file's
//! *boundary* at sealing time: the offset before which every event has been put into this or an
//! earlier batch (never inside a partial line or a multiline group still being assembled). When a
//! batch is acknowledged (every item created, already present, or dead-lettered) its entries are
//! marked; a file's committed offset advances over the acknowledged entries at the front of its
//! queue only, so an early acknowledgement of a later batch never skips an unacknowledged one.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use crate::tail::{Checkpoint, CheckpointEntry, FileId, Fingerprint, IdScheme, checkpoint};

/// The reader's handle for one open file; never reused within a run.
pub type FileKey = u64;

#[derive(Debug)]
struct Pending {
    seq: u64,
    boundary: u64,
    acked: bool,
}

#[derive(Debug)]
struct Progress {
    id: FileId,
    fingerprint: Fingerprint,
    path: PathBuf,
    real_path: PathBuf,
    committed: u64,
    queue: VecDeque<Pending>,
    /// The reader is done with the file; forget it once everything is acknowledged.
    retired: bool,
    /// The configuration no longer includes the file (a reload): not read, but its offset stays
    /// in the checkpoint as an open file's would, for the day it is included again.
    parked: bool,
    /// The file's resolved index pattern, with routing (see [`CheckpointEntry::route`]).
    route: Option<String>,
    /// How the file's document ids are made (see [`CheckpointEntry::ids`]).
    ids: IdScheme,
}

#[derive(Debug, Default)]
pub struct Delivery {
    files: HashMap<FileKey, Progress>,
    changed: bool,
    /// The reader has registered every file of the previous checkpoint (or found it gone).
    /// Before that, a checkpoint written would forget the offsets of files not yet registered.
    ready: bool,
}

impl Delivery {
    /// Starts tracking a file whose events before `committed` are already delivered.
    pub fn track(
        &mut self,
        key: FileKey,
        id: FileId,
        fingerprint: Fingerprint,
        path: PathBuf,
        real_path: PathBuf,
        committed: u64,
    ) {
        // A parked file included again under its old key: batches sealed before it was parked
        // may still be in flight, so its queue and committed offset carry on.
        if let Some(p) = self.files.get_mut(&key)
            && p.parked
            && p.id == id
            && p.fingerprint == fingerprint
        {
            p.parked = false;
            p.path = path;
            p.real_path = real_path;
            self.changed = true;
            return;
        }
        self.files.insert(
            key,
            Progress {
                id,
                fingerprint,
                path,
                real_path,
                committed,
                queue: VecDeque::new(),
                retired: false,
                parked: false,
                route: None,
                ids: IdScheme::CURRENT,
            },
        );
        self.changed = true;
    }

    /// The file's route (its resolved index pattern), kept in the checkpoint from now on.
    pub fn set_route(&mut self, key: FileKey, route: &str) {
        if let Some(p) = self.files.get_mut(&key)
            && p.route.as_deref() != Some(route)
        {
            p.route = Some(route.to_string());
            self.changed = true;
        }
    }

    /// The file keeps the document ids of the version that first read it.
    pub fn set_ids(&mut self, key: FileKey, ids: IdScheme) {
        if let Some(p) = self.files.get_mut(&key)
            && p.ids != ids
        {
            p.ids = ids;
            self.changed = true;
        }
    }

    /// How the file's document ids are made ([`IdScheme::CURRENT`] for a file not tracked).
    pub fn ids(&self, key: FileKey) -> IdScheme {
        self.files.get(&key).map_or(IdScheme::CURRENT, |p| p.ids)
    }

    /// The route recorded for the file, if any.
    pub fn route(&self, key: FileKey) -> Option<&str> {
        self.files.get(&key)?.route.as_deref()
    }

    /// A batch was sealed; `ranges` holds each touched file's boundary.
    pub fn sealed(&mut self, seq: u64, ranges: &[(FileKey, u64)]) {
        for &(key, boundary) in ranges {
            if let Some(p) = self.files.get_mut(&key) {
                p.queue.push_back(Pending {
                    seq,
                    boundary,
                    acked: false,
                });
            }
        }
    }

    /// Every item of batch `seq` is settled.
    pub fn acked(&mut self, seq: u64, ranges: &[(FileKey, u64)]) {
        for &(key, _) in ranges {
            let Some(p) = self.files.get_mut(&key) else {
                continue;
            };
            if let Some(e) = p.queue.iter_mut().find(|e| e.seq == seq) {
                e.acked = true;
            }
            while p.queue.front().is_some_and(|e| e.acked) {
                // Checked by the loop condition: the queue has a front entry.
                let e = p.queue.pop_front().expect("front exists");
                if e.boundary > p.committed {
                    p.committed = e.boundary;
                    self.changed = true;
                }
            }
        }
    }

    /// The reader closed the file (rotated away and read to its end, or deleted). Its entry
    /// stays in the checkpoint, so a rotated file that still lies next to the live one is
    /// known as done and never read again, until [`Delivery::forget`].
    pub fn retire(&mut self, key: FileKey) {
        if let Some(p) = self.files.get_mut(&key) {
            p.retired = true;
        }
    }

    /// The configuration no longer includes the file: the reader stops reading it and its entry
    /// stays in the checkpoint at its committed offset (acknowledgements of its batches still in
    /// flight move it on), until [`Delivery::track`] takes it up again under the same key.
    pub fn park(&mut self, key: FileKey) {
        if let Some(p) = self.files.get_mut(&key) {
            p.parked = true;
        }
    }

    /// The file is gone from disk: drop its entry once its batches are acknowledged.
    pub fn forget(&mut self, key: FileKey) {
        if self
            .files
            .get(&key)
            .is_some_and(|p| p.retired && p.queue.is_empty())
        {
            self.files.remove(&key);
            self.changed = true;
        }
    }

    /// Closed files still remembered: `(key, identity, fingerprint, committed offset, real path)`.
    pub fn retired(
        &self,
    ) -> impl Iterator<Item = (FileKey, FileId, Fingerprint, u64, &std::path::Path)> {
        self.files
            .iter()
            .filter(|(_, p)| p.retired)
            .map(|(k, p)| (*k, p.id, p.fingerprint, p.committed, p.real_path.as_path()))
    }

    pub fn committed(&self, key: FileKey) -> Option<u64> {
        self.files.get(&key).map(|p| p.committed)
    }

    /// Batches sealed but not yet acknowledged for one file.
    pub fn unacknowledged_for(&self, key: FileKey) -> usize {
        self.files.get(&key).map_or(0, |p| p.queue.len())
    }

    /// Batches sealed but not yet acknowledged, over all files.
    pub fn unacknowledged(&self) -> usize {
        self.files.values().map(|p| p.queue.len()).sum()
    }

    /// Called by the reader after its first scan; checkpoints are written from then on.
    pub fn set_ready(&mut self) {
        self.ready = true;
        self.changed = true;
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The checkpoint to write, if anything changed since the last call (and the reader has
    /// registered every file of the previous checkpoint).
    pub fn take_checkpoint(&mut self) -> Option<Checkpoint> {
        if !self.ready || !std::mem::take(&mut self.changed) {
            return None;
        }
        Some(self.checkpoint())
    }

    /// Forces the next [`Delivery::take_checkpoint`] to return a checkpoint (after a failed write).
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    pub fn checkpoint(&self) -> Checkpoint {
        let mut files: Vec<CheckpointEntry> = self
            .files
            .values()
            .map(|p| CheckpointEntry {
                id: p.id,
                fingerprint: p.fingerprint.to_hex(),
                path: p.path.clone(),
                real_path: p.real_path.clone(),
                offset: p.committed,
                done: p.retired,
                route: p.route.clone(),
                ids: p.ids,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id)));
        Checkpoint {
            version: checkpoint::VERSION,
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery_with(keys: &[FileKey]) -> Delivery {
        let mut d = Delivery::default();
        d.set_ready();
        for &k in keys {
            d.track(
                k,
                FileId { dev: 1, inode: k },
                Fingerprint(k),
                format!("/f{k}").into(),
                format!("/r{k}").into(),
                0,
            );
        }
        d
    }

    #[test]
    fn out_of_order_acks_never_skip_an_unacknowledged_batch() {
        let mut d = delivery_with(&[1]);
        d.sealed(1, &[(1, 100)]);
        d.sealed(2, &[(1, 200)]);
        d.sealed(3, &[(1, 300)]);
        d.acked(2, &[(1, 200)]);
        assert_eq!(d.committed(1), Some(0));
        d.acked(1, &[(1, 100)]);
        assert_eq!(d.committed(1), Some(200));
        d.acked(3, &[(1, 300)]);
        assert_eq!(d.committed(1), Some(300));
        assert_eq!(d.unacknowledged(), 0);
    }

    #[test]
    fn files_advance_independently() {
        let mut d = delivery_with(&[1, 2]);
        d.sealed(1, &[(1, 10), (2, 50)]);
        d.sealed(2, &[(2, 80)]);
        d.acked(2, &[(2, 80)]);
        assert_eq!((d.committed(1), d.committed(2)), (Some(0), Some(0)));
        d.acked(1, &[(1, 10), (2, 50)]);
        assert_eq!((d.committed(1), d.committed(2)), (Some(10), Some(80)));
    }

    #[test]
    fn a_files_route_is_kept_in_the_checkpoint_until_it_is_forgotten() {
        let mut d = delivery_with(&[1, 2]);
        d.set_route(1, "logs-shop-%Y.%m.%d");
        let cp = d.checkpoint();
        let routes: Vec<_> = cp.files.iter().map(|e| e.route.as_deref()).collect();
        assert_eq!(routes, [Some("logs-shop-%Y.%m.%d"), None]);
        assert_eq!(d.route(1), Some("logs-shop-%Y.%m.%d"));
        // Retired and done, it stays with its route while it is remembered.
        d.retire(1);
        assert_eq!(
            d.checkpoint().files[0].route.as_deref(),
            Some("logs-shop-%Y.%m.%d")
        );
        d.forget(1);
        assert_eq!(d.route(1), None);
    }

    #[test]
    fn retired_file_is_remembered_until_forgotten_after_its_acks() {
        let mut d = delivery_with(&[1]);
        d.sealed(1, &[(1, 10)]);
        d.retire(1);
        d.forget(1);
        assert_eq!(d.checkpoint().files.len(), 1, "unacknowledged: must stay");
        d.acked(1, &[(1, 10)]);
        assert_eq!(d.retired().count(), 1);
        assert_eq!(d.checkpoint().files[0].offset, 10, "done files stay known");
        d.forget(1);
        assert_eq!(d.checkpoint().files.len(), 0);
    }

    #[test]
    fn no_checkpoint_before_the_reader_registered_the_previous_one() {
        let mut d = Delivery::default();
        d.track(
            1,
            FileId { dev: 1, inode: 1 },
            Fingerprint(1),
            "/f".into(),
            "/r".into(),
            5,
        );
        assert!(
            d.take_checkpoint().is_none(),
            "would forget files not yet registered"
        );
        d.set_ready();
        assert_eq!(d.take_checkpoint().unwrap().files.len(), 1);
    }

    #[test]
    fn checkpoint_only_when_changed() {
        let mut d = delivery_with(&[1]);
        assert!(d.take_checkpoint().is_some());
        assert!(d.take_checkpoint().is_none());
        d.sealed(1, &[(1, 10)]);
        assert!(d.take_checkpoint().is_none());
        d.acked(1, &[(1, 10)]);
        assert_eq!(d.take_checkpoint().unwrap().files[0].offset, 10);
    }

    #[test]
    fn parked_file_keeps_its_entry_and_its_queue_when_included_again() {
        let mut d = delivery_with(&[1]);
        d.sealed(1, &[(1, 100)]);
        d.park(1);
        // Included again before batch 1 is acknowledged: the same key, its queue kept.
        d.track(
            1,
            FileId { dev: 1, inode: 1 },
            Fingerprint(1),
            "/f1".into(),
            "/r1".into(),
            100,
        );
        assert_eq!(d.committed(1), Some(0), "nothing acknowledged yet");
        assert_eq!(d.unacknowledged_for(1), 1);
        d.acked(1, &[(1, 100)]);
        assert_eq!(d.committed(1), Some(100));
        d.park(1);
        let cp = d.checkpoint();
        assert_eq!(cp.files.len(), 1);
        assert_eq!(cp.files[0].offset, 100);
        assert!(!cp.files[0].done, "a parked file is not done");
    }
}
