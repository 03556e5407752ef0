//! The time of lines without a timestamp of their own (malformed lines), chosen so that a replay
//! after a crash or restart gives them the same `@timestamp`, and so the same daily index, as
//! the first time: the timestamp of the last line before them in the same file that has one, or,
//! before any, the file's birth time. Part of the reader; it never reads the wall clock for a
//! line (only where the file system records no birth time, see [`FileClock::open`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use crate::parse::{self, Format};
use crate::sink::elasticsearch::encode::format_rfc3339;

/// How far back from a checkpointed offset a resumed file is searched for its last timestamp.
/// Beyond it the birth time is used; the original run may have used an older line's timestamp
/// (only a file with more than this many bytes of lines without one before the checkpoint).
pub(super) const LOOK_BACK_BYTES: u64 = 4 << 20;
/// The first look-back reads this much; each further one four times as much.
const FIRST_LOOK: u64 = 16 << 10;
/// Longest timestamp a malformed line is searched for at its head.
const MAX_TIMESTAMP_BYTES: usize = 64;

/// One file's clock.
#[derive(Debug)]
pub(super) struct FileClock {
    /// The timestamp of the last line read (or, after a resume, found before the resume offset)
    /// that had one; empty before any.
    last: Vec<u8>,
    /// The file's birth time, formatted when first needed.
    base: Vec<u8>,
    birth: SystemTime,
}

impl FileClock {
    /// A clock for a file opened at `resume`: the last timestamp before that offset is looked
    /// up in the file (a fresh file, at 0, has none).
    pub(super) fn open(
        file: &File,
        resume: u64,
        format: Option<Format>,
        max_line_bytes: usize,
    ) -> FileClock {
        // The birth time survives renames (rotation) and restarts. Without one (a file system
        // that does not record it) the time of opening is the best there is: a restart does
        // not reproduce it.
        let birth = file
            .metadata()
            .and_then(|m| m.created())
            .unwrap_or_else(|_| SystemTime::now());
        let mut last = Vec::new();
        if resume > 0
            && let Some(t) = look_back(file, resume, format, max_line_bytes)
        {
            last = t;
        }
        FileClock {
            last,
            base: Vec::new(),
            birth,
        }
    }

    /// A line with a timestamp of its own was read.
    #[inline]
    pub(super) fn saw(&mut self, timestamp: &[u8]) {
        self.last.clear();
        self.last.extend_from_slice(timestamp);
    }

    /// The time of a line without a timestamp of its own.
    pub(super) fn fallback(&mut self) -> &[u8] {
        if !self.last.is_empty() {
            return &self.last;
        }
        if self.base.is_empty() {
            format_rfc3339(self.birth, &mut self.base);
        }
        &self.base
    }
}

/// A line's own timestamp: the record's when it parses in `format` (or, with `None`, in the
/// format it looks like), else a valid RFC 3339 timestamp at its head (a CRI line with a bad
/// stream or tag still has its own). The same rule as the reader applies to each line it reads.
pub(super) fn line_time(format: Option<Format>, line: &[u8]) -> Option<&[u8]> {
    if let Some(f) = format.or_else(|| parse::detect(line))
        && let Ok(rec) = parse::parse(f, line)
    {
        return Some(rec.timestamp);
    }
    leading_timestamp(line)
}

/// A valid RFC 3339 timestamp that starts the line and is followed by a space or its end.
pub(super) fn leading_timestamp(line: &[u8]) -> Option<&[u8]> {
    let head = &line[..line.len().min(MAX_TIMESTAMP_BYTES + 1)];
    let end = memchr::memchr(b' ', head).unwrap_or(line.len());
    let t = line.get(..end)?;
    parse::timestamp::is_rfc3339(t).then_some(t)
}

/// The timestamp of the last line in `bytes` that has one. `bytes` holds whole lines, except
/// that the first one is cut when `first_is_whole` is false (it is then not looked at). Lines are
/// judged on their first `max_line_bytes`, as the reader keeps of an over-long line.
pub(super) fn last_time_in(
    bytes: &[u8],
    first_is_whole: bool,
    format: Option<Format>,
    max_line_bytes: usize,
) -> Option<&[u8]> {
    let mut end = bytes.len();
    if bytes.last() == Some(&b'\n') {
        end -= 1;
    }
    loop {
        let (start, whole) = match memchr::memrchr(b'\n', &bytes[..end]) {
            Some(nl) => (nl + 1, true),
            None => (0, first_is_whole),
        };
        if whole {
            let line = &bytes[start..end];
            let line = &line[..line.len().min(max_line_bytes)];
            if let Some(t) = line_time(format, line) {
                return Some(t);
            }
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
    }
}

/// Searches backwards from `offset` (a line boundary) for the last line with a timestamp, in
/// growing windows up to [`LOOK_BACK_BYTES`]. A read error counts as "none found".
fn look_back(
    file: &File,
    offset: u64,
    format: Option<Format>,
    max_line_bytes: usize,
) -> Option<Vec<u8>> {
    let mut window = FIRST_LOOK;
    let mut buf = Vec::new();
    loop {
        let window_now = window.min(offset).min(LOOK_BACK_BYTES);
        let start = offset - window_now;
        buf.resize(window_now as usize, 0);
        file.read_exact_at(&mut buf, start).ok()?;
        if let Some(t) = last_time_in(&buf, start == 0, format, max_line_bytes) {
            return Some(t.to_vec());
        }
        if start == 0 || window_now >= LOOK_BACK_BYTES {
            return None;
        }
        window = window.saturating_mul(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const CRI_A: &str = "2026-11-24T10:00:00.1Z stdout F a\n";
    const CRI_B: &str = "2026-11-24T10:00:02.2Z stdout F b\n";

    #[test]
    fn own_timestamp_of_valid_and_half_valid_lines() {
        let cri = Some(Format::Cri);
        assert_eq!(
            line_time(cri, CRI_A.trim_end().as_bytes()),
            Some(&b"2026-11-24T10:00:00.1Z"[..])
        );
        assert_eq!(
            line_time(cri, b"2026-11-24T10:00:00Z stdin X bad"),
            Some(&b"2026-11-24T10:00:00Z"[..]),
            "a bad stream keeps the line's own timestamp"
        );
        assert_eq!(line_time(cri, b"garbage"), None);
        assert_eq!(
            line_time(None, b"2026-11-24T10:00:00Z"),
            Some(&b"2026-11-24T10:00:00Z"[..])
        );
        assert_eq!(line_time(None, b"2026-11-24 10:00:00 boot"), None);
        let docker = br#"{"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:03Z"}"#;
        assert_eq!(line_time(None, docker), Some(&b"2026-11-24T10:00:03Z"[..]));
        assert_eq!(line_time(Some(Format::Docker), br#"{"log":"x\n""#), None);
    }

    #[test]
    fn last_time_skips_lines_without_one_and_a_cut_first_line() {
        let body = format!("{CRI_A}junk\n{CRI_B}more junk\n\n");
        let t = last_time_in(body.as_bytes(), true, Some(Format::Cri), 1 << 20);
        assert_eq!(t, Some(&b"2026-11-24T10:00:02.2Z"[..]));
        let only_first = format!("{CRI_A}junk\n");
        assert_eq!(
            last_time_in(only_first.as_bytes(), false, Some(Format::Cri), 1 << 20),
            None,
            "the first line may be cut by the window: not judged"
        );
        assert!(last_time_in(only_first.as_bytes(), true, Some(Format::Cri), 1 << 20).is_some());
        assert_eq!(last_time_in(b"", true, None, 1 << 20), None);
    }

    #[test]
    fn a_resumed_file_finds_its_last_timestamp_far_back_and_otherwise_its_birth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut f = File::create(&path).unwrap();
        f.write_all(CRI_A.as_bytes()).unwrap();
        f.write_all(CRI_B.as_bytes()).unwrap();
        // More lines without a timestamp than the first window holds.
        for _ in 0..2000 {
            f.write_all(b"no timestamp on this line at all\n").unwrap();
        }
        drop(f);
        let f = File::open(&path).unwrap();
        let len = f.metadata().unwrap().len();
        let mut c = FileClock::open(&f, len, Some(Format::Cri), 1 << 20);
        assert_eq!(c.fallback(), b"2026-11-24T10:00:02.2Z");
        // At the head: nothing before, so the birth time, the same at every open.
        let mut at_head = FileClock::open(&f, 0, Some(Format::Cri), 1 << 20);
        let birth = at_head.fallback().to_vec();
        assert!(parse::timestamp::is_rfc3339(&birth));
        assert_eq!(FileClock::open(&f, 0, None, 1 << 20).fallback(), &birth[..]);
        // Resumed after the first line: it is found.
        let mut c = FileClock::open(&f, CRI_A.len() as u64, Some(Format::Cri), 1 << 20);
        assert_eq!(c.fallback(), b"2026-11-24T10:00:00.1Z");
        c.saw(b"2026-11-24T11:00:00Z");
        assert_eq!(c.fallback(), b"2026-11-24T11:00:00Z");
    }
}
