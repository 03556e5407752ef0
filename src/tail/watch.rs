//! File-system notifications (inotify through `notify`) so new lines and new files are seen at
//! once instead of at the next poll. Only directories are watched, non-recursively: the
//! directories holding tailed files and the directories the include globs list.
//!
//! Notifications are a latency optimisation, never the only source of truth: the reader still
//! polls (files in unwatched directories every `poll_interval`, all files every
//! `scan_interval`) and rescans periodically, so a lost event costs latency, not data; a queue
//! overflow makes the reader look at every file at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

/// More distinct changed paths than this between two looks: treat it as an overflow (look at
/// everything) instead of growing without bound.
const MAX_PENDING_PATHS: usize = 65_536;

pub struct Watcher {
    inner: notify::RecommendedWatcher,
    shared: Arc<(Mutex<Changes>, Condvar)>,
    watched: HashSet<PathBuf>,
}

/// What happened since the last look. Events are merged as they arrive, so memory is bounded
/// by the number of distinct paths however long the reader does not look (for example while
/// Elasticsearch is down and reading is paused).
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths whose content changed.
    pub paths: HashSet<PathBuf>,
    /// A file was created, renamed or removed: the set of files must be scanned again. (After
    /// a kubelet rotation the new `0.log` has the old file's path, so a path alone cannot tell.)
    pub rescan: bool,
    /// The kernel dropped events (or the watcher failed): everything must be looked at.
    pub overflow: bool,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.rescan && !self.overflow
    }

    fn record(&mut self, ev: notify::Result<notify::Event>) {
        use notify::EventKind;
        use notify::event::ModifyKind;
        match ev {
            Ok(ev) => {
                if ev.need_rescan() {
                    self.overflow = true;
                }
                match ev.kind {
                    EventKind::Create(_)
                    | EventKind::Remove(_)
                    | EventKind::Modify(ModifyKind::Name(_)) => self.rescan = true,
                    EventKind::Access(_) => {}
                    _ if self.overflow => {}
                    _ => {
                        self.paths.extend(ev.paths);
                        if self.paths.len() > MAX_PENDING_PATHS {
                            self.paths.clear();
                            self.overflow = true;
                        }
                    }
                }
            }
            Err(_) => self.overflow = true,
        }
    }
}

impl Watcher {
    pub fn new() -> notify::Result<Watcher> {
        let shared: Arc<(Mutex<Changes>, Condvar)> = Arc::default();
        let handler = shared.clone();
        let inner = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let (lock, ready) = &*handler;
            lock.lock().unwrap_or_else(|p| p.into_inner()).record(ev);
            ready.notify_one();
        })?;
        Ok(Watcher {
            inner,
            shared,
            watched: HashSet::new(),
        })
    }

    /// Watches `dir` (idempotent). Failure is logged, not fatal: polling covers it.
    pub fn watch_dir(&mut self, dir: &Path) {
        if self.watched.contains(dir) {
            return;
        }
        match self.inner.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; relying on polling")
            }
        }
    }

    /// Whether `dir` is watched (a failed watch is not).
    pub fn is_watched(&self, dir: &Path) -> bool {
        self.watched.contains(dir)
    }

    /// Stops watching directories not in `keep`.
    pub fn retain_dirs(&mut self, keep: &HashSet<PathBuf>) {
        let gone: Vec<PathBuf> = self.watched.difference(keep).cloned().collect();
        for dir in gone {
            // The directory may already be deleted, which removes the watch by itself.
            let _ = self.inner.unwatch(&dir);
            self.watched.remove(&dir);
        }
    }

    /// Waits up to `timeout` for something to happen, then takes everything that did into
    /// `changes` (which the caller has emptied).
    pub fn wait(&self, timeout: Duration, changes: &mut Changes) {
        let (lock, ready) = &*self.shared;
        let mut pending = lock.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() && !timeout.is_zero() {
            pending = ready
                .wait_timeout(pending, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::swap(&mut *pending, changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modify(path: &str) -> notify::Result<notify::Event> {
        Ok(
            notify::Event::new(notify::EventKind::Modify(notify::event::ModifyKind::Data(
                notify::event::DataChange::Any,
            )))
            .add_path(path.into()),
        )
    }

    #[test]
    fn repeated_events_for_one_path_take_no_more_memory() {
        let mut c = Changes::default();
        for _ in 0..100_000 {
            c.record(modify("/var/log/pods/a/c/0.log"));
        }
        assert_eq!(c.paths.len(), 1);
        assert!(!c.rescan && !c.overflow);
    }

    #[test]
    fn too_many_distinct_paths_degrade_to_an_overflow() {
        let mut c = Changes::default();
        for i in 0..=MAX_PENDING_PATHS {
            c.record(modify(&format!("/p/{i}")));
        }
        assert!(c.overflow);
        assert!(c.paths.is_empty());
    }

    #[test]
    fn creation_asks_for_a_rescan() {
        let mut c = Changes::default();
        c.record(Ok(notify::Event::new(notify::EventKind::Create(
            notify::event::CreateKind::File,
        ))
        .add_path("/x".into())));
        assert!(c.rescan && c.paths.is_empty());
    }
}
