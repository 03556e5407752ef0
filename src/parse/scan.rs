//! A minimal JSON scanner over borrowed bytes, shared by the docker json-file parser and the
//! JSON application log lifter: strings (kept escaped until asked), skipping of values, and an
//! unescaper that borrows when it can. It is not a validator: values it skips get a structural
//! check only (strings, balanced brackets, bare scalar tokens).

use std::borrow::Cow;

use memchr::{memchr, memchr2};

/// Why scanning failed; the callers turn it into their own error.
pub(crate) type Reason = &'static str;

/// A JSON string's contents (between the quotes), still escaped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonStr<'a> {
    pub raw: &'a [u8],
    /// Position in `raw` of the first `\`, if any.
    pub first_backslash: Option<usize>,
}

impl<'a> JsonStr<'a> {
    pub fn unescaped(&self) -> Result<Cow<'a, [u8]>, Reason> {
        match self.first_backslash {
            None => Ok(Cow::Borrowed(self.raw)),
            Some(_) => unescape(self.raw),
        }
    }
}

/// Decodes the JSON escapes of a string's contents; borrows when there are none. `\uXXXX`
/// escapes become UTF-8; surrogate pairs are combined and a lone surrogate is an error, as is
/// any unknown escape.
pub(crate) fn unescape(raw: &[u8]) -> Result<Cow<'_, [u8]>, Reason> {
    let Some(mut pos) = memchr(b'\\', raw) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    loop {
        out.extend_from_slice(&raw[i..pos]);
        let esc = *raw.get(pos + 1).ok_or("dangling backslash")?;
        i = pos + 2;
        match esc {
            b'"' | b'\\' | b'/' => out.push(esc),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'u' => {
                let hi = hex4(raw, i)?;
                i += 4;
                let cp = match hi {
                    0xD800..=0xDBFF => {
                        if raw.get(i..i + 2) != Some(b"\\u") {
                            return Err("high surrogate without a low surrogate");
                        }
                        let lo = hex4(raw, i + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err("high surrogate without a low surrogate");
                        }
                        i += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err("lone low surrogate"),
                    _ => hi,
                };
                // Surrogates are excluded above, so every value left is a scalar value.
                let c = char::from_u32(cp).ok_or("invalid \\u escape")?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return Err("invalid escape"),
        }
        match memchr(b'\\', &raw[i..]) {
            Some(p) => pos = i + p,
            None => {
                out.extend_from_slice(&raw[i..]);
                return Ok(Cow::Owned(out));
            }
        }
    }
}

fn hex4(raw: &[u8], at: usize) -> Result<u32, Reason> {
    let h = raw.get(at..at + 4).ok_or("short \\u escape")?;
    h.iter().try_fold(0u32, |acc, &b| {
        let d = (b as char)
            .to_digit(16)
            .ok_or("bad hex digit in \\u escape")?;
        Ok(acc * 16 + d)
    })
}

pub(crate) struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Scanner { b, i: 0 }
    }

    pub fn pos(&self) -> usize {
        self.i
    }

    pub fn at_end(&self) -> bool {
        self.i == self.b.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    pub fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    pub fn expect(&mut self, c: u8, reason: Reason) -> Result<(), Reason> {
        if self.bump() == Some(c) {
            Ok(())
        } else {
            Err(reason)
        }
    }

    /// A string starting at the cursor; leaves the cursor after its closing quote.
    pub fn string(&mut self) -> Result<JsonStr<'a>, Reason> {
        self.expect(b'"', "expected a string")?;
        let start = self.i;
        let mut first_backslash = None;
        loop {
            let p = memchr2(b'"', b'\\', &self.b[self.i..]).ok_or("unterminated string")?;
            let at = self.i + p;
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Ok(JsonStr {
                    raw: &self.b[start..at],
                    first_backslash,
                });
            }
            first_backslash.get_or_insert(at - start);
            // Skip the backslash and the byte it escapes (a `"` or `\` must not end the scan).
            self.i = at + 2;
            if self.i > self.b.len() {
                return Err("unterminated string");
            }
        }
    }

    /// Skips a value whose content is not needed: strings are scanned properly, brackets must
    /// balance, scalars must be a bare token.
    pub fn skip_value(&mut self) -> Result<(), Reason> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{' | b'[') => self.skip_nested(),
            Some(c) if c == b'-' || c.is_ascii_alphanumeric() => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                Ok(())
            }
            _ => Err("expected a value"),
        }
    }

    fn skip_nested(&mut self) -> Result<(), Reason> {
        // One bit per open bracket, 1 for `{` and 0 for `[`, for the innermost 64 levels;
        // deeper brackets are only counted.
        let mut stack: u64 = 0;
        let mut depth = 0usize;
        loop {
            match self.peek().ok_or("unterminated object or array")? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                c @ (b'{' | b'[') => {
                    if depth < 64 {
                        stack = (stack << 1) | u64::from(c == b'{');
                    }
                    depth += 1;
                }
                c @ (b'}' | b']') => {
                    depth -= 1;
                    if depth < 64 {
                        if (stack & 1 == 1) != (c == b'}') {
                            return Err("mismatched brackets");
                        }
                        stack >>= 1;
                    }
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
    }
}
