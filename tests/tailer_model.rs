//! Model test of the tailer and delivery (no Elasticsearch needed): random sequences of writes,
//! kubelet-style rotations, copytruncate, deletions and agent restarts run against the real
//! reader; a consumer applies Elasticsearch's `create` semantics (first write of an `_id` wins,
//! a repeat is a duplicate that changes nothing) and acknowledges every batch.
//!
//! The model: every line written is stored exactly once, under exactly one `_id`. Before each
//! rotation, truncation and deletion the test waits until everything written has been
//! delivered, because a file replaced before the agent ever saw it is lost by any tailer. Two
//! operations leave a backlog on purpose: rotations compressed while the agent is down (the
//! checkpoint owes bytes of a `.gz`) and a line whose `P` and `F` chunks a rotation separates.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sluice::config::Config;
use sluice::delivery::Delivery;
use sluice::pipeline::reader::Reader;
use sluice::sink::elasticsearch::{Batch, BatchPool};
use sluice::telemetry::Metrics;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
enum Op {
    Write {
        file: usize,
        lines: usize,
        split: bool,
    },
    Rotate {
        file: usize,
    },
    CopyTruncate {
        file: usize,
    },
    Delete {
        file: usize,
    },
    /// SIGTERM-like: everything sealed is acknowledged before the agent stops.
    Restart,
    /// SIGKILL-like: batches in flight are stored by Elasticsearch or not, but never acknowledged.
    Crash,
    /// A backlog is left, the agent stops (or crashes), and while it is down the file is
    /// rotated twice and the kubelet compresses all rotations but the newest: the checkpoint
    /// owes bytes of a file that exists only as `.gz`.
    CompressWhileDown {
        file: usize,
        crash: bool,
    },
    /// A line written as a `P` chunk at the end of the live file and its `F` chunk at the head
    /// of the next one: a rotation falls between them.
    SplitAcrossRotation {
        file: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 1..40usize, any::<bool>()).prop_map(|(file, lines, split)| Op::Write { file, lines, split }),
        2 => (0..3usize).prop_map(|file| Op::Rotate { file }),
        1 => (0..3usize).prop_map(|file| Op::CopyTruncate { file }),
        1 => (0..3usize).prop_map(|file| Op::Delete { file }),
        1 => Just(Op::Restart),
        2 => Just(Op::Crash),
        1 => (0..3usize, any::<bool>()).prop_map(|(file, crash)| Op::CompressWhileDown { file, crash }),
        1 => (0..3usize).prop_map(|file| Op::SplitAcrossRotation { file }),
    ]
}

/// What Elasticsearch would hold: `_id` → message, plus how many creates were duplicates.
#[derive(Default)]
struct Store {
    docs: HashMap<String, String>,
    duplicates: u64,
}

struct Agent {
    stop: Arc<AtomicBool>,
    crashed: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    consumer: JoinHandle<()>,
    delivery: Arc<Mutex<Delivery>>,
}

struct World {
    root: tempfile::TempDir,
    cfg: Arc<Config>,
    store: Arc<Mutex<Store>>,
    /// Per file slot: generation (a new pod after a deletion) and rotation counter.
    generation: [usize; 3],
    rotations: usize,
    written: Vec<String>,
    next_line: u64,
}

impl World {
    fn new() -> World {
        let root = tempfile::tempdir().unwrap();
        let yaml = format!(
            concat!(
                "node_name: model\nstate_dir: {root}/state\n",
                "input:\n  root: {root}\n  poll_interval: 50ms\n  scan_interval: 300ms\n",
                "elasticsearch:\n  endpoints: [\"http://127.0.0.1:9\"]\n  batch:\n    timeout: 20ms\n    max_events: 64\n",
                "telemetry:\n  listen: off\n"
            ),
            root = root.path().display()
        );
        let cfg = Arc::new(Config::from_yaml(&yaml, &|_| None).unwrap());
        let mut w = World {
            root,
            cfg,
            store: Arc::default(),
            generation: [0; 3],
            rotations: 0,
            written: Vec::new(),
            next_line: 0,
        };
        for f in 0..3 {
            w.create_pod(f);
        }
        w
    }

    fn pod_dir(&self, f: usize) -> PathBuf {
        self.root.path().join(format!(
            "var/log/pods/ns_p{f}-g{}_uid{f}/c",
            self.generation[f]
        ))
    }

    fn link(&self, f: usize) -> PathBuf {
        self.root.path().join(format!(
            "var/log/containers/p{f}-g{}_ns_c-{}.log",
            self.generation[f],
            "ab".repeat(32)
        ))
    }

    fn create_pod(&mut self, f: usize) {
        let dir = self.pod_dir(f);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("0.log"), b"").unwrap();
        fs::create_dir_all(self.root.path().join("var/log/containers")).unwrap();
        std::os::unix::fs::symlink(dir.join("0.log"), self.link(f)).unwrap();
    }

    fn start(&self, checkpoint: Option<Vec<sluice::tail::CheckpointEntry>>) -> Agent {
        let delivery = Arc::new(Mutex::new(Delivery::default()));
        let (tx, mut rx) = mpsc::channel::<Batch>(1);
        // Settled batches are recycled as the sink does, so reused bodies are part of the model.
        let pool = Arc::new(BatchPool::new(self.cfg.elasticsearch.batch_max_bytes, 2));
        let stop = Arc::new(AtomicBool::new(false));
        let crashed = Arc::new(AtomicBool::new(false));
        let reader = Reader::new(
            self.cfg.clone(),
            checkpoint,
            delivery.clone(),
            Arc::new(Metrics::new()),
            tx,
            pool.clone(),
            stop.clone(),
        )
        .unwrap();
        let reader = std::thread::spawn(move || reader.run());
        let store = self.store.clone();
        let d = delivery.clone();
        let dead = crashed.clone();
        let consumer = std::thread::spawn(move || {
            let mut n = 0u64;
            while let Some(batch) = rx.blocking_recv() {
                pool.taken();
                n += 1;
                let crashed = dead.load(Ordering::Relaxed);
                // After a crash half of the in-flight batches reached Elasticsearch, none was acknowledged.
                if crashed && n.is_multiple_of(2) {
                    continue;
                }
                // The size limit holds: reading stops at the line that fills a batch. Idle
                // flushes may add one event per open file on top.
                assert!(
                    batch.items.len() <= 64 + 16,
                    "a batch of {} events, max_events is 64",
                    batch.items.len()
                );
                let mut s = store.lock().unwrap();
                for i in 0..batch.items.len() {
                    let item = batch.items[i];
                    let action: serde_json::Value =
                        serde_json::from_slice(&batch.body[item.start as usize..item.doc as usize])
                            .unwrap();
                    let doc: serde_json::Value = serde_json::from_slice(batch.item_doc(i)).unwrap();
                    let id = action["create"]["_id"].as_str().unwrap().to_string();
                    let msg = doc["message"].as_str().unwrap().to_string();
                    if let std::collections::hash_map::Entry::Vacant(e) = s.docs.entry(id) {
                        e.insert(msg);
                    } else {
                        s.duplicates += 1;
                    }
                }
                drop(s);
                if !crashed {
                    d.lock().unwrap().acked(batch.seq, &batch.ranges);
                    pool.give(batch);
                }
            }
        });
        Agent {
            stop,
            crashed,
            reader,
            consumer,
            delivery,
        }
    }

    fn stop(agent: Agent, crash: bool) -> Vec<sluice::tail::CheckpointEntry> {
        if crash {
            agent.crashed.store(true, Ordering::Relaxed);
            // The agent goes on reading and sending for a moment; nothing is acknowledged.
            std::thread::sleep(Duration::from_millis(60));
        }
        agent.stop.store(true, Ordering::Relaxed);
        agent.reader.join().unwrap();
        agent.consumer.join().unwrap();
        let cp = agent.delivery.lock().unwrap().checkpoint();
        cp.files
    }

    fn record(ts_ms: u64, stream: &str, tag: &str, msg: &str) -> String {
        format!(
            "2026-11-24T10:{:02}:{:02}.{:03}000000Z {stream} {tag} {msg}\n",
            (ts_ms / 60_000) % 60,
            (ts_ms / 1000) % 60,
            ts_ms % 1000
        )
    }

    fn write(&mut self, f: usize, lines: usize, split: bool) {
        let path = self.pod_dir(f).join("0.log");
        let mut out = String::new();
        for _ in 0..lines {
            let n = self.next_line;
            self.next_line += 1;
            let msg = format!("f{f} g{} line {n}", self.generation[f]);
            if split {
                let (a, b) = msg.split_at(4);
                out.push_str(&Self::record(n, "stdout", "P", a));
                out.push_str(&Self::record(n, "stdout", "F", b));
            } else {
                out.push_str(&Self::record(n, "stdout", "F", &msg));
            }
            self.written.push(msg);
        }
        OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(out.as_bytes())
            .unwrap();
    }

    /// Waits until everything written is stored.
    fn sync(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = self.store.lock().unwrap().docs.len();
            if n >= self.written.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stuck: {n} of {} lines stored",
                self.written.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rotate(&mut self, f: usize) {
        self.rotations += 1;
        let dir = self.pod_dir(f);
        fs::rename(
            dir.join("0.log"),
            dir.join(format!("0.log.2026112410{:04}", self.rotations)),
        )
        .unwrap();
        fs::write(dir.join("0.log"), b"").unwrap();
    }

    /// The kubelet's compression: every rotated file of `f` but the newest becomes `.gz`.
    fn compress_all_but_newest(&mut self, f: usize) {
        let dir = self.pod_dir(f);
        let mut rotated: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.starts_with("0.log.2026") && !n.ends_with(".gz")
            })
            .collect();
        rotated.sort();
        rotated.pop();
        for r in rotated {
            let raw = fs::read(&r).unwrap();
            let gz = PathBuf::from(format!("{}.gz", r.display()));
            let mut enc = flate2::write::GzEncoder::new(
                fs::File::create(&gz).unwrap(),
                flate2::Compression::fast(),
            );
            enc.write_all(&raw).unwrap();
            enc.finish().unwrap();
            fs::remove_file(&r).unwrap();
        }
    }

    /// Appends one record (no line of the model by itself).
    fn append(&self, f: usize, record: &str) {
        OpenOptions::new()
            .append(true)
            .open(self.pod_dir(f).join("0.log"))
            .unwrap()
            .write_all(record.as_bytes())
            .unwrap();
    }

    /// A `P` chunk ends the live file, the rotation comes, the `F` chunk begins the new file.
    fn split_across_rotation(&mut self, f: usize) {
        let n = self.next_line;
        self.next_line += 1;
        let msg = format!("f{f} g{} split line {n}", self.generation[f]);
        let (a, b) = msg.split_at(6);
        self.append(f, &Self::record(n, "stdout", "P", a));
        self.rotate(f);
        self.append(f, &Self::record(n, "stdout", "F", b));
        self.written.push(msg);
    }

    fn copytruncate(&mut self, f: usize) {
        self.rotations += 1;
        let dir = self.pod_dir(f);
        fs::copy(
            dir.join("0.log"),
            dir.join(format!("0.log.copy{}", self.rotations)),
        )
        .unwrap();
        OpenOptions::new()
            .write(true)
            .open(dir.join("0.log"))
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn delete(&mut self, f: usize) {
        fs::remove_file(self.link(f)).unwrap();
        fs::remove_dir_all(self.pod_dir(f).parent().unwrap()).unwrap();
        self.generation[f] += 1;
        self.create_pod(f);
    }
}

fn run_model(ops: Vec<Op>) {
    // `RUST_LOG=sluice=debug` shows the reader's decisions when a sequence fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut world = World::new();
    let mut agent = world.start(None);
    for op in ops {
        match op {
            Op::Write { file, lines, split } => world.write(file, lines, split),
            Op::Rotate { file } => {
                world.sync();
                world.rotate(file);
            }
            Op::CopyTruncate { file } => {
                world.sync();
                world.copytruncate(file);
            }
            Op::Delete { file } => {
                world.sync();
                world.delete(file);
            }
            Op::Restart => {
                let cp = World::stop(agent, false);
                agent = world.start(Some(cp));
            }
            Op::Crash => {
                let cp = World::stop(agent, true);
                agent = world.start(Some(cp));
            }
            Op::CompressWhileDown { file, crash } => {
                // The agent must know the file (its first line read) for the checkpoint to
                // owe anything of it: a file never seen is lost by any tailer.
                world.write(file, 1, false);
                world.sync();
                world.write(file, 12, false);
                let cp = World::stop(agent, crash);
                world.rotate(file);
                world.write(file, 4, false);
                world.rotate(file);
                world.compress_all_but_newest(file);
                world.write(file, 3, false);
                agent = world.start(Some(cp));
            }
            Op::SplitAcrossRotation { file } => {
                world.sync();
                world.split_across_rotation(file);
            }
        }
    }
    world.sync();
    world.settle(&agent);
    // Give a wrong re-read the chance to show before judging.
    std::thread::sleep(Duration::from_millis(300));
    let cp = World::stop(agent, false);

    let store = world.store.lock().unwrap();
    let mut stored: HashMap<&str, usize> = HashMap::new();
    for m in store.docs.values() {
        *stored.entry(m.as_str()).or_default() += 1;
    }
    for m in &world.written {
        assert_eq!(
            stored.get(m.as_str()),
            Some(&1),
            "line `{m}` stored {:?} times",
            stored.get(m.as_str())
        );
    }
    let extra: Vec<&String> = store
        .docs
        .values()
        .filter(|m| !world.written.contains(m))
        .collect();
    assert!(
        extra.is_empty(),
        "documents that were never written: {extra:?}"
    );
    // Every live file is committed up to its end (done entries are rotated files kept in mind).
    if let Some(e) = world.not_committed(&cp) {
        panic!("{e}; the checkpoint: {cp:#?}");
    }
}

impl World {
    /// The first live file (a pod's `0.log` holding data) the checkpoint does not hold
    /// committed to its end, if any.
    fn not_committed(&self, cp: &[sluice::tail::CheckpointEntry]) -> Option<String> {
        for f in 0..3 {
            let path = self.pod_dir(f).join("0.log");
            let meta = fs::metadata(&path).unwrap();
            if meta.len() == 0 {
                continue;
            }
            let id = sluice::tail::FileId::of(&meta);
            // After a copytruncate a done entry of the old content shares the inode.
            match cp.iter().find(|e| e.id == id && !e.done) {
                Some(e) if e.offset == meta.len() => {}
                Some(e) => {
                    return Some(format!(
                        "{} committed to {} of {} bytes",
                        path.display(),
                        e.offset,
                        meta.len()
                    ));
                }
                None => return Some(format!("{} not in the checkpoint", path.display())),
            }
        }
        None
    }

    /// Waits (bounded) until every live file is committed to its end: lines stored by an
    /// agent that then crashed are read again and acknowledged by the next one only after the
    /// rotated files ahead of them are drained (`ROTATED_GRACE` at their end).
    fn settle(&self, agent: &Agent) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let cp = agent.delivery.lock().unwrap().checkpoint();
            if self.not_committed(&cp.files).is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether one file is split across a rename rotation (the kubelet's, for CRI files) and also
/// copytruncated (logrotate's, for plain files): no node rotates one file both ways. The model
/// found that the two together can tear the split line: a copy made while the live file still
/// waits to finish its rotated predecessor's line holds the continuation, and the copy is not
/// the successor the predecessor hands over to (known limit, ARCHITECTURE.md).
fn mixes_rotation_styles(ops: &[Op]) -> bool {
    (0..3).any(|f| {
        ops.iter()
            .any(|o| matches!(o, Op::SplitAcrossRotation { file } if *file == f))
            && ops
                .iter()
                .any(|o| matches!(o, Op::CopyTruncate { file } if *file == f))
    })
}

proptest! {
    // 12 cases in CI; `PROPTEST_CASES=200` for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12),
        max_shrink_iters: 20,
        .. ProptestConfig::default()
    })]
    #[test]
    fn every_line_is_stored_exactly_once(ops in proptest::collection::vec(op(), 1..16).prop_filter(
        "no file is both split across a kubelet rotation and copytruncated",
        |ops| !mixes_rotation_styles(ops),
    )) {
        run_model(ops);
    }
}

#[test]
fn rotation_then_restart_then_copytruncate() {
    run_model(vec![
        Op::Write {
            file: 0,
            lines: 30,
            split: true,
        },
        Op::Rotate { file: 0 },
        Op::Write {
            file: 0,
            lines: 10,
            split: false,
        },
        Op::Restart,
        Op::Write {
            file: 0,
            lines: 30,
            split: true,
        },
        Op::Crash,
        Op::Write {
            file: 0,
            lines: 30,
            split: false,
        },
        Op::Crash,
        Op::Write {
            file: 0,
            lines: 5,
            split: false,
        },
        Op::CopyTruncate { file: 0 },
        Op::Write {
            file: 0,
            lines: 7,
            split: true,
        },
        Op::Delete { file: 1 },
        Op::Write {
            file: 1,
            lines: 3,
            split: false,
        },
    ]);
}

#[test]
fn compressed_while_down_then_split_across_rotation() {
    run_model(vec![
        Op::Write {
            file: 0,
            lines: 20,
            split: true,
        },
        Op::CompressWhileDown {
            file: 0,
            crash: false,
        },
        Op::CompressWhileDown {
            file: 1,
            crash: true,
        },
        Op::SplitAcrossRotation { file: 0 },
        Op::Write {
            file: 0,
            lines: 5,
            split: false,
        },
        Op::Crash,
        Op::SplitAcrossRotation { file: 2 },
        Op::CompressWhileDown {
            file: 2,
            crash: true,
        },
    ]);
}

#[test]
fn split_across_rotation_first() {
    run_model(vec![Op::SplitAcrossRotation { file: 2 }]);
}

#[test]
fn compressed_while_down_rotation_elsewhere_then_crash() {
    run_model(vec![
        Op::CompressWhileDown {
            file: 0,
            crash: false,
        },
        Op::Rotate { file: 1 },
        Op::Write {
            file: 0,
            lines: 28,
            split: true,
        },
        Op::Crash,
    ]);
}

/// Right after a start the live files are open but empty (no first line yet); a `P` chunk and
/// the rotation then arrive before the agent reads: the scan that sees the rotation must read
/// the rotated file's head to link it to its successor (found by the random model).
#[test]
fn split_across_rotation_right_after_a_restart() {
    for _ in 0..3 {
        run_model(vec![
            Op::SplitAcrossRotation { file: 1 },
            Op::Restart,
            Op::SplitAcrossRotation { file: 2 },
            Op::Write {
                file: 2,
                lines: 24,
                split: true,
            },
        ]);
    }
}

/// A copytruncate of a file whose only record continued a line from its rotated predecessor.
#[test]
fn split_across_rotation_then_copytruncate() {
    run_model(vec![
        Op::SplitAcrossRotation { file: 0 },
        Op::CopyTruncate { file: 0 },
        Op::Write {
            file: 0,
            lines: 5,
            split: true,
        },
    ]);
}
