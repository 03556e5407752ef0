//! Opening and closing files: the scan for new files and files gone from their path, and
//! making a file an open one (its checkpoint offset, clock, pod and assembler). Reads nothing
//! of a file's lines.

use super::*;

impl Reader {
    /// Looks for new files and for files that are no longer at their path.
    pub(super) fn rescan(&mut self) {
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
        let gone: Vec<FileKey> = self
            .files
            .values()
            .filter(|of| of.rotated_at.is_none() && !present.contains(&of.tailed.id))
            .map(|of| of.key)
            .collect();
        for key in gone {
            let Some(of) = self.files.get(&key) else {
                continue;
            };
            if !self.included(&of.tailed.path) {
                // Excluded by a reload, not rotated: parked (see `live`), or at the next scan
                // when what it read is sealed.
                if of.touched {
                    self.rescan_wanted = true;
                    continue;
                }
                if self.park(key) {
                    continue;
                }
            }
            if let Some(of) = self.files.get_mut(&key) {
                tracing::debug!(path = %of.tailed.path.display(), "file rotated or deleted; reading it to its end");
                of.rotated_at = Some(now);
                self.attention.insert(key);
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

    pub(super) fn open(&mut self, f: Found, rotated: bool) -> Option<FileKey> {
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
        if let Some(p) = self.parked.remove(&f.id) {
            if tailed.fingerprint == Some(p.fingerprint) {
                // Excluded by a reload and included again: on from where it stopped, under its
                // key (its batches may still be in flight).
                tracing::info!(path = %f.path.display(), offset = p.offset, "file included again by the configuration; reading on");
                let key = self.insert_open(p.key, tailed, p.offset, f.size);
                let d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
                let (route, ids) = (d.route(key).map(str::to_string), d.ids(key));
                drop(d);
                self.keep(key, route.as_deref(), ids);
                return Some(key);
            }
            // Its inode holds another file now: the parked one is gone.
            let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
            d.retire(p.key);
            d.forget(p.key);
        }
        let (mut kept_route, mut ids) = (None, IdScheme::CURRENT);
        let resume = match self.resume.remove(&f.id) {
            Some(e) if tailed.fingerprint.is_some() && e.fingerprint() == tailed.fingerprint => {
                (kept_route, ids) = (e.route, e.ids);
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
        let key = self.insert_open(key, tailed, resume, f.size);
        self.keep(key, kept_route.as_deref(), ids);
        Some(key)
    }

    /// A file reopened with the route and ids it had (its checkpoint entry's): it keeps that
    /// index and those ids. A route that does not read back is warned about; the file is then
    /// routed afresh.
    pub(super) fn keep(&mut self, key: FileKey, route: Option<&str>, ids: IdScheme) {
        let Some(of) = self.files.get_mut(&key) else {
            return;
        };
        of.ids = ids;
        // Opening may have registered it already (`track`), under the current scheme.
        self.delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_ids(key, ids);
        let Some(text) = route else {
            return;
        };
        of.kept_route = IndexPattern::from_resolved(text);
        if of.kept_route.is_none() {
            tracing::warn!(path = %of.tailed.path.display(), route = text, "the checkpoint's index for this file does not read back; routing it from its metadata");
        }
    }

    /// Makes `tailed`, positioned at `resume` (at most `size`), an open file under `key`.
    pub(super) fn insert_open(
        &mut self,
        key: FileKey,
        mut tailed: TailedFile,
        resume: u64,
        size: u64,
    ) -> FileKey {
        let resume = resume.min(size);
        tailed.start_at(resume);
        let format = configured_format(&self.cfg);
        let clock =
            clock::FileClock::open(tailed.file(), resume, format, self.cfg.input.max_line_bytes);
        let pod = kubernetes::path::pod_ref(&tailed.path, &tailed.real_path);
        self.by_id.insert(tailed.id, key);
        self.by_real_path.insert(tailed.real_path.clone(), key);
        self.files.insert(
            key,
            Box::new(OpenFile::new(
                key,
                tailed,
                format,
                Assembler::new(self.assembler_cfg.clone()),
                resume,
                pod,
                clock,
            )),
        );
        if let Some(of) = self.files.get_mut(&key) {
            self.fair.place(&mut of.share, of.pod.as_ref());
            track(of, &self.delivery);
        }
        self.metrics.files_open.set(self.files.len() as i64);
        key
    }
}
