//! What `/healthz` (liveness) and `/readyz` (readiness) answer: shared state that the reader
//! thread, the checkpointer and the watchdog (`pipeline::watchdog`) write, and the rules that
//! turn it into a verdict with its reasons. Liveness fails only where a restart can help: the
//! reader thread is gone or stuck, the agent ships nothing although Elasticsearch is healthy,
//! or checkpoints cannot be written; never because Elasticsearch is down.
//! Holds no I/O; the clock is passed in, so the rules are unit-tested.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Checkpoint writes that must fail in a row (besides lasting the stall timeout) before
/// liveness fails: one blip never does.
pub const CHECKPOINT_FAILURES_IN_A_ROW: u32 = 3;

#[derive(Debug)]
pub struct Health {
    started: Instant,
    stall_timeout: Duration,
    /// Milliseconds after `started` at which the reader thread last went round its loop.
    reader_beat_ms: AtomicU64,
    reader_running: AtomicBool,
    reader_exit: Mutex<Option<String>>,
    /// Set by the watchdog while the agent ships nothing although it should.
    stalled: Mutex<Option<String>>,
    checkpoint: Mutex<CheckpointFailures>,
    first_scan_done: AtomicBool,
    setup_done: AtomicBool,
    stopping: AtomicBool,
}

#[derive(Debug, Default)]
struct CheckpointFailures {
    in_a_row: u32,
    since: Option<Instant>,
    last_error: String,
}

impl Health {
    pub fn new(stall_timeout: Duration) -> Health {
        Health {
            started: Instant::now(),
            stall_timeout,
            reader_beat_ms: AtomicU64::new(0),
            reader_running: AtomicBool::new(false),
            reader_exit: Mutex::new(None),
            stalled: Mutex::new(None),
            checkpoint: Mutex::new(CheckpointFailures::default()),
            first_scan_done: AtomicBool::new(false),
            setup_done: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// The reader thread goes round its loop (or waits for room for a batch): it is not stuck.
    pub fn reader_beat(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.started).as_millis() as u64;
        self.reader_beat_ms.store(ms, Ordering::Relaxed);
        self.reader_running.store(true, Ordering::Relaxed);
    }

    /// The reader thread ended while the agent was not stopping.
    pub fn reader_exited(&self, why: String) {
        *lock(&self.reader_exit) = Some(why);
    }

    pub fn first_scan_done(&self) {
        self.first_scan_done.store(true, Ordering::Relaxed);
    }

    /// The first attempt to install the index templates is over (or setup is off).
    pub fn setup_done(&self) {
        self.setup_done.store(true, Ordering::Relaxed);
    }

    /// Shutdown began: not ready any more (a stopping reader is not a dead one).
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn set_stalled(&self, why: Option<String>) {
        *lock(&self.stalled) = why;
    }

    pub fn checkpoint_written(&self) {
        *lock(&self.checkpoint) = CheckpointFailures::default();
    }

    pub fn checkpoint_failed(&self, now: Instant, error: String) {
        let mut c = lock(&self.checkpoint);
        c.in_a_row += 1;
        c.since.get_or_insert(now);
        c.last_error = error;
    }

    /// `Ok` when live; else every reason, one a line.
    pub fn live(&self, now: Instant) -> Result<(), String> {
        let mut why = Vec::new();
        if let Some(e) = lock(&self.reader_exit).as_ref() {
            why.push(format!("the reader thread is gone: {e}"));
        } else if self.reader_running.load(Ordering::Relaxed)
            && !self.stopping.load(Ordering::Relaxed)
        {
            let beat =
                self.started + Duration::from_millis(self.reader_beat_ms.load(Ordering::Relaxed));
            let quiet = now.saturating_duration_since(beat);
            if quiet > self.stall_timeout {
                why.push(format!(
                    "the reader thread has been stuck for {}s (telemetry.stall_timeout {}s)",
                    quiet.as_secs(),
                    self.stall_timeout.as_secs()
                ));
            }
        }
        if let Some(s) = lock(&self.stalled).as_ref() {
            why.push(s.clone());
        }
        let c = lock(&self.checkpoint);
        if let Some(since) = c.since {
            let failing = now.saturating_duration_since(since);
            if c.in_a_row >= CHECKPOINT_FAILURES_IN_A_ROW && failing >= self.stall_timeout {
                why.push(format!(
                    "checkpoints cannot be written: {} failures in a row over {}s; last: {}",
                    c.in_a_row,
                    failing.as_secs(),
                    c.last_error
                ));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("\n"))
        }
    }

    /// `Ok` once the first scan and the first setup attempt are done, until shutdown.
    pub fn ready(&self) -> Result<(), String> {
        let mut why = Vec::new();
        if self.stopping.load(Ordering::Relaxed) {
            why.push("shutting down".to_string());
        }
        if !self.setup_done.load(Ordering::Relaxed) {
            why.push("the first index template setup attempt is under way".to_string());
        }
        if !self.first_scan_done.load(Ordering::Relaxed) {
            why.push("the first scan of the log files is under way".to_string());
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("\n"))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_after_the_first_scan_and_setup_attempt_until_shutdown() {
        let h = Health::new(Duration::from_secs(5));
        let e = h.ready().unwrap_err();
        assert!(e.contains("setup") && e.contains("scan"), "{e}");
        h.setup_done();
        assert!(h.ready().unwrap_err().contains("scan"));
        h.first_scan_done();
        assert_eq!(h.ready(), Ok(()));
        h.stopping();
        assert!(h.ready().unwrap_err().contains("shutting down"));
    }

    #[test]
    fn a_stuck_or_gone_reader_fails_liveness() {
        let h = Health::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(
            h.live(t0 + Duration::from_secs(60)),
            Ok(()),
            "not started yet"
        );
        h.reader_beat(t0);
        assert_eq!(h.live(t0 + Duration::from_secs(4)), Ok(()));
        let e = h.live(t0 + Duration::from_secs(7)).unwrap_err();
        assert!(e.contains("stuck"), "{e}");
        h.stopping();
        assert_eq!(
            h.live(t0 + Duration::from_secs(7)),
            Ok(()),
            "stopping is not stuck"
        );
        h.reader_exited("it panicked: boom".into());
        assert!(h.live(t0).unwrap_err().contains("boom"));
    }

    #[test]
    fn checkpoint_failures_count_only_when_persistent_and_clear_on_success() {
        let h = Health::new(Duration::from_secs(5));
        let t0 = Instant::now();
        h.checkpoint_failed(t0, "EISDIR".into());
        assert_eq!(h.live(t0 + Duration::from_secs(60)), Ok(()), "one blip");
        h.checkpoint_failed(t0 + Duration::from_secs(1), "EISDIR".into());
        h.checkpoint_failed(t0 + Duration::from_secs(2), "EISDIR".into());
        assert_eq!(
            h.live(t0 + Duration::from_secs(3)),
            Ok(()),
            "not for long yet"
        );
        let e = h.live(t0 + Duration::from_secs(6)).unwrap_err();
        assert!(
            e.contains("checkpoints cannot be written") && e.contains("EISDIR"),
            "{e}"
        );
        h.checkpoint_written();
        assert_eq!(h.live(t0 + Duration::from_secs(6)), Ok(()));
    }

    #[test]
    fn a_stall_is_reported_until_cleared() {
        let h = Health::new(Duration::from_secs(5));
        h.set_stalled(Some("no batch acknowledged".into()));
        assert!(h.live(Instant::now()).unwrap_err().contains("no batch"));
        h.set_stalled(None);
        assert_eq!(h.live(Instant::now()), Ok(()));
    }
}
