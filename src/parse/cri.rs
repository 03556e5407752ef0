//! TEMPORARY stub, replaced by the parse module.
use super::*;
pub fn parse(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let mut it = line.splitn(4, |b| *b == b' ');
    let ts = it.next().ok_or(ParseError::Cri("no ts"))?;
    let stream = match it.next() {
        Some(b"stdout") => Stream::Stdout,
        Some(b"stderr") => Stream::Stderr,
        _ => return Err(ParseError::Cri("stream")),
    };
    let partial = match it.next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(ParseError::Cri("tag")),
    };
    Ok(Record {
        timestamp: ts,
        stream,
        partial,
        message: Cow::Borrowed(it.next().unwrap_or(b"")),
    })
}
