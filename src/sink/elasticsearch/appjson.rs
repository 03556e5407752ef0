//! How a JSON application log's object goes into the document so that no value can make the
//! server refuse it: the object itself (mapped `flattened` / `flat_object`: every leaf a
//! keyword, one field whatever its keys), kept within the limits below; copies of the
//! configured keys in their declared types (`<target>_typed`), and the values that do not fit
//! their type as strings (`<target>_mistyped`). Pure functions on borrowed bytes; no I/O, and no
//! knowledge of the server (the template in `bootstrap` maps what is written here).

use std::borrow::Cow;

use crate::parse::json::{AppLog, FieldType, Scalar, raw_value};

use super::escape::{escape_into, escape_str_into};

mod moved;
pub use moved::write_without;

/// Deepest nesting written as objects; deeper values become strings of their JSON text.
/// OpenSearch 2.19 and 3.8 crash (StackOverflowError in `FlatObjectFieldMapper.parseToken`,
/// the node dies) on a flat_object ~300 deep, and Elasticsearch's parser refuses ~1000.
pub const DEPTH_LIMIT: usize = 200;

/// Longest string value (bytes of its JSON text) written whole; longer ones are cut. Lucene
/// refuses a term over 32,766 bytes (OpenSearch's flat_object refuses the document);
/// Elasticsearch's flattened field gets `ignore_above` of the same figure.
pub const VALUE_LIMIT: usize = 8191;

/// Whether `object` (valid JSON) may exceed [`DEPTH_LIMIT`] or [`VALUE_LIMIT`]. Cheap for the
/// usual line: a value over the limit needs a longer object, and a deep one as many brackets.
pub fn may_exceed_limits(object: &[u8]) -> bool {
    if object.len() > VALUE_LIMIT {
        return true;
    }
    object.len() > 2 * DEPTH_LIMIT && memchr::memchr2_iter(b'{', b'[', object).count() > DEPTH_LIMIT
}

/// Copies `object` (valid JSON) into `out` within the limits; returns whether anything changed.
/// Values nested deeper than [`DEPTH_LIMIT`] become strings holding their JSON text; strings
/// (values and nested text) are cut to [`VALUE_LIMIT`] bytes at a character boundary.
pub fn write_limited(out: &mut Vec<u8>, object: &[u8]) -> bool {
    let start = out.len();
    let mut changed = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < object.len() {
        match object[i] {
            b'"' => {
                let end = string_end(object, i);
                let raw = &object[i + 1..end];
                // A key is followed (after optional whitespace) by `:`.
                let is_key = object[end + 1..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|&b| b == b':');
                let cut = if is_key {
                    raw.len()
                } else {
                    escaped_cut(raw, VALUE_LIMIT)
                };
                changed |= cut < raw.len();
                out.push(b'"');
                out.extend_from_slice(&raw[..cut]);
                out.push(b'"');
                i = end + 1;
            }
            b'{' | b'[' if depth == DEPTH_LIMIT => {
                let end = composite_end(object, i);
                out.push(b'"');
                let text = &object[i..end];
                escape_into(out, &text[..utf8_cut(text, VALUE_LIMIT)]);
                out.push(b'"');
                changed = true;
                i = end;
            }
            b @ (b'{' | b'[') => {
                depth += 1;
                out.push(b);
                i += 1;
            }
            b @ (b'}' | b']') => {
                depth -= 1;
                out.push(b);
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    debug_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&out[start..]).is_ok());
    changed
}

/// Writes `,"<target>":<object>` without the members `moved` (see [`write_without`]) and within
/// the limits (see [`write_limited`]); nothing when only moved members were there. Returns
/// whether the limits changed anything. `scratch` holds the cut object when it must then go
/// through the limits.
pub fn write_object(
    out: &mut Vec<u8>,
    target: &str,
    object: &[u8],
    moved: &[(u32, u32)],
    scratch: &mut Vec<u8>,
) -> bool {
    let before = out.len();
    out.extend_from_slice(b",\"");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b"\":");
    if may_exceed_limits(object) {
        let object = if moved.is_empty() {
            object
        } else {
            scratch.clear();
            write_without(scratch, object, moved);
            &scratch[..]
        };
        write_limited(out, object)
    } else {
        if moved.is_empty() {
            out.extend_from_slice(object);
        } else if !write_without(out, object, moved) {
            // Nothing but lifted keys: no empty object.
            out.truncate(before);
        }
        false
    }
}

/// Index of the closing quote of the string whose opening quote is at `at`.
fn string_end(b: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[i..]) {
            Some(p) if b[i + p] == b'"' => return i + p,
            Some(p) => i += p + 2,
            // The object was validated: every string is closed.
            None => return b.len() - 1,
        }
    }
}

/// Index just past the object or array starting at `at`.
fn composite_end(b: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The longest prefix of a string's escaped JSON text of at most `max` bytes that ends neither
/// inside an escape (a surrogate pair counts as one) nor inside a UTF-8 character.
fn escaped_cut(raw: &[u8], max: usize) -> usize {
    if raw.len() <= max {
        return raw.len();
    }
    let mut i = 0;
    while i < raw.len() {
        let len = if raw[i] == b'\\' {
            match raw.get(i + 1) {
                Some(b'u')
                    if raw.get(i + 2).is_some_and(|c| matches!(c, b'd' | b'D'))
                        && raw.get(i + 3).is_some_and(|c| {
                            matches!(c, b'8'..=b'9' | b'a' | b'b' | b'A' | b'B')
                        }) =>
                {
                    12
                }
                Some(b'u') => 6,
                _ => 2,
            }
        } else {
            utf8_len(raw[i])
        };
        if i + len > max {
            break;
        }
        i += len;
    }
    i
}

/// The longest prefix of UTF-8 `text` of at most `max` bytes ending on a character boundary.
fn utf8_cut(text: &[u8], max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut i = max;
    while i > 0 && (text[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Renders the typed copies of the configured keys: `"k":value,…` into `typed`, and the values
/// that do not fit their type as `"k":"text",…` into `mistyped` (both without braces; empty
/// when there is nothing). A `null` is neither.
pub fn write_typed(
    typed: &mut Vec<u8>,
    mistyped: &mut Vec<u8>,
    fields: &[(String, FieldType)],
    app: &AppLog<'_>,
) {
    for ((key, ty), value) in fields.iter().zip(app.typed.iter()) {
        let Some(value) = value else { continue };
        if *value == Scalar::Null {
            continue;
        }
        let start = typed.len();
        if !typed.is_empty() {
            typed.push(b',');
        }
        typed.push(b'"');
        escape_str_into(typed, key);
        typed.extend_from_slice(b"\":");
        if !write_as(typed, *ty, value) {
            typed.truncate(start);
            if !mistyped.is_empty() {
                mistyped.push(b',');
            }
            mistyped.push(b'"');
            escape_str_into(mistyped, key);
            mistyped.extend_from_slice(b"\":\"");
            match value {
                Scalar::Str(s) => {
                    escape_str_into(mistyped, &s[..utf8_cut(s.as_bytes(), VALUE_LIMIT)])
                }
                Scalar::Composite => {
                    let text = raw_value(app.object, key).unwrap_or(b"");
                    escape_into(mistyped, &text[..utf8_cut(text, VALUE_LIMIT)]);
                }
                other => {
                    let _ = write_scalar_text(mistyped, other);
                }
            }
            mistyped.push(b'"');
        }
    }
}

/// Writes `value` as JSON of type `ty`; `false` (with `out` partly written) when it does not fit.
fn write_as(out: &mut Vec<u8>, ty: FieldType, value: &Scalar<'_>) -> bool {
    match (ty, value) {
        (FieldType::Keyword, Scalar::Str(s)) => {
            out.push(b'"');
            escape_str_into(out, &s[..utf8_cut(s.as_bytes(), VALUE_LIMIT)]);
            out.push(b'"');
            true
        }
        (FieldType::Keyword, Scalar::Composite) => false,
        (FieldType::Keyword, v) => {
            out.push(b'"');
            let ok = write_scalar_text(out, v);
            out.push(b'"');
            ok
        }
        (FieldType::Long, Scalar::I64(n)) => push_display(out, n),
        (FieldType::Long, Scalar::U64(n)) => i64::try_from(*n).is_ok() && push_display(out, n),
        (FieldType::Long, Scalar::F64(f)) => {
            f.fract() == 0.0 && f.abs() < 9.0e15 && push_display(out, &(*f as i64))
        }
        (FieldType::Long, Scalar::Str(s)) => {
            s.trim().parse::<i64>().is_ok_and(|n| push_display(out, &n))
        }
        (FieldType::Double, Scalar::I64(n)) => push_display(out, n),
        (FieldType::Double, Scalar::U64(n)) => push_display(out, n),
        (FieldType::Double, Scalar::F64(f)) => f.is_finite() && push_display(out, f),
        (FieldType::Double, Scalar::Str(s)) => s
            .trim()
            .parse::<f64>()
            .is_ok_and(|f| f.is_finite() && push_display(out, &f)),
        (FieldType::Boolean, Scalar::Bool(b)) => push_display(out, b),
        (FieldType::Boolean, Scalar::Str(s)) if s == "true" || s == "false" => {
            out.extend_from_slice(s.as_bytes());
            true
        }
        (FieldType::Date, Scalar::Str(s)) if crate::parse::timestamp::is_rfc3339(s.as_bytes()) => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
            true
        }
        // Epoch milliseconds (the template's date format accepts them).
        (FieldType::Date, Scalar::I64(n)) if *n >= 0 => push_display(out, n),
        (FieldType::Date, Scalar::U64(n)) if i64::try_from(*n).is_ok() => push_display(out, n),
        _ => false,
    }
}

fn push_display(out: &mut Vec<u8>, v: &dyn std::fmt::Display) -> bool {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    write!(out, "{v}").is_ok()
}

/// The text of a scalar (numbers and booleans as JSON writes them); `false` for null/composite.
fn write_scalar_text(out: &mut Vec<u8>, v: &Scalar<'_>) -> bool {
    match v {
        Scalar::Str(s) => {
            escape_str_into(out, s);
            true
        }
        Scalar::I64(n) => push_display(out, n),
        Scalar::U64(n) => push_display(out, n),
        Scalar::F64(f) => push_display(out, f),
        Scalar::Bool(b) => push_display(out, b),
        Scalar::Null | Scalar::Composite => false,
    }
}

/// A Go `caller` (`app/server.go:123`) as the file name and line; the whole value as the file
/// name when it has no `:<digits>` suffix.
pub fn split_caller(caller: &str) -> (&str, Option<u64>) {
    match caller.rsplit_once(':') {
        Some((file, line)) if !file.is_empty() => match line.parse::<u64>() {
            Ok(n) => (file, Some(n)),
            Err(_) => (caller, None),
        },
        _ => (caller, None),
    }
}

/// The app's own time as RFC 3339, when it is one or close to one: Mattermost and other Go
/// loggers write `2026-11-24 10:00:00.123 Z` (a space for `T`, a space before the zone).
pub fn app_time_rfc3339(t: &str) -> Option<Cow<'_, str>> {
    let b = t.as_bytes();
    if crate::parse::timestamp::is_rfc3339(b) {
        return Some(Cow::Borrowed(t));
    }
    if b.len() < 20 || b[10] != b' ' {
        return None;
    }
    let mut s = String::with_capacity(b.len());
    s.push_str(&t[..10]);
    s.push('T');
    let rest = &t[11..];
    // ` Z`, ` +01:00`: the zone after one space.
    match rest.rsplit_once(' ') {
        Some((clock, zone)) => {
            s.push_str(clock);
            s.push_str(zone);
        }
        None => s.push_str(rest),
    }
    crate::parse::timestamp::is_rfc3339(s.as_bytes()).then_some(Cow::Owned(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::json::parse_typed;

    fn deep(n: usize) -> String {
        let mut s = "\"x\"".to_string();
        for _ in 0..n {
            s = format!("{{\"a\":{s}}}");
        }
        s
    }

    /// Maximum nesting of valid JSON text (serde_json's `Value` stops at 128 levels).
    fn depth_of(b: &[u8]) -> usize {
        let (mut d, mut max, mut i) = (0usize, 0usize, 0);
        while i < b.len() {
            match b[i] {
                b'"' => i = string_end(b, i),
                b'{' | b'[' => {
                    d += 1;
                    max = max.max(d);
                }
                b'}' | b']' => d -= 1,
                _ => {}
            }
            i += 1;
        }
        max
    }

    #[test]
    fn objects_within_the_limits_are_left_alone() {
        let d = deep(DEPTH_LIMIT);
        assert!(!may_exceed_limits(br#"{"a":{"b":[1,2,{"c":"d"}]}}"#));
        let mut out = Vec::new();
        assert!(!write_limited(&mut out, d.as_bytes()));
        assert_eq!(out, d.as_bytes());
    }

    #[test]
    fn deeper_values_become_strings_of_their_text() {
        let d = deep(DEPTH_LIMIT + 50);
        assert!(may_exceed_limits(d.as_bytes()));
        let mut out = Vec::new();
        assert!(write_limited(&mut out, d.as_bytes()));
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok());
        assert_eq!(depth_of(&out), DEPTH_LIMIT);
        // The innermost written value is a string holding the remaining 50 levels.
        let at = DEPTH_LIMIT * 5;
        let inner = &out[at..out.len() - DEPTH_LIMIT];
        let text: String = serde_json::from_slice(inner).unwrap();
        assert_eq!(text, deep(50));
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let long = format!("{}é\\\"{}", "x".repeat(VALUE_LIMIT - 2), "y".repeat(10));
        let obj = format!(r#"{{"k":"{long}","ok":"short"}}"#);
        assert!(may_exceed_limits(obj.as_bytes()));
        let mut out = Vec::new();
        assert!(write_limited(&mut out, obj.as_bytes()));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let k = v["k"].as_str().unwrap();
        assert!(
            k.len() <= VALUE_LIMIT && k.starts_with("xxx"),
            "{}",
            k.len()
        );
        assert_eq!(v["ok"], "short");
        // An escape is never split.
        let obj = format!(
            r#"{{"k":"{}\u00e9\ud83d\ude00"}}"#,
            "x".repeat(VALUE_LIMIT - 3)
        );
        let mut out = Vec::new();
        write_limited(&mut out, obj.as_bytes());
        assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
    }

    fn typed(line: &str, fields: &[(&str, FieldType)]) -> (String, String) {
        let names: Vec<String> = fields.iter().map(|(k, _)| k.to_string()).collect();
        let fields: Vec<(String, FieldType)> =
            fields.iter().map(|(k, t)| (k.to_string(), *t)).collect();
        let app = parse_typed(line.as_bytes(), &names).unwrap();
        let (mut t, mut m) = (Vec::new(), Vec::new());
        write_typed(&mut t, &mut m, &fields, &app);
        (String::from_utf8(t).unwrap(), String::from_utf8(m).unwrap())
    }

    #[test]
    fn values_that_fit_are_typed_and_others_kept_as_strings() {
        use FieldType::*;
        let f = [
            ("status", Long),
            ("latency_ms", Double),
            ("ok", Boolean),
            ("at", Date),
            ("user", Keyword),
        ];
        assert_eq!(
            typed(
                r#"{"status":"503","latency_ms":1.5,"ok":true,"at":"2026-11-24T10:00:00Z","user":42}"#,
                &f
            ),
            (
                r#""status":503,"latency_ms":1.5,"ok":true,"at":"2026-11-24T10:00:00Z","user":"42""#
                    .into(),
                String::new()
            )
        );
        assert_eq!(
            typed(
                r#"{"status":{"code":5},"latency_ms":"slow","ok":"yes","at":"yesterday","user":[1]}"#,
                &f
            ),
            (
                String::new(),
                r#""status":"{\"code\":5}","latency_ms":"slow","ok":"yes","at":"yesterday","user":"[1]""#
                    .into()
            )
        );
        assert_eq!(
            typed(r#"{"status":null,"other":1}"#, &f),
            (String::new(), String::new())
        );
        assert_eq!(
            typed(r#"{"status":18446744073709551615}"#, &f).1,
            r#""status":"18446744073709551615""#
        );
    }

    #[test]
    fn callers_and_app_times() {
        assert_eq!(
            split_caller("app/server.go:123"),
            ("app/server.go", Some(123))
        );
        assert_eq!(split_caller("server.go"), ("server.go", None));
        assert_eq!(split_caller("a:b"), ("a:b", None));
        assert_eq!(
            app_time_rfc3339("2026-11-24 10:55:33.148 Z").as_deref(),
            Some("2026-11-24T10:55:33.148Z")
        );
        assert_eq!(
            app_time_rfc3339("2026-11-24T10:55:33Z").as_deref(),
            Some("2026-11-24T10:55:33Z")
        );
        assert_eq!(app_time_rfc3339("yesterday"), None);
    }
}
