//! Hot reload: on SIGHUP, and when the configuration file's directory changes (a Kubernetes
//! ConfigMap update swaps the `..data` symlink there; an editor rewrites the file), the file is
//! read again, validated, compared with the running configuration, and its settings are built
//! (HTTP client, TLS files, multiline rules) before anything is handed over: to the reader
//! (`reader::live`, taken up between two batches), the sink and the watchdog (the output in
//! force) and the index setup. Batches sealed before keep what they were encoded for (see
//! `sink::Output`).
//!
//! It never applies a file that does not validate, or one that changes a setting only a restart
//! can change ([`Config::restart_only_changes`]): the running configuration stays, the error is
//! logged with its key and counted in `sluice_config_reloads_total`. A file event whose content
//! hashes as the last one looked at is a no-op (a ConfigMap update fires several events; a
//! `touch` one). Must not block the runtime: the directory watch runs on its own thread.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::reader::{Live, LiveSlot};
use crate::config::{Config, SetupMode};
use crate::sink::elasticsearch::bootstrap;
use crate::sink::elasticsearch::sink::Output;
use crate::tail::watch::{Changes, Watcher};
use crate::telemetry::Metrics;

/// Events of one update (a ConfigMap swap is a create, two renames and a delete) are taken as
/// one: the file is read this long after the first.
const SETTLE: Duration = Duration::from_millis(200);
/// How often the watch thread looks at its stop flag.
const WATCH_TICK: Duration = Duration::from_millis(250);

/// Why the file is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Signal,
    FileChanged,
}

/// The reload task's state: what runs, and where new settings go.
pub(super) struct Reloader {
    pub(super) path: PathBuf,
    pub(super) current: Arc<Config>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) slot: Arc<LiveSlot>,
    /// The output in force, for the sink's requests and the watchdog's probe.
    pub(super) output: watch::Sender<Arc<Output>>,
    /// The configuration in force (`shutdown_timeout` is read from it at shutdown).
    pub(super) config: watch::Sender<Arc<Config>>,
    /// The index setup of the configuration in force (`elasticsearch.setup: auto`).
    pub(super) setup: Option<tokio::task::JoinHandle<()>>,
    /// The hash of the text in force (at start: read as the agent starts), and of the last text
    /// looked at.
    pub(super) applied: Option<u64>,
    pub(super) seen: Option<u64>,
}

/// Installs the SIGHUP handler: from now on a SIGHUP no longer ends the process (its default).
pub(super) fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGHUP handler; reload on file changes only");
            None
        }
    }
}

impl Reloader {
    /// Runs until `stopped` turns true; then stops the watch thread and the setup task.
    pub(super) async fn run(
        mut self,
        mut hup: Option<tokio::signal::unix::Signal>,
        mut stopped: watch::Receiver<bool>,
    ) {
        self.seen = self.applied;
        let (changed_tx, mut changed) = mpsc::channel(1);
        let stop_watch = Arc::new(AtomicBool::new(false));
        let watch_thread = watch_dir(&self.path, changed_tx, stop_watch.clone());
        // A change while the agent started (before the watch) is not missed.
        if let Some(outcome) = self.reload(Trigger::FileChanged) {
            self.metrics.reload(outcome).inc();
        }
        loop {
            let trigger = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                Some(()) = recv_hup(&mut hup) => Trigger::Signal,
                Some(()) = changed.recv() => Trigger::FileChanged,
            };
            tokio::time::sleep(SETTLE).await;
            while changed.try_recv().is_ok() {}
            if let Some(outcome) = self.reload(trigger) {
                self.metrics.reload(outcome).inc();
            }
        }
        stop_watch.store(true, Ordering::Relaxed);
        if let Some(t) = watch_thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if let Some(t) = self.setup.take() {
            t.abort();
        }
    }

    /// One reload; returns its outcome (a `sluice_config_reloads_total` label), `None` for a
    /// file event that changed nothing.
    fn reload(&mut self, trigger: Trigger) -> Option<&'static str> {
        let path = self.path.display().to_string();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(%path, error = %e, "configuration reload: cannot read the file; the running configuration stays");
                return Some("invalid");
            }
        };
        let hash = hash_of(&text);
        if Some(hash) == self.applied
            || (trigger == Trigger::FileChanged && Some(hash) == self.seen)
        {
            if trigger == Trigger::Signal {
                tracing::info!(%path, "configuration reload: the file is unchanged; nothing to do");
            }
            // A file event with what was last looked at (a touch, one ConfigMap swap seen
            // twice) is no reload at all: counted only when asked for (SIGHUP).
            self.seen = Some(hash);
            return (trigger == Trigger::Signal).then_some("unchanged");
        }
        self.seen = Some(hash);
        let new = match Config::from_yaml(&text, &|name| std::env::var(name).ok()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(%path, error = %e, "configuration reload: the new file is invalid; the running configuration stays");
                return Some("invalid");
            }
        };
        let refused = self.current.restart_only_changes(&new);
        if !refused.is_empty() {
            tracing::error!(
                %path,
                settings = %refused.join(", "),
                "configuration reload refused: these settings change only with a restart; nothing of the new file is applied (restore them, or restart the agent to apply it)"
            );
            return Some("refused");
        }
        let new = Arc::new(new);
        let output = match Output::new(&new.elasticsearch, &self.metrics) {
            Ok(o) => Arc::new(o),
            Err(e) => {
                tracing::error!(%path, error = %e, "configuration reload: the new file is invalid; the running configuration stays");
                return Some("invalid");
            }
        };
        let live = match Live::build(new.clone(), output.clone()) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%path, error = %e, "configuration reload: the new file is invalid (parse.multiline); the running configuration stays");
                return Some("invalid");
            }
        };
        self.slot.offer(live);
        self.output.send_replace(output.clone());
        self.config.send_replace(new.clone());
        if let Some(t) = self.setup.take() {
            t.abort();
        }
        if new.elasticsearch.setup == SetupMode::Auto {
            // Templates for the new index names (or the same again: idempotent).
            let (first, _) = tokio::sync::oneshot::channel();
            self.setup = Some(tokio::spawn(bootstrap::keep_trying(
                output.service.clone(),
                new.clone(),
                first,
            )));
        }
        self.current = new;
        self.applied = Some(hash);
        tracing::info!(%path, trigger = ?trigger, "configuration reloaded: applied to what is read from now on");
        Some("applied")
    }
}

async fn recv_hup(hup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hup {
        Some(h) => h.recv().await,
        None => std::future::pending().await,
    }
}

fn hash_of(text: &str) -> u64 {
    // SipHash with fixed keys: the same text hashes the same for the whole run.
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The hash of the file's content now (taken when the agent starts, as its configuration).
pub(super) fn read_hash(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok().map(|t| hash_of(&t))
}

/// Watches the directory holding the configuration file (not the file: a ConfigMap swap
/// replaces the `..data` link next to it, and an editor replaces the file) on a thread of its
/// own; every change is one message on `changed` (merged while one waits).
fn watch_dir(
    path: &Path,
    changed: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))?;
    let mut watcher = match Watcher::new() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file notifications unavailable: the configuration reloads on SIGHUP only");
            return None;
        }
    };
    watcher.watch_dir(&dir);
    if !watcher.is_watched(&dir) {
        tracing::warn!(dir = %dir.display(), "cannot watch the configuration's directory: it reloads on SIGHUP only");
        return None;
    }
    let spawned = std::thread::Builder::new()
        .name("sluice-config-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut changes = Changes::default();
                watcher.wait(WATCH_TICK, &mut changes);
                if changes.rescan || changes.overflow || !changes.paths.is_empty() {
                    // Full: a reload is pending already and will read the latest file.
                    let _ = changed.try_send(());
                }
            }
        });
    match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the configuration watch: it reloads on SIGHUP only");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_hash() {
        assert_eq!(hash_of("a: 1\n"), hash_of("a: 1\n"));
        assert_ne!(hash_of("a: 1\n"), hash_of("a: 2\n"));
    }
}
