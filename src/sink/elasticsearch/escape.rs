//! JSON string escaping straight into the output buffer.
//!
//! Input bytes are usually valid UTF-8 without characters that need escaping; that case is a
//! table scan and one copy. Invalid UTF-8 (a binary write to stdout) is replaced by U+FFFD so the
//! document stays valid JSON: a line is never dropped for its bytes.

/// `ESCAPE[b]` is non-zero when byte `b` must be escaped inside a JSON string.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as the content of a JSON string (without quotes).
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => escape_str_into(out, s),
        Err(_) => escape_str_into(out, &String::from_utf8_lossy(bytes)),
    }
}

/// Appends a valid UTF-8 string as JSON string content.
pub fn escape_str_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if ESCAPE[b as usize] == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        let mut out = b"\"".to_vec();
        escape_into(&mut out, b);
        out.push(b'"');
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(esc(b"plain"), "\"plain\"");
        assert_eq!(esc(b"a\"b\\c\nd\te\r\x01"), r#""a\"b\\c\nd\te\r\u0001""#);
    }

    #[test]
    fn output_parses_back_to_the_input() {
        for s in [
            "h\u{e9}llo \u{1F600}",
            "tab\there",
            "quote\"",
            "\u{7f}\u{0}",
        ] {
            let back: String = serde_json::from_str(&esc(s.as_bytes())).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let back: String = serde_json::from_str(&esc(b"ok \xff\xfe end")).unwrap();
        assert_eq!(back, "ok \u{fffd}\u{fffd} end");
    }
}
