//! One tailed file: reads with `pread` at its own offset, frames lines with `memchr`, and keeps
//! the incomplete last line for the next read.
//!
//! A line longer than `max_line_bytes` is cut: its first `max_line_bytes` are handed out with
//! `truncated = true` once its end is found, the rest is skipped. It never makes the reader give
//! up on the file, and memory stays bounded by `max_line_bytes`.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::identity::{FileId, Fingerprint};

/// A physical line, without its `\n`, and the byte range `[start, end)` it occupies (the range
/// includes the `\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    pub start: u64,
    pub end: u64,
    pub truncated: bool,
}

/// What one read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were read (maybe more are waiting).
    Data { bytes: usize },
    /// Nothing new.
    Eof,
    /// The file is shorter than what was read: it was truncated (copytruncate). The caller
    /// treats it as a new file.
    Truncated,
    /// The file has no complete first line yet, so it has no fingerprint and nothing to read.
    NotReady,
    /// `on_line` asked to stop: the file was consumed up to the end of that line (`bytes` of
    /// it this time) and the rest of the chunk is read again next time.
    Paused { bytes: usize },
}

#[derive(Debug)]
pub struct TailedFile {
    file: File,
    pub id: FileId,
    pub fingerprint: Option<Fingerprint>,
    pub path: PathBuf,
    pub real_path: PathBuf,
    /// Next byte to read from the file.
    offset: u64,
    /// Bytes after the last `\n` framed so far (an incomplete line), starting at `offset - partial.len()`.
    partial: Vec<u8>,
    /// Inside an over-long line: its start offset. Its kept prefix is in `partial`.
    skipping_from: Option<u64>,
}

impl TailedFile {
    /// Opens `path` and positions it at `offset` (0 for a new file).
    pub fn open(path: PathBuf, real_path: PathBuf, offset: u64) -> io::Result<TailedFile> {
        let file = File::open(&path)?;
        let meta = file.metadata()?;
        let fingerprint = Fingerprint::read(&file)?;
        Ok(TailedFile {
            file,
            id: FileId::of(&meta),
            fingerprint,
            path,
            real_path,
            offset,
            partial: Vec::new(),
            skipping_from: None,
        })
    }

    /// The open descriptor (reads at an offset, metadata), which follows the file across renames.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Positions a freshly opened file at `offset` (a checkpointed event boundary).
    pub fn start_at(&mut self, offset: u64) {
        debug_assert!(self.partial.is_empty() && self.skipping_from.is_none());
        self.offset = offset;
    }

    /// Computes the fingerprint if it is not known yet; returns whether it is known now.
    pub fn refresh_fingerprint(&mut self) -> io::Result<bool> {
        if self.fingerprint.is_none() {
            self.fingerprint = Fingerprint::read(&self.file)?;
        }
        Ok(self.fingerprint.is_some())
    }

    /// Offset just after the last framed line: everything before it has been handed out.
    pub fn framed_offset(&self) -> u64 {
        match self.skipping_from {
            Some(start) => start,
            None => self.offset - self.partial.len() as u64,
        }
    }

    /// Size of the file now (through the open descriptor, so it works after a rename or unlink).
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Bytes written but not yet read.
    pub fn unread(&self) -> io::Result<u64> {
        Ok(self.size()?.saturating_sub(self.offset))
    }

    /// Whether the file's content still starts with the line it started with when opened.
    pub fn same_content(&self) -> io::Result<bool> {
        match self.fingerprint {
            None => Ok(true),
            Some(fp) => Ok(Fingerprint::read(&self.file)? == Some(fp)),
        }
    }

    /// Reads up to `chunk` bytes and hands every complete line to `on_line`, until it returns
    /// `Break` (the caller's batch is full: see [`ReadOutcome::Paused`]).
    /// `buf` is a scratch buffer reused across calls and files.
    pub fn read(
        &mut self,
        buf: &mut Vec<u8>,
        chunk: usize,
        max_line: usize,
        on_line: &mut dyn FnMut(Line<'_>) -> ControlFlow<()>,
    ) -> io::Result<ReadOutcome> {
        let size = self.size()?;
        if size < self.offset {
            return Ok(ReadOutcome::Truncated);
        }
        if self.fingerprint.is_none() {
            self.fingerprint = Fingerprint::read(&self.file)?;
            if self.fingerprint.is_none() {
                return Ok(ReadOutcome::NotReady);
            }
        }
        if size == self.offset {
            return Ok(ReadOutcome::Eof);
        }
        // A copytruncate followed by new writes can regrow the file past our offset before we
        // look: only the first line tells that the content was replaced. One small pread per
        // read with new data.
        if self.offset > 0 && !self.same_content()? {
            return Ok(ReadOutcome::Truncated);
        }

        // Bytes in `buf` start at file offset `base`.
        buf.clear();
        let base = self.offset - self.partial.len() as u64;
        let skipping = self.skipping_from.is_some();
        if !skipping {
            buf.extend_from_slice(&self.partial);
            self.partial.clear();
        }
        let keep = buf.len();
        let want = chunk.min((size - self.offset) as usize);
        buf.resize(keep + want, 0);
        let n = read_full_at(&self.file, &mut buf[keep..], self.offset)?;
        buf.truncate(keep + n);
        if n == 0 {
            // Raced with a truncation between the stat and the read.
            if !skipping {
                self.partial.extend_from_slice(&buf[..keep]);
            }
            return Ok(ReadOutcome::Eof);
        }
        self.offset += n as u64;
        let base = if skipping {
            self.offset - n as u64
        } else {
            base
        };

        let read_from = self.offset - n as u64;
        let mut pos = 0;
        for nl in memchr::memchr_iter(b'\n', buf) {
            let flow = if let Some(start) = self.skipping_from.take() {
                // End of an over-long line: hand out its kept prefix.
                let flow = on_line(Line {
                    bytes: &self.partial,
                    start,
                    end: base + nl as u64 + 1,
                    truncated: true,
                });
                self.partial.clear();
                flow
            } else {
                let line = &buf[pos..nl];
                let (bytes, truncated) = if line.len() > max_line {
                    (&line[..max_line], true)
                } else {
                    (line, false)
                };
                on_line(Line {
                    bytes,
                    start: base + pos as u64,
                    end: base + nl as u64 + 1,
                    truncated,
                })
            };
            pos = nl + 1;
            if flow.is_break() {
                // Nothing is pending (the stop is at a line end): resume right after it.
                self.offset = base + pos as u64;
                return Ok(ReadOutcome::Paused {
                    bytes: (self.offset - read_from) as usize,
                });
            }
        }
        let rest = &buf[pos..];
        if self.skipping_from.is_none() {
            if rest.len() > max_line {
                self.skipping_from = Some(base + pos as u64);
                self.partial.extend_from_slice(&rest[..max_line]);
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
        Ok(ReadOutcome::Data { bytes: n })
    }
}

fn read_full_at(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type Collected = Vec<(String, u64, u64, bool)>;

    fn collect(f: &mut TailedFile, chunk: usize, max_line: usize) -> Collected {
        collect_with(f, chunk, max_line, usize::MAX).0
    }

    /// Reads to the end, asking to stop after every `every`-th line (as a reader whose batch
    /// keeps filling up does; `usize::MAX`: never). Returns the lines and how many reads paused;
    /// each pause must resume at the end of the last line handed out.
    fn collect_with(
        f: &mut TailedFile,
        chunk: usize,
        max_line: usize,
        every: usize,
    ) -> (Collected, usize) {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut pauses = 0;
        loop {
            let r = f
                .read(&mut buf, chunk, max_line, &mut |l| {
                    out.push((
                        String::from_utf8_lossy(l.bytes).into_owned(),
                        l.start,
                        l.end,
                        l.truncated,
                    ));
                    if out.len().is_multiple_of(every) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .unwrap();
            match r {
                ReadOutcome::Paused { bytes } => {
                    pauses += 1;
                    assert!(bytes > 0);
                    assert_eq!(
                        f.framed_offset(),
                        out.last().unwrap().2,
                        "resumes at the line end"
                    );
                }
                ReadOutcome::Data { .. } => {}
                _ => break,
            }
        }
        (out, pauses)
    }

    #[test]
    fn a_paused_read_resumes_after_the_last_line_handed_out() {
        let mut content = Vec::new();
        for i in 0..200 {
            let len = [3, 17, 40, 90][i % 4];
            content.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            content.push(b'\n');
        }
        content.extend_from_slice(b"tail-without-newline");
        for (chunk, max_line, every) in [(64, 1024, 1), (64, 32, 3), (1000, 50, 7), (7, 16, 2)] {
            let (_d, path) = temp_file(&content);
            let mut whole = TailedFile::open(path.clone(), path.clone(), 0).unwrap();
            let expected = collect(&mut whole, chunk, max_line);
            let mut paused = TailedFile::open(path.clone(), path.clone(), 0).unwrap();
            let (got, pauses) = collect_with(&mut paused, chunk, max_line, every);
            assert!(pauses > 0, "the test must pause at least once");
            assert_eq!(
                got, expected,
                "chunk {chunk}, max_line {max_line}, every {every}"
            );
            assert_eq!(paused.framed_offset(), whole.framed_offset());
        }
    }

    fn temp_file(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn frames_lines_across_small_reads_with_offsets() {
        let (_d, path) = temp_file(b"alpha\nbeta\n\ngamma-incomplete");
        let mut f = TailedFile::open(path.clone(), path.clone(), 0).unwrap();
        let lines = collect(&mut f, 3, 1024);
        assert_eq!(
            lines,
            vec![
                ("alpha".into(), 0, 6, false),
                ("beta".into(), 6, 11, false),
                ("".into(), 11, 12, false),
            ]
        );
        assert_eq!(f.framed_offset(), 12);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"\n")
            .unwrap();
        assert_eq!(
            collect(&mut f, 3, 1024),
            vec![("gamma-incomplete".into(), 12, 29, false)]
        );
        assert_eq!(f.framed_offset(), 29);
    }

    #[test]
    fn over_long_line_is_truncated_and_reading_goes_on() {
        let mut content = b"short\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 100));
        content.extend_from_slice(b"\nafter\n");
        let (_d, path) = temp_file(&content);
        let mut f = TailedFile::open(path.clone(), path, 0).unwrap();
        let lines = collect(&mut f, 16, 10);
        assert_eq!(lines[0], ("short".into(), 0, 6, false));
        assert_eq!(lines[1], ("xxxxxxxxxx".into(), 6, 107, true));
        assert_eq!(lines[2], ("after".into(), 107, 113, false));
        assert_eq!(f.framed_offset(), 113);
    }

    #[test]
    fn resumes_from_offset_and_detects_truncation() {
        let (_d, path) = temp_file(b"one\ntwo\n");
        let mut f = TailedFile::open(path.clone(), path.clone(), 4).unwrap();
        assert_eq!(collect(&mut f, 64, 64), vec![("two".into(), 4, 8, false)]);
        std::fs::write(&path, b"x\n").unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            f.read(&mut buf, 64, 64, &mut |_| ControlFlow::Continue(()))
                .unwrap(),
            ReadOutcome::Truncated
        );
    }

    #[test]
    fn truncation_hidden_by_regrowth_is_detected_by_the_fingerprint() {
        let (_d, path) = temp_file(b"first line\nsecond\n");
        let mut f = TailedFile::open(path.clone(), path.clone(), 0).unwrap();
        assert_eq!(collect(&mut f, 64, 64).len(), 2);
        // Truncated and rewritten past the old offset between two reads.
        std::fs::write(&path, b"a new first line, longer than before\n").unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            f.read(&mut buf, 64, 64, &mut |_| ControlFlow::Continue(()))
                .unwrap(),
            ReadOutcome::Truncated
        );
    }

    #[test]
    fn file_without_first_line_is_not_ready() {
        let (_d, path) = temp_file(b"no newline yet");
        let mut f = TailedFile::open(path.clone(), path, 0).unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            f.read(&mut buf, 64, 64, &mut |_| ControlFlow::Continue(()))
                .unwrap(),
            ReadOutcome::NotReady
        );
        assert!(f.fingerprint.is_none());
    }
}
