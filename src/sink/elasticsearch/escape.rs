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
///
/// One pass for the usual ASCII message: UTF-8 validation is only needed from the first
/// non-ASCII byte on, so it starts there (a prefix of ASCII bytes is valid UTF-8).
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    let done = escape_run(out, bytes, true);
    let rest = &bytes[done..];
    if rest.is_empty() {
        return;
    }
    match std::str::from_utf8(rest) {
        Ok(s) => escape_str_into(out, s),
        Err(_) => escape_str_into(out, &String::from_utf8_lossy(rest)),
    }
}

/// Appends a valid UTF-8 string as JSON string content.
pub fn escape_str_into(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    escape_run(out, s.as_bytes(), false);
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of the result is set for a byte of `w` that must be escaped (and, with
/// `non_ascii`, for a byte ≥ 0x80). Borrows can only set bits above the first real hit, so the
/// lowest set bit is exact, which is all the caller uses.
#[inline(always)]
fn special(w: u64, non_ascii: bool) -> u64 {
    let ctrl = w.wrapping_sub(LO * 0x20) & !w;
    let q = w ^ (LO * u64::from(b'"'));
    let bs = w ^ (LO * u64::from(b'\\'));
    let quote = q.wrapping_sub(LO) & !q;
    let backslash = bs.wrapping_sub(LO) & !bs;
    let high = if non_ascii { w } else { 0 };
    (ctrl | quote | backslash | high) & HI
}

/// Copies `bytes` into `out`, escaping as JSON requires, eight bytes at a time where there is
/// nothing to escape. With `stop_at_non_ascii`, stops before the first byte ≥ 0x80 and returns
/// its index; otherwise returns `bytes.len()`.
#[inline]
fn escape_run(out: &mut Vec<u8>, bytes: &[u8], stop_at_non_ascii: bool) -> usize {
    let mut start = 0; // first byte not yet copied
    let mut i = 0;
    let len = bytes.len();
    loop {
        // Whole words first; a hit leaves `i` exactly on the first byte to look at.
        while i + 8 <= len {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            let m = special(u64::from_le_bytes(w), stop_at_non_ascii);
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        if i + 8 > len {
            // The tail, shorter than a word.
            while i < len
                && ESCAPE[bytes[i] as usize] == 0
                && !(stop_at_non_ascii && bytes[i] >= 0x80)
            {
                i += 1;
            }
        }
        if i >= len {
            break;
        }
        let b = bytes[i];
        if b >= 0x80 {
            // Only flagged when stopping there.
            out.extend_from_slice(&bytes[start..i]);
            return i;
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
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    bytes.len()
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

    #[test]
    fn every_special_byte_is_found_at_every_word_position() {
        // The word scan must find a byte to escape wherever it sits, also after a clean byte
        // whose borrow could hide it.
        for special in [0u8, 0x1f, b'"', b'\\', b'\n', 0xc3] {
            for pos in 0..20 {
                let mut input = vec![b'a'; 20];
                input[pos] = special;
                if special == 0xc3 {
                    input.insert(pos + 1, 0xa9); // é
                }
                let back: String = serde_json::from_str(&esc(&input)).unwrap();
                assert_eq!(back.as_bytes(), &input[..], "byte {special:#x} at {pos}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_round_trip_as_lossy_utf8(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let back: String = serde_json::from_str(&esc(&input)).unwrap();
            proptest::prop_assert_eq!(back, String::from_utf8_lossy(&input));
        }

        #[test]
        fn any_string_round_trips(input in "[ -~\\t\\n\\x00-\\x1f\\u{80}-\\u{10ffff}]{0,40}") {
            let mut out = b"\"".to_vec();
            escape_str_into(&mut out, &input);
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, input);
        }
    }
}
