//! Docker's json-file format: one JSON object per line,
//! `{"log":"msg\n","stream":"stdout","time":"2026-11-24T10:00:00.123456789Z"}`.
//!
//! A small scanner for this fixed shape, not a general JSON parser: no `serde_json::Value`, and
//! the message stays borrowed unless it contains an escape other than its trailing `\n`. Keys
//! may come in any order; other keys (`attrs`, …) are skipped with a structural check only
//! (strings, balanced brackets, scalar tokens), since their content is never used. Raw control
//! characters inside strings are accepted (docker never writes them).

use std::borrow::Cow;

use super::scan::{JsonStr, Reason, Scanner};
use super::{ParseError, Record, Stream, timestamp};

/// Parses one json-file line, without its trailing `\n`.
pub fn parse(line: &[u8]) -> Result<Record<'_>, ParseError> {
    parse_fields(line).map_err(ParseError::Docker)
}

fn parse_fields(line: &[u8]) -> Result<Record<'_>, Reason> {
    let mut s = Scanner::new(line);
    s.ws();
    s.expect(b'{', "not a JSON object")?;
    let mut log: Option<JsonStr<'_>> = None;
    let mut stream: Option<Stream> = None;
    let mut time: Option<&[u8]> = None;
    s.ws();
    if s.peek() == Some(b'}') {
        return Err("missing \"log\"");
    }
    loop {
        s.ws();
        let key = s.string()?;
        s.ws();
        s.expect(b':', "expected ':' after a key")?;
        s.ws();
        match known_key(key)? {
            Some(Key::Log) => {
                let v = s.string()?;
                if log.replace(v).is_some() {
                    return Err("duplicate \"log\"");
                }
            }
            Some(Key::Stream) => {
                let v = s.string()?;
                let st = match v.raw {
                    b"stdout" => Stream::Stdout,
                    b"stderr" => Stream::Stderr,
                    _ => return Err("stream is not stdout or stderr"),
                };
                if stream.replace(st).is_some() {
                    return Err("duplicate \"stream\"");
                }
            }
            Some(Key::Time) => {
                let v = s.string()?;
                if v.first_backslash.is_some() || !timestamp::is_rfc3339(v.raw) {
                    return Err("time is not RFC 3339");
                }
                if time.replace(v.raw).is_some() {
                    return Err("duplicate \"time\"");
                }
            }
            None => s.skip_value()?,
        }
        s.ws();
        match s.bump() {
            Some(b',') => {}
            Some(b'}') => break,
            _ => return Err("expected ',' or '}'"),
        }
    }
    s.ws();
    if !s.at_end() {
        return Err("bytes after the object");
    }
    let log = log.ok_or("missing \"log\"")?;
    let stream = stream.ok_or("missing \"stream\"")?;
    let timestamp = time.ok_or("missing \"time\"")?;
    let (message, partial) = log_message(log)?;
    Ok(Record {
        timestamp,
        stream,
        partial,
        message,
    })
}

/// The message of a `log` value and whether it is partial (no trailing `\n`).
fn log_message(log: JsonStr<'_>) -> Result<(Cow<'_, [u8]>, bool), Reason> {
    let raw = log.raw;
    match log.first_backslash {
        None => Ok((Cow::Borrowed(raw), true)),
        // The common case: the only escape is the final `\n`.
        Some(p) if p + 2 == raw.len() && raw[p + 1] == b'n' => {
            Ok((Cow::Borrowed(&raw[..p]), false))
        }
        Some(_) => {
            let mut v = log.unescaped()?.into_owned();
            let partial = v.last() != Some(&b'\n');
            if !partial {
                v.pop();
            }
            Ok((Cow::Owned(v), partial))
        }
    }
}

enum Key {
    Log,
    Stream,
    Time,
}

fn known_key(key: JsonStr<'_>) -> Result<Option<Key>, Reason> {
    Ok(match &*key.unescaped()? {
        b"log" => Some(Key::Log),
        b"stream" => Some(Key::Stream),
        b"time" => Some(Key::Time),
        _ => None,
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
    fn plain_line_is_borrowed_and_complete() {
        let line =
            br#"{"log":"hello world\n","stream":"stdout","time":"2026-11-24T10:00:00.123456789Z"}"#;
        let r = ok(line);
        assert_eq!(&*r.message, b"hello world");
        assert!(
            matches!(r.message, Cow::Borrowed(_)),
            "only the trailing \\n was escaped"
        );
        assert!(!r.partial);
        assert_eq!(r.stream, Stream::Stdout);
        assert_eq!(r.timestamp, b"2026-11-24T10:00:00.123456789Z");
    }

    #[test]
    fn missing_trailing_newline_is_partial() {
        let r = ok(br#"{"log":"first 16k chunk","stream":"stderr","time":"2026-11-24T10:00:00Z"}"#);
        assert!(r.partial);
        assert_eq!(r.stream, Stream::Stderr);
        assert_eq!(&*r.message, b"first 16k chunk");
        assert!(matches!(r.message, Cow::Borrowed(_)));
        // An escaped line without the final \n is partial too.
        let r = ok(br#"{"log":"tab\there","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert!(r.partial);
        assert_eq!(&*r.message, b"tab\there");
    }

    #[test]
    fn a_final_escape_other_than_newline_is_partial() {
        let r = ok(br#"{"log":"col\t","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!((&*r.message, r.partial), (&b"col\t"[..], true));
        let r = ok(br#"{"log":"say \"hi\"","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!((&*r.message, r.partial), (&b"say \"hi\""[..], true));
    }

    #[test]
    fn escaped_backslash_before_n_is_not_a_newline() {
        // `\\n` is a backslash followed by the letter n: no newline, so partial.
        let r = ok(br#"{"log":"C:\\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!(&*r.message, b"C:\\n");
        assert!(r.partial);
        let r = ok(br#"{"log":"C:\\\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!(&*r.message, b"C:\\");
        assert!(!r.partial);
    }

    #[test]
    fn escapes_are_decoded() {
        let r = ok(br#"{"log":"q=\"x\" s=\/ b=\\ \b\f\r\t end\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!(&*r.message, b"q=\"x\" s=/ b=\\ \x08\x0c\r\t end");
        assert!(matches!(r.message, Cow::Owned(_)));
        assert!(!r.partial);
        // An inner newline stays; only the last one is the line end.
        let r = ok(br#"{"log":"a\nb\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!(&*r.message, b"a\nb");
    }

    #[test]
    fn unicode_escapes_including_surrogate_pairs() {
        let r = ok(br#"{"log":"caf\u00e9 \u20AC \ud83d\ude00 \u0000|\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        assert_eq!(std::str::from_utf8(&r.message).unwrap(), "café € 😀 \0|");
        // Raw UTF-8 passes through untouched and borrowed.
        let r = ok(
            "{\"log\":\"café 😀\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-24T10:00:00Z\"}"
                .as_bytes(),
        );
        assert_eq!(std::str::from_utf8(&r.message).unwrap(), "café 😀");
        assert!(matches!(r.message, Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_escapes_are_errors() {
        for (log, reason) in [
            (r#"\x41"#, "invalid escape"),
            (r#"\u12"#, "short \\u escape"),
            (r#"\u12G4"#, "bad hex digit in \\u escape"),
            (r#"\ud83d"#, "high surrogate without a low surrogate"),
            (r#"\ud83d\n"#, "high surrogate without a low surrogate"),
            (r#"\ud83d\u0041"#, "high surrogate without a low surrogate"),
            (r#"\ude00"#, "lone low surrogate"),
        ] {
            let line =
                format!(r#"{{"log":"{log}","stream":"stdout","time":"2026-11-24T10:00:00Z"}}"#);
            assert_eq!(
                parse(line.as_bytes()),
                Err(ParseError::Docker(reason)),
                "{line}"
            );
        }
    }

    #[test]
    fn keys_in_any_order_and_extra_keys_ignored() {
        let a = ok(br#"{"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#);
        for line in [
            &br#"{"time":"2026-11-24T10:00:00Z","stream":"stdout","log":"x\n"}"#[..],
            br#"{"stream":"stdout","log":"x\n","time":"2026-11-24T10:00:00Z"}"#,
            br#" { "log" : "x\n" , "stream":"stdout" ,"time":"2026-11-24T10:00:00Z" } "#,
            br#"{"attrs":{"tag":"a}\"[","n":[1,{"b":[true,null]}],"f":-1.5e3},"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#,
            br#"{"log":"x\n","extra":"s\"}","stream":"stdout","n":12,"time":"2026-11-24T10:00:00Z","b":false}"#,
            br#"{"\u006cog":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#,
        ] {
            assert_eq!(ok(line), a, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn malformed_lines_are_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "not a JSON object"),
            (b"2026-11-24T10:00:00Z stdout F cri line", "not a JSON object"),
            (b"[1,2]", "not a JSON object"),
            (b"{}", "missing \"log\""),
            (br#"{"log":"x\n","stream":"stdout"}"#, "missing \"time\""),
            (br#"{"log":"x\n","time":"2026-11-24T10:00:00Z"}"#, "missing \"stream\""),
            (br#"{"stream":"stdout","time":"2026-11-24T10:00:00Z"}"#, "missing \"log\""),
            (br#"{"log":"x\n","stream":"stdin","time":"2026-11-24T10:00:00Z"}"#, "stream is not stdout or stderr"),
            (br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#, "time is not RFC 3339"),
            (br#"{"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}junk"#, "bytes after the object"),
            (br#"{"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z""#, "expected ',' or '}'"),
            (br#"{"log":"x\n,"stream":"stdout","time":"2026-11-24T10:00:00Z"}"#, "expected ',' or '}'"),
            (br#"{"log":"unterminated"#, "unterminated string"),
            (br#"{"log":"ends in backslash\"#, "unterminated string"),
            (br#"{"log" "x\n"}"#, "expected ':' after a key"),
            (br#"{log:"x\n"}"#, "expected a string"),
            (br#"{"log":42,"stream":"stdout","time":"2026-11-24T10:00:00Z"}"#, "expected a string"),
            (br#"{"log":"a\n","log":"b\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#, "duplicate \"log\""),
            (br#"{"attrs":{"a":[1}],"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#, "mismatched brackets"),
            (br#"{"attrs":{"a":{"b":1}"#, "unterminated object or array"),
            (br#"{"attrs":,"log":"x\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#, "expected a value"),
        ];
        for (line, reason) in cases {
            assert_eq!(
                parse(line),
                Err(ParseError::Docker(reason)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn fixture_file_parses_line_by_line() {
        let data = fixture("docker.log");
        let recs: Vec<Record<'_>> = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(ok)
            .collect();
        let summary: Vec<(Stream, bool, String)> = recs
            .iter()
            .map(|r| {
                (
                    r.stream,
                    r.partial,
                    String::from_utf8(r.message.to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Stream::Stdout,
                    false,
                    "listening on 0.0.0.0:8080".to_string()
                ),
                (
                    Stream::Stderr,
                    false,
                    "level=warn msg=\"slow query\" took=1.2s".to_string()
                ),
                (
                    Stream::Stdout,
                    true,
                    "{\"msg\":\"a long line split by docker at 16 KiB: ".to_string()
                ),
                (Stream::Stdout, false, "the end\"}".to_string()),
                (Stream::Stdout, false, "naïve café ☕ 😀".to_string()),
                (Stream::Stderr, false, "".to_string()),
                (Stream::Stdout, false, "with attrs".to_string()),
            ]
        );
        assert_eq!(recs[6].timestamp, b"2026-11-24T10:00:03.000000001Z");
    }
}
