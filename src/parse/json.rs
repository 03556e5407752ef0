//! JSON application logs: recognises a message that is one JSON object and lifts its
//! message, level, time, trace/span ids, error, logger and caller for the ECS fields, and the
//! values of the keys the configuration types (`parse.json.fields`). The object itself is kept
//! verbatim (validated, trimmed) for the caller to embed; nothing here builds a
//! `serde_json::Value`, and nothing here decides how a value is indexed.
//!
//! One pass of serde_json over the bytes with a visitor that walks the top-level map: keys are
//! matched without allocating, the lifted values are borrowed unless they contain escapes, and
//! every other value is skipped with `IgnoredAny` (which checks its syntax but not the UTF-8 of
//! its strings: that is checked for the whole object first). Nested objects are never looked
//! into. Measured against "`IgnoredAny` validation, then a hand-written top-level scan", this
//! single pass was about 1.6× faster, and about 4× faster than a `serde_json::Value`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, Deserialize, IgnoredAny, MapAccess, Visitor};

use super::scan::Scanner;

/// A JSON application log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLog<'a> {
    /// The whole top-level JSON object, validated, without surrounding whitespace.
    pub object: &'a [u8],
    /// The first string among the top-level `msg`, `message` (in that order of preference).
    pub message: Option<Cow<'a, str>>,
    /// The first string among `level`, `severity`, `lvl`; a numeric level is not lifted.
    pub level: Option<Cow<'a, str>>,
    /// The first string among `time`, `timestamp`, `ts`.
    pub time: Option<Cow<'a, str>>,
    /// `trace_id`, `traceId`, `trace.id` (OpenTelemetry / ECS loggers).
    pub trace_id: Option<Cow<'a, str>>,
    /// `span_id`, `spanId`, `span.id`.
    pub span_id: Option<Cow<'a, str>>,
    /// `error`, `err`, `error.message` (a string; an error object stays in the object only).
    pub error: Option<Cow<'a, str>>,
    /// `stacktrace`, `stack_trace`, `stack`, `error.stack_trace`.
    pub stack_trace: Option<Cow<'a, str>>,
    /// `logger`, `logger_name`, `log.logger`.
    pub logger: Option<Cow<'a, str>>,
    /// `caller` (zap, Mattermost: `app/server.go:123`).
    pub caller: Option<Cow<'a, str>>,
    /// The values of the configured typed keys, by their position in the `fields` argument.
    pub typed: Typed<'a>,
    /// Where the members that gave `message`, `level`, `trace_id`, `span_id`, `error`,
    /// `stack_trace` and `logger` their values are in `object` (see [`AppLog::moved`]): the
    /// encoder moves them out of the object instead of storing each value
    /// twice ([`AppLog::moved`]). `time` and `caller` are not among them (what is written from
    /// them is not their text), nor a key written with escapes (its position is not known; it
    /// stays, a harmless copy).
    moved: [(u32, u32); MOVED_GROUPS.len()],
    moved_len: u8,
}

impl AppLog<'_> {
    /// The members whose string values were lifted verbatim, in the order they occur: the
    /// offset in `object` of the key's opening quote, and the offset just past the value's
    /// closing quote (0 when the value had escapes: not known here, the caller finds it).
    pub fn moved(&self) -> &[(u32, u32)] {
        &self.moved[..usize::from(self.moved_len)]
    }
}

/// At most this many keys can be typed (`parse.json.fields`): the slots live on the stack.
pub const MAX_TYPED_FIELDS: usize = 16;

/// One slot per configured typed key.
pub type Typed<'a> = [Option<Scalar<'a>>; MAX_TYPED_FIELDS];

/// A top-level value of a typed key, as far as typing it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Null,
    /// An object or array: the caller finds its text with [`raw_value`] when it needs it.
    Composite,
}

// JSON has no NaN, so every value parsed here equals itself.
impl Eq for Scalar<'_> {}

/// The type a configured key is indexed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Keyword,
    Long,
    Double,
    Boolean,
    Date,
}

/// `Some` only if `message`, trimmed of ASCII whitespace, is exactly one valid JSON object.
/// When a key occurs twice at the top level, its first string value counts.
pub fn parse(message: &[u8]) -> Option<AppLog<'_>> {
    parse_typed(message, &[])
}

/// Like [`parse`], also capturing the top-level values of `fields` (at most
/// [`MAX_TYPED_FIELDS`]; later ones are ignored) into [`AppLog::typed`].
pub fn parse_typed<'a>(message: &'a [u8], fields: &[String]) -> Option<AppLog<'a>> {
    let object = message.trim_ascii();
    // Cheap rejection of the common non-JSON line before serde_json is involved.
    if object.first() != Some(&b'{') || object.last() != Some(&b'}') {
        return None;
    }
    // serde_json does not check the UTF-8 of strings it skips; the object is embedded
    // verbatim in the document, so it must be valid as a whole.
    std::str::from_utf8(object).ok()?;
    let mut de = serde_json::Deserializer::from_slice(object);
    let fields = &fields[..fields.len().min(MAX_TYPED_FIELDS)];
    let (lifted, at, typed) = de
        .deserialize_map(TopLevel {
            fields,
            base: object.as_ptr() as usize,
        })
        .ok()?;
    de.end().ok()?;
    let (mut moved, mut moved_len) = ([(0, 0); MOVED_GROUPS.len()], 0u8);
    for group in MOVED_GROUPS {
        if let Some(i) = group.clone().find(|&i| lifted[i].is_some())
            && at[i].0 != NOT_BORROWED
        {
            moved[usize::from(moved_len)] = at[i];
            moved_len += 1;
        }
    }
    moved[..usize::from(moved_len)].sort_unstable();
    let [
        msg,
        message,
        level,
        severity,
        lvl,
        time,
        timestamp,
        ts,
        trace_id,
        trace_id2,
        trace_id3,
        span_id,
        span_id2,
        span_id3,
        error,
        err,
        error_message,
        stacktrace,
        stack_trace,
        stack,
        error_stack_trace,
        logger,
        logger_name,
        log_logger,
        caller,
    ] = lifted;
    Some(AppLog {
        object,
        message: msg.or(message),
        level: level.or(severity).or(lvl),
        time: time.or(timestamp).or(ts),
        trace_id: trace_id.or(trace_id2).or(trace_id3),
        span_id: span_id.or(span_id2).or(span_id3),
        error: error.or(err).or(error_message),
        stack_trace: stacktrace.or(stack_trace).or(stack).or(error_stack_trace),
        logger: logger.or(logger_name).or(log_logger),
        caller,
        typed,
        moved,
        moved_len,
    })
}

/// The groups of [`KEYS`] whose winner is moved out of the object: message, level, trace id,
/// span id, error, stack trace, logger (not time, 5..8, nor caller, 24).
const MOVED_GROUPS: [std::ops::Range<usize>; 7] =
    [0..2, 2..5, 8..11, 11..14, 14..17, 17..21, 21..24];

/// The top-level keys we lift, in slot order; within a group the first one present wins.
const KEYS: [&str; 25] = [
    "msg",
    "message",
    "level",
    "severity",
    "lvl",
    "time",
    "timestamp",
    "ts",
    "trace_id",
    "traceId",
    "trace.id",
    "span_id",
    "spanId",
    "span.id",
    "error",
    "err",
    "error.message",
    "stacktrace",
    "stack_trace",
    "stack",
    "error.stack_trace",
    "logger",
    "logger_name",
    "log.logger",
    "caller",
];

/// One slot per entry of [`KEYS`].
type Lifted<'a> = [Option<Cow<'a, str>>; KEYS.len()];

/// Where each lifted key's opening quote is in the object (per entry of [`KEYS`]).
/// With the end of its value, when the value was borrowed (see [`AppLog::moved`]).
type KeyAt = [(u32, u32); KEYS.len()];

/// A key that was not borrowed from the input (written with escapes): no position.
const NOT_BORROWED: u32 = u32::MAX;

/// The offset of the address `addr` in the object starting at `base`.
fn offset(base: usize, addr: usize) -> Option<u32> {
    addr.checked_sub(base).and_then(|o| u32::try_from(o).ok())
}

struct TopLevel<'f> {
    fields: &'f [String],
    /// The address of the object's first byte: keys borrowed from it give their offsets.
    base: usize,
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = (Lifted<'de>, KeyAt, Typed<'de>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: Lifted<'de> = Default::default();
        let mut at: KeyAt = [(NOT_BORROWED, 0); KEYS.len()];
        let mut typed: Typed<'de> = Default::default();
        while let Some((slot, key_at)) = map.next_key_seed(KeySeed {
            fields: self.fields,
            base: self.base,
        })? {
            match slot {
                Slot::Lift(i) if slots[i].is_none() => {
                    slots[i] = map.next_value::<StrOrSkip<'de>>()?.0;
                    if let Some(v) = &slots[i] {
                        // A borrowed value is a slice of the object: its end is known.
                        let end = match v {
                            // Past the closing quote.
                            Cow::Borrowed(s) => {
                                offset(self.base, s.as_ptr() as usize + s.len() + 1)
                            }
                            Cow::Owned(_) => None,
                        };
                        let end = end.unwrap_or(0);
                        at[i] = (key_at, end);
                    }
                }
                Slot::Typed(i) if typed[i].is_none() => {
                    typed[i] = Some(map.next_value::<Scalar<'de>>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((slots, at, typed))
    }
}

/// A top-level key: its slot in [`KEYS`] or among the typed fields, or neither.
enum Slot {
    Lift(usize),
    Typed(usize),
    Other,
}

struct KeySeed<'f> {
    fields: &'f [String],
    base: usize,
}

impl<'de> de::DeserializeSeed<'de> for KeySeed<'_> {
    /// The key's slot, and where its opening quote is ([`NOT_BORROWED`] if unknown).
    type Value = (Slot, u32);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl KeySeed<'_> {
    fn slot(&self, k: &str) -> Slot {
        // Typed keys first: a typed `level` is typed and, being typed, not lifted.
        if let Some(i) = self.fields.iter().position(|x| x == k) {
            return Slot::Typed(i);
        }
        match KEYS.iter().position(|&x| x == k) {
            Some(i) => Slot::Lift(i),
            None => Slot::Other,
        }
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = (Slot, u32);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    // A key without escapes is a slice of the object itself: its offset is known.
    fn visit_borrowed_str<E: de::Error>(self, k: &'de str) -> Result<Self::Value, E> {
        // The opening quote is just before the key's text.
        let at = offset(self.base, k.as_ptr() as usize - 1).unwrap_or(NOT_BORROWED);
        Ok((self.slot(k), at))
    }
    // Escaped keys arrive here, unescaped in serde_json's scratch buffer.
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Self::Value, E> {
        Ok((self.slot(k), NOT_BORROWED))
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(n))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Scalar::Composite)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Scalar::Composite)
            }
        }
        d.deserialize_any(V)
    }
}

/// The raw text of the first top-level value of `key` in a valid JSON `object` (for the rare
/// typed key whose value is an object or array). Keys with escapes are compared unescaped.
pub fn raw_value<'a>(object: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut s = Scanner::new(object);
    s.ws();
    s.expect(b'{', "").ok()?;
    loop {
        s.ws();
        if s.peek() == Some(b'}') {
            return None;
        }
        let k = s.string().ok()?;
        let matches = k.unescaped().ok()?.as_ref() == key.as_bytes();
        s.ws();
        s.expect(b':', "").ok()?;
        s.ws();
        let start = s.pos();
        s.skip_value().ok()?;
        if matches {
            return Some(&object[start..s.pos()]);
        }
        s.ws();
        if s.bump() != Some(b',') {
            return None;
        }
    }
}

/// A string value (borrowed unless it had escapes), or `None` for any other value.
struct StrOrSkip<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StrOrSkip<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrSkip<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrSkip(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(StrOrSkip(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| StrOrSkip(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| StrOrSkip(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests;
