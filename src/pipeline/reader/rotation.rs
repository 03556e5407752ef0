//! Rotated files: the bound on how many stay open, and the rotated siblings (`0.log.<ts>`) of
//! known files that were never read to their end. Part of the reader; it shares its state.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{ReadFrom, Reader};
use crate::delivery::FileKey;
use crate::tail::CheckpointEntry;
use crate::tail::FileId;
use crate::tail::discover::Found;

impl Reader {
    /// Keeps at most `max_rotated_files` rotated files open: each one pins its disk space (the
    /// kubelet may already have deleted it). Beyond the bound the oldest is closed, and what it
    /// still held unread is reported as lost.
    pub(super) fn bound_rotated(&mut self) {
        let mut rotated: Vec<(Instant, FileKey)> = self
            .files
            .values()
            .filter(|f| f.rotated_at.is_some() && !self.closing.contains(&f.key))
            .map(|f| (f.rotated_at.unwrap_or_else(Instant::now), f.key))
            .collect();
        if rotated.len() <= self.cfg.input.max_rotated_files {
            return;
        }
        rotated.sort();
        let excess = rotated.len() - self.cfg.input.max_rotated_files;
        for &(_, key) in &rotated[..excess] {
            let Some(of) = self.files.get(&key) else {
                continue;
            };
            let unread = of.tailed.size().unwrap_or(0).saturating_sub(of.boundary());
            tracing::warn!(
                path = %of.tailed.real_path.display(),
                namespace = of.pod.as_ref().map_or("", |p| p.namespace.as_str()),
                unread_bytes = unread,
                bound = self.cfg.input.max_rotated_files,
                "too many rotated files open (Elasticsearch slow or down?): closing the oldest; its unread lines are lost"
            );
            self.metrics.rotated_files_dropped.inc();
            self.metrics.rotated_bytes_dropped.inc_by(unread);
            self.closing.push(key);
        }
    }

    /// Rotated files (`0.log.<timestamp>`) next to the files we know that we never read to
    /// their end: a file created *and* rotated between two scans, or while the agent was down,
    /// or rotated away while the agent was down. They are read like any rotated file (from the
    /// checkpoint's offset, else from the head). Files read to their end stay known (retired in
    /// delivery, and so in the checkpoint) until they disappear, so nothing is read twice.
    /// Compressed (`.gz`) and temporary (`.tmp`) files are not read here (`compressed` reads a
    /// `.gz` the checkpoint still owes bytes of).
    pub(super) fn scan_siblings(&mut self) {
        let retired: Vec<(FileKey, FileId, crate::tail::Fingerprint, u64, PathBuf)> = self
            .delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retired()
            .map(|(k, id, fp, off, path)| (k, id, fp, off, path.to_path_buf()))
            .collect();
        let mut bases: HashMap<PathBuf, HashSet<String>> = HashMap::new();
        let mut add = |real: &Path| {
            if let (Some(dir), Some(name)) =
                (real.parent(), real.file_name().and_then(|n| n.to_str()))
            {
                bases
                    .entry(dir.to_path_buf())
                    .or_default()
                    .insert(base_name(name).to_string());
            }
        };
        self.files.values().for_each(|f| add(&f.tailed.real_path));
        self.resume.values().for_each(|e| add(&e.real_path));
        retired.iter().for_each(|r| add(&r.4));

        let skip_existing = self.first_scan_done.is_none()
            && self.first_start
            && self.cfg.input.read_from == ReadFrom::Tail;
        let mut present: HashSet<FileId> = HashSet::new();
        let mut unreadable_dirs: Vec<PathBuf> = Vec::new();
        for (dir, names) in &bases {
            let listing = match std::fs::read_dir(dir) {
                Ok(l) => l,
                Err(_) => {
                    unreadable_dirs.push(dir.clone());
                    continue;
                }
            };
            for dirent in listing.flatten() {
                let path = dirent.path();
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let id = FileId::of(&meta);
                present.insert(id);
                let name = dirent.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_rotated_sibling(name, names)
                    || self.by_id.contains_key(&id)
                    || self.ignored_siblings.contains(&id)
                {
                    continue;
                }
                if skip_existing {
                    self.ignored_siblings.insert(id);
                    continue;
                }
                if let Some(r) = retired.iter().find(|r| r.1 == id) {
                    let same = std::fs::File::open(&path)
                        .ok()
                        .and_then(|f| crate::tail::Fingerprint::read(&f).ok().flatten())
                        == Some(r.2);
                    if same && meta.len() <= r.3 {
                        continue; // Read to its end before.
                    }
                    // It grew after we closed it, or its inode now holds another file: let the
                    // checkpoint logic of `open` decide the offset.
                    let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
                    if d.unacknowledged_for(r.0) > 0 {
                        continue;
                    }
                    let (route, ids) = (d.route(r.0).map(str::to_string), d.ids(r.0));
                    d.forget(r.0);
                    drop(d);
                    self.resume.insert(
                        id,
                        CheckpointEntry {
                            id,
                            fingerprint: r.2.to_hex(),
                            path: path.clone(),
                            real_path: path.clone(),
                            offset: r.3,
                            done: false,
                            route,
                            ids,
                        },
                    );
                }
                if !self.resume.contains_key(&id)
                    && let Some(entry) = self.copy_of_known(id, &path, &retired)
                {
                    tracing::info!(
                        path = %path.display(),
                        of = %entry.real_path.display(),
                        offset = entry.offset,
                        "a copy of a file we read (copytruncate): reading it from where that file is committed"
                    );
                    self.resume.insert(id, entry);
                }
                let display_path = self
                    .resume
                    .get(&id)
                    .map_or_else(|| path.clone(), |e| e.path.clone());
                tracing::info!(path = %path.display(), "reading a rotated file not read to its end yet");
                let f = Found {
                    path: display_path,
                    real_path: path.clone(),
                    id,
                    size: meta.len(),
                    modified: std::time::SystemTime::now(),
                };
                if let Some(key) = self.open(f, true)
                    && let Some(of) = self.files.get_mut(&key)
                {
                    of.rotated_at = Some(Instant::now());
                    self.attention.insert(key);
                }
            }
        }
        self.first_scan_done.get_or_insert(Instant::now());
        // Retired files that are gone from disk (compressed, deleted, pod removed): forget them.
        let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        for r in &retired {
            let dir_gone =
                r.4.parent()
                    .is_some_and(|dir| unreadable_dirs.iter().any(|u| u == dir));
            if dir_gone || !present.contains(&r.1) {
                d.forget(r.0);
            }
        }
    }
}

impl Reader {
    /// A sibling never seen whose first line is that of a file we know in the same directory
    /// under another inode is a copy of it (copytruncate): its bytes up to that file's
    /// committed offset are that file's, already delivered, so it is read from there. Read from
    /// its head instead, it would send them again — harmless where the `_id`s match, but a
    /// record the original had joined to its rotated predecessor's event (`succession`) would
    /// come back as a torn piece of that line. Returns the resume entry for the copy.
    fn copy_of_known(
        &self,
        id: FileId,
        path: &Path,
        retired: &[(FileKey, FileId, crate::tail::Fingerprint, u64, PathBuf)],
    ) -> Option<CheckpointEntry> {
        let dir = path.parent()?;
        let fp = std::fs::File::open(path)
            .ok()
            .and_then(|f| crate::tail::Fingerprint::read(&f).ok().flatten())?;
        let same_dir = |p: &Path| p.parent() == Some(dir);
        // The copy goes on where the original is committed, into the original's index.
        let d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        let kept = |key: FileKey| (d.route(key).map(str::to_string), d.ids(key));
        let (offset, (route, ids)) = self
            .files
            .values()
            .filter(|f| {
                f.tailed.id != id
                    && f.tailed.fingerprint == Some(fp)
                    && same_dir(&f.tailed.real_path)
            })
            .find_map(|f| Some((d.committed(f.key)?, kept(f.key))))
            .or_else(|| {
                retired
                    .iter()
                    .find(|r| r.1 != id && r.2 == fp && same_dir(&r.4))
                    .map(|r| (r.3, kept(r.0)))
            })
            .or_else(|| {
                self.resume
                    .values()
                    .find(|e| e.id != id && e.fingerprint() == Some(fp) && same_dir(&e.real_path))
                    .map(|e| (e.offset, (e.route.clone(), e.ids)))
            })?;
        Some(CheckpointEntry {
            id,
            fingerprint: fp.to_hex(),
            path: path.to_path_buf(),
            real_path: path.to_path_buf(),
            offset,
            done: false,
            route,
            ids,
        })
    }
}

/// `0.log` of `0.log`, `0.log.20261124-101500` or `0.log.20261124-101500.gz`.
pub(super) fn base_name(name: &str) -> &str {
    match name.find(".log") {
        Some(i) => &name[..i + 4],
        None => name,
    }
}

/// Whether `name` is a rotated, uncompressed sibling of one of `bases` (`0.log.<suffix>`).
fn is_rotated_sibling(name: &str, bases: &HashSet<String>) -> bool {
    if name.ends_with(".gz") || name.ends_with(".tmp") {
        return false;
    }
    bases.iter().any(|b| {
        name.len() > b.len() + 1 && name.starts_with(b.as_str()) && name.as_bytes()[b.len()] == b'.'
    })
}
