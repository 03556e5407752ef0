//! File identity: `(device, inode)` plus a fingerprint of the file's first line.
//!
//! The inode alone is not enough: after a file is deleted the kernel reuses its inode for a new
//! file, and a copytruncate rotation keeps the inode while replacing the content. The fingerprint
//! (a hash of the first line, at most [`FINGERPRINT_BYTES`]) tells them apart. Container log lines
//! start with a nanosecond timestamp, so first lines are unique in practice.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// How the `_id`s of a file's documents are made from its id seed and each event's start offset
/// (`sink::elasticsearch::encode::document_id`). Kept in the file's checkpoint entry, so that a
/// file is read to its end, and replayed after a crash, under the ids its first documents got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdScheme {
    /// A 128-bit hash of seed and offset: what every version before `seed-offset` wrote. A
    /// checkpoint entry without `ids` was written by such a version.
    Hash,
    /// The seed, then the offset, big-endian: the ids of one file share their first characters,
    /// which Lucene's terms dictionary stores in a fraction of the bytes of random ids
    /// (BENCHMARKS.md, "Index size"). Every file first seen by this version.
    SeedOffset,
}

impl IdScheme {
    /// What a file this version starts reading gets.
    pub const CURRENT: IdScheme = IdScheme::SeedOffset;

    /// What a checkpoint entry without `ids` means.
    pub fn legacy() -> IdScheme {
        IdScheme::Hash
    }
}

/// How many leading bytes the fingerprint covers at most.
pub const FINGERPRINT_BYTES: usize = 256;

/// `(device, inode)` of an open file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FileId {
    pub dev: u64,
    pub inode: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            inode: meta.ino(),
        }
    }
}

/// Hash of a file's first line (or first [`FINGERPRINT_BYTES`] bytes when the line is longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// Reads the head of `file`. `Ok(None)` while the file is too short to tell (no complete
    /// first line yet and fewer than [`FINGERPRINT_BYTES`] bytes): nothing can be read from it
    /// yet anyway.
    pub fn read(file: &File) -> io::Result<Option<Fingerprint>> {
        let mut head = [0u8; FINGERPRINT_BYTES];
        let mut filled = 0;
        while filled < head.len() {
            match file.read_at(&mut head[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self::of_head(&head[..filled]))
    }

    /// Fingerprint of the given leading bytes of a file, if they are enough to tell.
    pub fn of_head(head: &[u8]) -> Option<Fingerprint> {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        let covered = match memchr::memchr(b'\n', head) {
            Some(nl) => &head[..=nl],
            None if head.len() == FINGERPRINT_BYTES => head,
            None => return None,
        };
        Some(Fingerprint(xxhash_rust::xxh3::xxh3_64(covered)))
    }

    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    pub fn from_hex(s: &str) -> Option<Fingerprint> {
        (s.len() == 16)
            .then(|| u64::from_str_radix(s, 16).ok().map(Fingerprint))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_head_without_newline_is_undecided() {
        assert_eq!(
            Fingerprint::of_head(b"2026-11-24T10:00:00Z stdout P par"),
            None
        );
    }

    #[test]
    fn first_line_decides_and_later_bytes_do_not_matter() {
        let a = Fingerprint::of_head(b"line one\nline two\n").unwrap();
        let b = Fingerprint::of_head(b"line one\nsomething else entirely\n").unwrap();
        let c = Fingerprint::of_head(b"line 1\n").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn long_first_line_uses_fixed_prefix() {
        let mut long = vec![b'x'; FINGERPRINT_BYTES + 10];
        let a = Fingerprint::of_head(&long).unwrap();
        long[FINGERPRINT_BYTES + 5] = b'y';
        assert_eq!(Fingerprint::of_head(&long), Some(a));
    }

    #[test]
    fn hex_round_trip() {
        let f = Fingerprint(0x0123_4567_89ab_cdef);
        assert_eq!(Fingerprint::from_hex(&f.to_hex()), Some(f));
        assert_eq!(Fingerprint::from_hex("xyz"), None);
    }
}
