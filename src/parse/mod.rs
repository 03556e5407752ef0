//! Container log parsing: CRI and docker json-file records, partial-line joining, multiline
//! grouping and JSON application logs.
//!
//! Everything here works on borrowed bytes from the reader's buffer and knows nothing of files,
//! Kubernetes or Elasticsearch. Byte offsets are carried through untouched so that delivery can
//! commit exactly the events Elasticsearch acknowledged. It imports nothing of the crate but the
//! configuration vocabulary ([`crate::settings`]).

pub mod assemble;
pub mod config;
pub mod cri;
pub mod docker;
pub mod json;
pub mod multiline;
mod scan;
pub mod timestamp;

use std::borrow::Cow;

/// Which output stream of the container a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// On-disk format of a container log file; detected from its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Cri,
    Docker,
}

/// One physical record of a container log file, borrowed from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// RFC 3339 timestamp as the runtime wrote it.
    pub timestamp: &'a [u8],
    pub stream: Stream,
    /// CRI `P`, or a docker `log` value without a trailing `\n`: the next record continues it.
    pub partial: bool,
    /// The message without its trailing newline; unescaped for docker.
    pub message: Cow<'a, [u8]>,
}

/// Why a physical line is not a valid record. The line is still shipped (as a raw message) by
/// the caller: a malformed line is flagged, never dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line is not in CRI format: {0}")]
    Cri(&'static str),
    #[error("line is not a docker json-file record: {0}")]
    Docker(&'static str),
}

/// Guesses the format from the first line of a file.
pub fn detect(line: &[u8]) -> Option<Format> {
    match line.first()? {
        b'{' => Some(Format::Docker),
        b'0'..=b'9' => Some(Format::Cri),
        _ => None,
    }
}

/// Parses one line (without its `\n`) in the given format.
pub fn parse(format: Format, line: &[u8]) -> Result<Record<'_>, ParseError> {
    match format {
        Format::Cri => cri::parse(line),
        Format::Docker => docker::parse(line),
    }
}
