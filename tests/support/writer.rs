//! A log writer that behaves like a container runtime plus the kubelet: appends numbered CRI
//! lines at a steady rate (some split into partial records), rotates by renaming `0.log` to
//! `0.log.<timestamp>` and starting a new `0.log`, compresses older rotated files (`.gz`, which
//! the agent must not read) and deletes the oldest.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{PodLog, ts};

pub struct WriterConfig {
    /// Lines per second over all pods.
    pub rate: u64,
    /// Rotate each pod's file this often (None: never).
    pub rotate_every: Option<Duration>,
    /// Rotated files kept uncompressed (the kubelet keeps the newest one uncompressed).
    pub keep_uncompressed: usize,
    /// Compressed rotated files kept before deletion.
    pub keep_compressed: usize,
}

pub struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    handle: Option<JoinHandle<Vec<u64>>>,
}

impl Writer {
    pub fn start(pods: Vec<PodLog>, cfg: WriterConfig) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (s, w) = (stop.clone(), written.clone());
        let handle = std::thread::spawn(move || run(pods, cfg, s, w));
        Writer {
            stop,
            written,
            handle: Some(handle),
        }
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Stops writing; returns the number of lines written per pod (sequence numbers 0..n).
    pub fn stop(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// The message of line `seq` of pod `p` (unique, parseable back).
pub fn message(p: usize, seq: u64) -> String {
    format!(
        "pod={p} seq={seq} payload {}",
        "x".repeat((seq % 7) as usize * 20)
    )
}

/// Parses a message written by [`message`] back into (pod, seq).
pub fn parse_message(m: &str) -> Option<(usize, u64)> {
    let mut it = m.split(' ');
    let p = it.next()?.strip_prefix("pod=")?.parse().ok()?;
    let s = it.next()?.strip_prefix("seq=")?.parse().ok()?;
    Some((p, s))
}

fn run(
    pods: Vec<PodLog>,
    cfg: WriterConfig,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> Vec<u64> {
    let mut seq = vec![0u64; pods.len()];
    let mut rotated: Vec<Vec<PathBuf>> = vec![Vec::new(); pods.len()];
    let mut last_rotation = vec![Instant::now(); pods.len()];
    let mut rotations = 0u64;
    let started = Instant::now();
    let tick = Duration::from_millis(10);
    let mut total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * cfg.rate as f64) as u64;
        while total < due {
            let p = (total % pods.len() as u64) as usize;
            let pod = &pods[p];
            let n = seq[p];
            let msg = message(p, n);
            let mut bytes = Vec::new();
            if n % 10 == 7 {
                // A long line the runtime split: the halves may straddle a kill or a rotation.
                let (a, b) = msg.split_at(msg.len() / 2);
                bytes.extend_from_slice(&pod.record(&ts(n), "stdout", a, true));
                bytes.extend_from_slice(&pod.record(&ts(n), "stdout", b, false));
            } else {
                bytes.extend_from_slice(&pod.record(&ts(n), "stdout", &msg, false));
            }
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(&pod.path)
                .unwrap()
                .write_all(&bytes)
                .unwrap();
            seq[p] += 1;
            total += 1;
            written.store(total, Ordering::Relaxed);
        }
        if let Some(every) = cfg.rotate_every {
            for (p, pod) in pods.iter().enumerate() {
                if last_rotation[p].elapsed() < every {
                    continue;
                }
                last_rotation[p] = Instant::now();
                rotations += 1;
                let target = pod
                    .path
                    .with_file_name(format!("0.log.20261124-{:06}", rotations));
                fs::rename(&pod.path, &target).unwrap();
                File::create(&pod.path).unwrap();
                rotated[p].push(target);
                // Older rotated files: compress, then delete the oldest compressed ones.
                let n = rotated[p].len();
                if n > cfg.keep_uncompressed {
                    let old = rotated[p][n - 1 - cfg.keep_uncompressed].clone();
                    if old.exists() {
                        compress(&old);
                    }
                }
                if n > cfg.keep_uncompressed + cfg.keep_compressed {
                    let gone = rotated[p].remove(0);
                    let _ = fs::remove_file(gz(&gone));
                }
            }
        }
        std::thread::sleep(tick);
    }
    seq
}

fn gz(p: &std::path::Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

fn compress(p: &std::path::Path) {
    let data = fs::read(p).unwrap();
    let mut enc =
        flate2::write::GzEncoder::new(File::create(gz(p)).unwrap(), flate2::Compression::fast());
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
    fs::remove_file(p).unwrap();
}
