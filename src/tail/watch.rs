//! File-system notifications (inotify through `notify`) so new lines and new files are seen at
//! once instead of at the next poll. Only directories are watched, non-recursively: the
//! directories holding tailed files and the directories the include globs list.
//!
//! Notifications are a latency optimisation, never the only source of truth: the reader still
//! polls on a timer and rescans periodically, so a lost event (queue overflow) costs latency,
//! not data.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

pub struct Watcher {
    inner: notify::RecommendedWatcher,
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
    watched: HashSet<PathBuf>,
}

/// What a wait saw.
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths whose content changed.
    pub paths: Vec<PathBuf>,
    /// A file was created, renamed or removed: the set of files must be scanned again. (After
    /// a kubelet rotation the new `0.log` has the old file's path, so a path alone cannot tell.)
    pub rescan: bool,
    /// The kernel dropped events (or the watcher failed): everything must be looked at.
    pub overflow: bool,
}

impl Watcher {
    pub fn new() -> notify::Result<Watcher> {
        let (tx, rx) = mpsc::channel();
        let inner = notify::recommended_watcher(tx)?;
        Ok(Watcher {
            inner,
            rx,
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

    /// Stops watching directories not in `keep`.
    pub fn retain_dirs(&mut self, keep: &HashSet<PathBuf>) {
        let gone: Vec<PathBuf> = self.watched.difference(keep).cloned().collect();
        for dir in gone {
            // The directory may already be deleted, which removes the watch by itself.
            let _ = self.inner.unwatch(&dir);
            self.watched.remove(&dir);
        }
    }

    /// Waits up to `timeout` for the first notification, then drains what is queued.
    pub fn wait(&self, timeout: Duration, changes: &mut Changes) {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => return,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                changes.overflow = true;
                return;
            }
        };
        Self::record(first, changes);
        while let Ok(ev) = self.rx.try_recv() {
            Self::record(ev, changes);
        }
    }

    fn record(ev: notify::Result<notify::Event>, changes: &mut Changes) {
        match ev {
            Ok(ev) => {
                use notify::EventKind;
                use notify::event::ModifyKind;
                if ev.need_rescan() {
                    changes.overflow = true;
                }
                match ev.kind {
                    EventKind::Create(_)
                    | EventKind::Remove(_)
                    | EventKind::Modify(ModifyKind::Name(_)) => changes.rescan = true,
                    EventKind::Access(_) => {}
                    _ => changes.paths.extend(ev.paths),
                }
            }
            Err(_) => changes.overflow = true,
        }
    }
}
