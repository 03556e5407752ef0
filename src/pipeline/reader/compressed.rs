//! Rotated files the kubelet compressed while the agent was down, whose bytes the checkpoint
//! still owes: found next to where the file was (a `.gz` of the same base name whose
//! decompressed first line is the file's fingerprint), decompressed with bounded memory into an
//! unlinked file under the state directory, and read from the committed offset like any rotated
//! file, so every event gets the `_id` the uncompressed file would have given it. A `.gz` the
//! checkpoint owes nothing is never read; nor is any `.gz` on a first start.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::read::MultiGzDecoder;

use super::Reader;
use super::rotation::base_name;
use crate::delivery::FileKey;
use crate::tail::{CheckpointEntry, FileId, Fingerprint, IdScheme, TailedFile};

/// At most this many decompressed files exist (each pins its size on the state volume).
const OPEN_AT_ONCE: usize = 4;
/// A `.gz` that decompresses to more than this is cut there (the kubelet rotates at
/// `containerLogMaxSize`, 10 MiB by default): a bound on the state volume, not a limit hit.
const MAX_DECOMPRESSED: u64 = 4 << 30;
/// Where decompressed copies live (unlinked as soon as they are open).
const DIR: &str = "decompressed";

/// Compressed files to read, oldest first, each registered with delivery under its key.
#[derive(Default)]
pub(super) struct Owed {
    queue: VecDeque<Pending>,
}

struct Pending {
    key: FileKey,
    gz: PathBuf,
    /// As registered: the `.gz`'s identity, the fingerprint, the path the file was known by,
    /// the committed offset.
    entry: CheckpointEntry,
}

/// Removes decompressed copies a killed agent left behind.
pub(super) fn clear_leftovers(state_dir: &Path) {
    let _ = std::fs::remove_dir_all(state_dir.join(DIR));
}

impl Reader {
    /// After the first scan: checkpoint entries that still owe bytes and whose file was found
    /// nowhere (or whose inode now holds another file). For each, the `.gz` holding the file,
    /// and the compressed rotations newer than it that were never read, are queued and
    /// registered with delivery at once, so a checkpoint written before they are read keeps
    /// their offsets.
    pub(super) fn find_compressed(&mut self) {
        if self.first_start {
            return;
        }
        let mut owed: Vec<CheckpointEntry> =
            self.resume.values().filter(|e| !e.done).cloned().collect();
        owed.extend(
            std::mem::take(&mut self.displaced)
                .into_iter()
                .filter(|e| !e.done),
        );
        // Compressed files read to their end before (the checkpoint keeps them while they exist).
        let read: HashSet<(FileId, String)> = self
            .resume
            .values()
            .filter(|e| e.done)
            .map(|e| (e.id, e.fingerprint.clone()))
            .collect();
        let mut queued: HashSet<FileId> = HashSet::new();
        for e in owed {
            let Some(fp) = e.fingerprint() else { continue };
            let siblings = compressed_siblings(&e.real_path);
            let Some(at) = siblings.iter().position(|s| s.fingerprint == fp) else {
                continue;
            };
            self.resume.remove(&e.id);
            for (i, s) in siblings.into_iter().enumerate().skip(at) {
                let owes = i == at;
                if queued.contains(&s.id)
                    || (!owes && read.contains(&(s.id, s.fingerprint.to_hex())))
                {
                    continue;
                }
                queued.insert(s.id);
                self.resume.remove(&s.id);
                let entry = CheckpointEntry {
                    id: s.id,
                    fingerprint: s.fingerprint.to_hex(),
                    path: e.path.clone(),
                    real_path: s.path.clone(),
                    offset: if owes { e.offset } else { 0 },
                    done: false,
                    // The owed file's index; a sibling never read is routed afresh.
                    route: if owes { e.route.clone() } else { None },
                    ids: if owes { e.ids } else { IdScheme::CURRENT },
                };
                let key = self.next_key;
                self.next_key += 1;
                let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
                d.track(
                    key,
                    entry.id,
                    s.fingerprint,
                    entry.path.clone(),
                    entry.real_path.clone(),
                    entry.offset,
                );
                d.set_ids(key, entry.ids);
                drop(d);
                tracing::info!(
                    path = %s.path.display(),
                    offset = entry.offset,
                    "a rotated file was compressed while the agent was down; reading the rest of it from its .gz"
                );
                self.compressed.queue.push_back(Pending {
                    key,
                    gz: s.path,
                    entry,
                });
            }
        }
    }

    /// Opens queued compressed files while fewer than `OPEN_AT_ONCE` are open and the bound on
    /// rotated files leaves room.
    pub(super) fn open_compressed(&mut self) {
        while !self.compressed.queue.is_empty() {
            let rotated_open = self
                .files
                .values()
                .filter(|f| f.rotated_at.is_some())
                .count();
            let decompressed_open = self
                .files
                .values()
                .filter(|f| f.tailed.real_path.extension().is_some_and(|x| x == "gz"))
                .count();
            if decompressed_open >= OPEN_AT_ONCE || rotated_open >= self.cfg.input.max_rotated_files
            {
                return;
            }
            let Some(p) = self.compressed.queue.pop_front() else {
                return;
            };
            match decompress(&p.gz, &self.cfg.state_dir, p.entry.id) {
                Ok(mut tailed) => {
                    tailed.id = p.entry.id;
                    tailed.path = p.entry.path.clone();
                    tailed.real_path = p.gz.clone();
                    let size = tailed.size().unwrap_or(0);
                    if tailed
                        .fingerprint
                        .is_none_or(|f| Some(f) != p.entry.fingerprint())
                    {
                        tracing::warn!(path = %p.gz.display(), "compressed file changed before it was read; skipping it");
                        self.give_up(p.key);
                        continue;
                    }
                    self.metrics.compressed_files_read.inc();
                    let key = self.insert_open(p.key, tailed, p.entry.offset, size);
                    self.keep(key, p.entry.route.as_deref(), p.entry.ids);
                    if let Some(of) = self.files.get_mut(&key) {
                        of.rotated_at = Some(Instant::now());
                        self.attention.insert(key);
                    }
                }
                Err(e) => {
                    self.metrics.compressed_files_failed.inc();
                    tracing::error!(path = %p.gz.display(), error = %e, "cannot decompress a rotated file the checkpoint still owes bytes of; its unread lines are lost");
                    self.give_up(p.key);
                }
            }
        }
    }

    /// A queued file that cannot be read: released in delivery like a file read to its end.
    fn give_up(&mut self, key: FileKey) {
        let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        d.retire(key);
        d.forget(key);
    }
}

struct Sibling {
    path: PathBuf,
    id: FileId,
    fingerprint: Fingerprint,
}

/// The `.gz` rotations next to `real_path` with its base name (`0.log.<timestamp>.gz`, docker's
/// `<id>-json.log.<n>.gz`), oldest first (by modification time: each is written when it is
/// compressed, in rotation order; docker's numbers count the other way), with their
/// decompressed fingerprints.
fn compressed_siblings(real_path: &Path) -> Vec<Sibling> {
    let (Some(dir), Some(name)) = (
        real_path.parent(),
        real_path.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let base = base_name(name);
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, String, PathBuf, std::fs::Metadata)> = listing
        .flatten()
        .filter_map(|d| {
            let n = d.file_name().into_string().ok()?;
            let rotated = n.len() > base.len() + 4
                && n.starts_with(base)
                && n.as_bytes()[base.len()] == b'.'
                && n.ends_with(".gz");
            if !rotated {
                return None;
            }
            let meta = std::fs::metadata(d.path()).ok()?;
            Some((meta.modified().ok()?, n, d.path(), meta))
        })
        .collect();
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    found
        .into_iter()
        .filter_map(|(_, _, path, meta)| {
            let fingerprint = gz_fingerprint(&path).ok()??;
            Some(Sibling {
                id: FileId::of(&meta),
                path,
                fingerprint,
            })
        })
        .collect()
}

/// The fingerprint of a `.gz`'s decompressed head (only the head is decompressed).
fn gz_fingerprint(path: &Path) -> io::Result<Option<Fingerprint>> {
    let mut head = Vec::with_capacity(crate::tail::identity::FINGERPRINT_BYTES);
    MultiGzDecoder::new(BufReader::new(File::open(path)?))
        .take(crate::tail::identity::FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(Fingerprint::of_head(&head))
}

/// Decompresses `gz` into a file under `state_dir`, opens it and unlinks it: the open
/// descriptor is all that is left, and the space is freed when the file is closed (or the agent
/// dies). Streamed through a fixed buffer, so memory stays bounded whatever the size.
fn decompress(gz: &Path, state_dir: &Path, id: FileId) -> io::Result<TailedFile> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join(format!("{}-{}", id.dev, id.inode));
    let result = (|| {
        let mut out = File::create(&copy)?;
        let mut input = MultiGzDecoder::new(BufReader::new(File::open(gz)?)).take(MAX_DECOMPRESSED);
        let written = io::copy(&mut input, &mut out);
        out.flush()?;
        if let Err(e) = written {
            // A damaged stream: what came before the damage is still read.
            tracing::warn!(path = %gz.display(), error = %e, "compressed file is damaged; reading what decompressed");
        }
        TailedFile::open(copy.clone(), copy.clone(), 0)
    })();
    let _ = std::fs::remove_file(&copy);
    result
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(path: &Path, text: &[u8]) {
        let mut enc =
            flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
        enc.write_all(text).unwrap();
        enc.finish().unwrap();
    }

    #[test]
    fn siblings_are_found_by_base_name_with_their_decompressed_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("0.log");
        std::fs::write(&live, b"new\n").unwrap();
        gz(
            &dir.path().join("0.log.20261124-100000.gz"),
            b"first line\nmore\n",
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        gz(
            &dir.path().join("0.log.20261124-110000.gz"),
            b"second file\n",
        );
        gz(
            &dir.path().join("1.log.20261124-110000.gz"),
            b"another container\n",
        );
        std::fs::write(dir.path().join("0.log.20261124-120000"), b"plain\n").unwrap();
        let found = compressed_siblings(&live);
        let names: Vec<_> = found
            .iter()
            .map(|s| s.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["0.log.20261124-100000.gz", "0.log.20261124-110000.gz"],
            "oldest first, only this base, only .gz"
        );
        assert_eq!(
            Some(found[0].fingerprint),
            Fingerprint::of_head(b"first line\nmore\n")
        );
    }

    #[test]
    fn a_damaged_gz_is_read_up_to_the_damage_and_the_copy_is_unlinked() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..2000)
            .map(|i| format!("line {i:05} {}\n", "x".repeat(40)))
            .collect();
        let whole = dir.path().join("0.log.1.gz");
        gz(&whole, text.as_bytes());
        let id = FileId { dev: 1, inode: 2 };
        let t = decompress(&whole, dir.path(), id).unwrap();
        assert_eq!(t.size().unwrap(), text.len() as u64);
        assert_eq!(t.fingerprint, Fingerprint::of_head(text.as_bytes()));
        // Cut the compressed stream in half: what decompressed before the cut is kept.
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.path().join("0.log.2.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let t = decompress(&cut, dir.path(), id).unwrap();
        let size = t.size().unwrap();
        assert!(size > 0 && size < text.len() as u64, "{size}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join(DIR))
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "the copies are unlinked once open");
    }
}
