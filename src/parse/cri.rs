//! The CRI log format the kubelet's runtimes (containerd, CRI-O) write:
//! `<RFC3339Nano> <stdout|stderr> <tags> <message>`, where the first `:`-separated tag is `P`
//! (partial: the next record of the stream continues it) or `F` (full).
//!
//! Parsing borrows everything from the line; it never allocates. It knows nothing of joining
//! partial records (that is `assemble`).

use std::borrow::Cow;

use memchr::memchr;

use super::{ParseError, Record, Stream, timestamp};

/// Parses one CRI line, without its trailing `\n`. A trailing `\r` is part of the message.
pub fn parse(line: &[u8]) -> Result<Record<'_>, ParseError> {
    let err = ParseError::Cri;
    let ts_end = memchr(b' ', line).ok_or(err("no space after the timestamp"))?;
    let timestamp = &line[..ts_end];
    if !timestamp::is_rfc3339(timestamp) {
        return Err(err("timestamp is not RFC 3339"));
    }
    let rest = &line[ts_end + 1..];
    // Both stream names are six bytes long, followed by a space.
    let stream = match rest.get(..7) {
        Some(b"stdout ") => Stream::Stdout,
        Some(b"stderr ") => Stream::Stderr,
        _ => return Err(err("stream is not stdout or stderr")),
    };
    let rest = &rest[7..];
    let (tags, message) = match memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        // `<ts> stdout F` with nothing after the tags: an empty message.
        None => (rest, &rest[rest.len()..]),
    };
    let first_tag = match memchr(b':', tags) {
        Some(i) => &tags[..i],
        None => tags,
    };
    let partial = match first_tag {
        b"F" => false,
        b"P" => true,
        _ => return Err(err("first tag is not P or F")),
    };
    Ok(Record {
        timestamp,
        stream,
        partial,
        message: Cow::Borrowed(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &[u8]) -> Record<'_> {
        parse(line).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(line)))
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/parse/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn stdout_full_line() {
        let r = ok(b"2026-11-24T10:00:00.123456789Z stdout F hello world");
        assert_eq!(r.timestamp, b"2026-11-24T10:00:00.123456789Z");
        assert_eq!(r.stream, Stream::Stdout);
        assert!(!r.partial);
        assert_eq!(&*r.message, b"hello world");
        assert!(matches!(r.message, Cow::Borrowed(_)));
    }

    #[test]
    fn stderr_partial_line() {
        let r = ok(b"2026-11-24T10:00:00.123456789Z stderr P first half");
        assert_eq!(r.stream, Stream::Stderr);
        assert!(r.partial);
        assert_eq!(&*r.message, b"first half");
    }

    #[test]
    fn empty_message_with_and_without_trailing_space() {
        for line in [
            &b"2026-11-24T10:00:00Z stdout F "[..],
            b"2026-11-24T10:00:00Z stdout F",
        ] {
            let r = ok(line);
            assert_eq!(&*r.message, b"");
            assert!(!r.partial);
        }
        assert!(ok(b"2026-11-24T10:00:00Z stderr P").partial);
    }

    #[test]
    fn message_keeps_spaces_and_carriage_return() {
        let r = ok(b"2026-11-24T10:00:00Z stdout F   indented  text \r");
        assert_eq!(&*r.message, b"  indented  text \r");
    }

    #[test]
    fn first_of_several_tags_decides() {
        assert!(ok(b"2026-11-24T10:00:00Z stdout P:x:y msg").partial);
        assert!(!ok(b"2026-11-24T10:00:00Z stdout F:P msg").partial);
        assert_eq!(&*ok(b"2026-11-24T10:00:00Z stdout F:x msg").message, b"msg");
    }

    #[test]
    fn timestamps_with_offsets() {
        let r = ok(b"2026-11-24T10:00:00.5+02:00 stdout F x");
        assert_eq!(r.timestamp, b"2026-11-24T10:00:00.5+02:00");
        let r = ok(b"2026-11-24T10:00:00-07:30 stderr F x");
        assert_eq!(r.timestamp, b"2026-11-24T10:00:00-07:30");
    }

    #[test]
    fn non_utf8_message_is_passed_through() {
        assert_eq!(
            &*ok(b"2026-11-24T10:00:00Z stdout F \xff\xfe").message,
            b"\xff\xfe"
        );
    }

    #[test]
    fn malformed_lines_are_errors_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no space after the timestamp"),
            (b"garbage", "no space after the timestamp"),
            (b"2026-11-24T10:00:00Z", "no space after the timestamp"),
            (b"hello world this is not cri", "timestamp is not RFC 3339"),
            (
                b"2026-11-24 10:00:00Z stdout F x",
                "timestamp is not RFC 3339",
            ),
            (
                b"2026-11-24T10:00:00Z stdin F x",
                "stream is not stdout or stderr",
            ),
            (
                b"2026-11-24T10:00:00Z STDOUT F x",
                "stream is not stdout or stderr",
            ),
            (
                b"2026-11-24T10:00:00Z stdout",
                "stream is not stdout or stderr",
            ),
            (
                b"2026-11-24T10:00:00Z stdoutF x",
                "stream is not stdout or stderr",
            ),
            (
                b"2026-11-24T10:00:00Z  stdout F x",
                "stream is not stdout or stderr",
            ),
            (
                b"2026-11-24T10:00:00Z stdout X msg",
                "first tag is not P or F",
            ),
            (
                b"2026-11-24T10:00:00Z stdout  msg",
                "first tag is not P or F",
            ),
            (
                b"2026-11-24T10:00:00Z stdout FF msg",
                "first tag is not P or F",
            ),
            (
                b"2026-11-24T10:00:00Z stdout f msg",
                "first tag is not P or F",
            ),
            (
                b"2026-11-24T10:00:00Z stdout :F msg",
                "first tag is not P or F",
            ),
            (b"2026-11-24T10:00:00Z stdout ", "first tag is not P or F"),
        ];
        for (line, reason) in cases {
            assert_eq!(
                parse(line),
                Err(ParseError::Cri(reason)),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn fixture_file_parses_line_by_line() {
        let data = fixture("cri.log");
        let recs: Vec<Record<'_>> = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(ok)
            .collect();
        assert_eq!(recs.len(), 8);
        let summary: Vec<(Stream, bool, &[u8])> = recs
            .iter()
            .map(|r| (r.stream, r.partial, &*r.message))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Stream::Stdout, false, &b"starting server on :8080"[..]),
                (
                    Stream::Stderr,
                    false,
                    b"warning: config file not found, using defaults"
                ),
                (
                    Stream::Stdout,
                    true,
                    b"{\"level\":\"info\",\"msg\":\"a long "
                ),
                (Stream::Stderr, false, b""),
                (Stream::Stdout, true, b"line split by the runtime"),
                (Stream::Stdout, false, b"\"}"),
                (Stream::Stdout, false, b"tabs\tand \"quotes\" stay verbatim"),
                (Stream::Stderr, false, b"from a +02:00 node"),
            ]
        );
        assert_eq!(recs[7].timestamp, b"2026-11-24T12:00:03.5+02:00");
    }

    #[test]
    fn malformed_fixture_lines_all_fail() {
        let data = fixture("cri-malformed.log");
        let mut n = 0;
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert!(
                parse(line).is_err(),
                "{:?} should be malformed",
                String::from_utf8_lossy(line)
            );
            n += 1;
        }
        assert_eq!(n, 7);
    }
}
