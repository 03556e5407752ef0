//! The checkpoint file: for every file, the offset up to which all events were acknowledged by
//! Elasticsearch. Written atomically (temp file, fsync, rename, fsync of the directory) in a
//! versioned JSON format.
//!
//! A missing checkpoint means a first start. A corrupt or unknown-version checkpoint is an error
//! that stops the agent, never a silent restart from the head (duplicates) or the tail (loss).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::identity::{FileId, Fingerprint, IdScheme};

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// File name inside the state directory.
pub const FILE_NAME: &str = "checkpoints.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "checkpoint {path} is corrupt ({reason}). sluice will not guess where to resume. To recover: \
         move the file aside (e.g. `mv {path} {path}.bad`); sluice then starts as on first start \
         (input.read_from), and documents already in Elasticsearch are not duplicated because \
         their ids repeat"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "checkpoint {path} has version {found}; this sluice reads version {VERSION} (downgrade? move the file aside to start over)"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// One file's committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    #[serde(flatten)]
    pub id: FileId,
    /// Hex of the [`Fingerprint`].
    pub fingerprint: String,
    /// The path the file was discovered under.
    pub path: PathBuf,
    /// Where the file really lives (symlinks resolved); rotated siblings are searched next to it.
    pub real_path: PathBuf,
    /// Every event that starts before this offset has been acknowledged.
    pub offset: u64,
    /// Read to its end and closed (a rotated file kept in mind while it is still on disk).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    /// With routing: the file's index pattern, resolved at its first rendering (its field
    /// references filled; `IndexPattern::resolved_text`). Kept so that after a restart the
    /// rest of the file, and a replay of what was not acknowledged, go to the same index,
    /// whatever the pod's labels say by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// How the file's document ids are made ([`IdScheme`]); an entry of an earlier version has
    /// none and keeps that version's ids.
    #[serde(default = "IdScheme::legacy")]
    pub ids: IdScheme,
}

impl CheckpointEntry {
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        Fingerprint::from_hex(&self.fingerprint)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub files: Vec<CheckpointEntry>,
}

impl Checkpoint {
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// Loads the checkpoint; `Ok(None)` when there is none (first start).
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let v: VersionOnly = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if v.version != VERSION {
            return Err(CheckpointError::Version {
                path: path.to_path_buf(),
                found: v.version,
            });
        }
        let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        for f in &cp.files {
            if f.fingerprint().is_none() {
                return Err(corrupt(format!(
                    "bad fingerprint `{}` for {}",
                    f.fingerprint,
                    f.path.display()
                )));
            }
        }
        Ok(Some(cp))
    }

    /// The JSON document, one file entry per line, streamed: with thousands of files the
    /// whole document is never held in memory (pretty-printed, 10,000 entries took 8 MB).
    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        write!(w, "{{\"version\":{},\"files\":[", self.version)?;
        for (i, entry) in self.files.iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut *w, entry)?;
        }
        w.write_all(b"\n]}\n")
    }

    /// Writes atomically: readers (and a crash at any moment) see the old or the new file whole.
    pub fn store(&self, path: &Path) -> Result<(), CheckpointError> {
        let err = |source| CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = path.with_extension("json.tmp");
        let f = File::create(&tmp).map_err(err)?;
        let mut w = io::BufWriter::with_capacity(64 << 10, f);
        self.write_to(&mut w).map_err(err)?;
        let f = w.into_inner().map_err(|e| err(e.into_error()))?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&tmp, path).map_err(err)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> CheckpointEntry {
        CheckpointEntry {
            id: FileId { dev: 1, inode: 2 },
            fingerprint: Fingerprint(7).to_hex(),
            path: "/var/log/containers/a.log".into(),
            real_path: "/var/log/pods/ns_a_uid/c/0.log".into(),
            offset,
            done: false,
            route: None,
            ids: IdScheme::CURRENT,
        }
    }

    #[test]
    fn written_as_one_entry_per_line_and_read_back() {
        let cp = Checkpoint {
            version: VERSION,
            files: vec![
                entry(1),
                CheckpointEntry {
                    route: Some("logs-shop-100%%-%Y.%m.%d".into()),
                    ids: IdScheme::Hash,
                    ..entry(2)
                },
                entry(3),
            ],
        };
        let mut out = Vec::new();
        cp.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.lines().nth(2).unwrap().contains("\"offset\":2"));
        // A route only where there is one; an entry without one reads back as `None`.
        assert_eq!(text.matches("\"route\"").count(), 1, "{text}");
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(back, cp);
        let empty = Checkpoint {
            version: VERSION,
            files: vec![],
        };
        let mut out = Vec::new();
        empty.write_to(&mut out).unwrap();
        assert_eq!(serde_json::from_slice::<Checkpoint>(&out).unwrap(), empty);
    }

    #[test]
    fn an_entry_of_an_earlier_version_keeps_the_hashed_ids() {
        let text = br#"{"version":1,"files":[
{"dev":1,"inode":2,"fingerprint":"0000000000000007","path":"/a.log","real_path":"/b.log","offset":9}
]}"#;
        let cp: Checkpoint = serde_json::from_slice(text).unwrap();
        assert_eq!(cp.files[0].ids, IdScheme::Hash);
        let mut out = Vec::new();
        cp.write_to(&mut out).unwrap();
        assert!(String::from_utf8_lossy(&out).contains(r#""ids":"hash""#));
        let mut out = Vec::new();
        Checkpoint {
            version: VERSION,
            files: vec![entry(1)],
        }
        .write_to(&mut out)
        .unwrap();
        assert!(String::from_utf8_lossy(&out).contains(r#""ids":"seed-offset""#));
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = Checkpoint::path_in(dir.path());
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let cp = Checkpoint {
            version: VERSION,
            files: vec![entry(42)],
        };
        cp.store(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn corrupt_checkpoint_is_an_error_with_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = Checkpoint::path_in(dir.path());
        fs::write(&path, b"{\"version\":1,\"files\":[{\"dev\":1").unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("mv "), "{err}");
    }

    #[test]
    fn unknown_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = Checkpoint::path_in(dir.path());
        fs::write(&path, b"{\"version\":99,\"files\":[]}").unwrap();
        assert!(matches!(
            Checkpoint::load(&path),
            Err(CheckpointError::Version { found: 99, .. })
        ));
    }
}
