//! The JSON app-log parser's tests: objects, escapes, hostile input, the ECS fields it lifts.

use super::*;

fn p(s: &str) -> Option<AppLog<'_>> {
    parse(s.as_bytes())
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/parse/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn lifts_message_level_and_time() {
    let a =
        p(r#"{"level":"info","ts":"2026-11-24T10:00:00Z","msg":"started","port":8080}"#).unwrap();
    assert_eq!(a.message.as_deref(), Some("started"));
    assert_eq!(a.level.as_deref(), Some("info"));
    assert_eq!(a.time.as_deref(), Some("2026-11-24T10:00:00Z"));
    assert!(
        matches!(a.message, Some(Cow::Borrowed(_))),
        "no escapes: borrowed"
    );
    let a = p(r#"{"message":"m","severity":"WARNING","timestamp":"t"}"#).unwrap();
    assert_eq!(
        (a.message.as_deref(), a.level.as_deref(), a.time.as_deref()),
        (Some("m"), Some("WARNING"), Some("t"))
    );
    let a = p(r#"{"lvl":"dbug","time":"t1","ts":"t2"}"#).unwrap();
    assert_eq!(
        (a.message, a.level.as_deref(), a.time.as_deref()),
        (None, Some("dbug"), Some("t1"))
    );
}

#[test]
fn preference_order_not_position_decides() {
    let a = p(r#"{"message":"second","msg":"first","severity":"s","level":"l","ts":"c","timestamp":"b","time":"a"}"#).unwrap();
    assert_eq!(a.message.as_deref(), Some("first"));
    assert_eq!(a.level.as_deref(), Some("l"));
    assert_eq!(a.time.as_deref(), Some("a"));
}

#[test]
fn only_string_values_are_lifted() {
    let a = p(r#"{"level":30,"severity":"warn","msg":{"text":"x"},"message":"fallback","time":1732442400}"#).unwrap();
    assert_eq!(
        a.level.as_deref(),
        Some("warn"),
        "numeric level skipped, next candidate used"
    );
    assert_eq!(a.message.as_deref(), Some("fallback"));
    assert_eq!(a.time, None);
    let a = p(r#"{"level":30,"msg":null}"#).unwrap();
    assert_eq!((a.level, a.message), (None, None));
    assert_eq!(
        a.object, br#"{"level":30,"msg":null}"#,
        "the numeric level stays in the object"
    );
}

#[test]
fn escaped_values_and_keys_are_decoded() {
    let a = p(r#"{"m\u0073g":"line \"one\"\n\u00e9 \ud83d\ude00"}"#).unwrap();
    assert_eq!(a.message.as_deref(), Some("line \"one\"\né 😀"));
    assert!(matches!(a.message, Some(Cow::Owned(_))));
}

#[test]
fn nested_keys_are_not_lifted_and_the_object_is_verbatim() {
    let s = "  \t{ \"ctx\" : {\"msg\":\"inner\",\"level\":\"debug\"}, \"list\":[{\"time\":\"x\"}] ,\"msg\":\"outer\" }\r\n";
    let a = p(s).unwrap();
    assert_eq!(a.message.as_deref(), Some("outer"));
    assert_eq!((a.level, a.time), (None, None));
    assert_eq!(a.object, s.trim().as_bytes());
}

#[test]
fn first_string_of_duplicate_keys_wins() {
    assert_eq!(
        p(r#"{"msg":"a","msg":"b"}"#).unwrap().message.as_deref(),
        Some("a")
    );
    assert_eq!(
        p(r#"{"msg":1,"msg":"b"}"#).unwrap().message.as_deref(),
        Some("b")
    );
}

#[test]
fn non_objects_and_invalid_json_are_none() {
    for s in [
        "",
        "   ",
        "plain text log line",
        "[1,2,3]",
        "\"a string\"",
        "42",
        "null",
        "{",
        "{\"msg\":\"unterminated}",
        "{\"msg\":\"a\",}",
        "{\"msg\" \"a\"}",
        "{\"a\":1}{\"b\":2}",
        "{\"a\":1} trailing",
        "{\"a\":1}}",
        "{'single':'quotes'}",
        "{\"a\":NaN}",
        "{\"a\":[1,2}",
        "{\"msg\":\"bad escape \\x\"}",
        "{\"msg\":\"lone surrogate \\ud800\"}",
        "{\"a\":\"\u{1}\"}",
        "prefix {\"msg\":\"x\"}",
    ] {
        assert!(p(s).is_none(), "{s:?} must not parse");
    }
    assert!(parse(b"{\"msg\":\"\xff\"}").is_none(), "invalid UTF-8");
    // Regression: serde_json skips strings without checking their UTF-8.
    assert!(
        parse(b"{\"other\":\"\xff\"}").is_none(),
        "invalid UTF-8 in a skipped value"
    );
    assert!(
        parse(b"{\"o\":{\"a\":[\"\xc3\"]},\"msg\":\"x\"}").is_none(),
        "invalid UTF-8 nested"
    );
    // Skipped values are walked iteratively by serde_json: deep nesting is valid and safe.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(p(&deep).is_some());
    let deep = format!(
        "{{\"msg\":{}1{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    assert_eq!(p(&deep).unwrap().message, None);
    assert!(p(&format!("{{\"a\":{}}}", "[".repeat(10_000))).is_none());
}

#[test]
fn empty_object_is_an_app_log_with_nothing_lifted() {
    let a = p(" {} ").unwrap();
    assert_eq!(
        a,
        AppLog {
            object: b"{}",
            message: None,
            level: None,
            time: None,
            trace_id: None,
            span_id: None,
            error: None,
            stack_trace: None,
            logger: None,
            caller: None,
            typed: Default::default(),
            moved: [(0, 0); 7],
            moved_len: 0,
        }
    );
    assert!(a.moved().is_empty());
}

#[test]
fn the_members_that_gave_a_lifted_value_are_found_once_per_group() {
    let text = r#"{"message":"m","msg":"first","level":7,"severity":"WARN","lvl":"x",
        "time":"2026-01-01T00:00:00Z","traceId":"t","error":{"kind":"x"},"err":"e",
        "stack":"s","logger":"l","caller":"a.go:1","other":"o","m\u0073g":"esc"}"#;
    let a = p(text).unwrap();
    let keys: Vec<&str> = a
        .moved()
        .iter()
        .map(|&(at, end)| {
            if end > 0 {
                assert_eq!(&text[end as usize - 1..end as usize], "\"");
            }
            let rest = &text[at as usize + 1..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    // `msg` wins over `message` whatever their order; a numeric `level` and an `error` object
    // are not lifted, so `severity` and `err` are; time and caller are never moved.
    assert_eq!(
        keys,
        ["msg", "severity", "traceId", "err", "stack", "logger"]
    );
    assert_eq!(a.message.as_deref(), Some("first"));
    assert!(
        p(r#"{"a":1,"time":"x","caller":"c"}"#)
            .unwrap()
            .moved()
            .is_empty()
    );
    // A lifted key written with escapes has no known position: not moved.
    let e = p(r#"{"m\u0073g":"escaped","a":1}"#).unwrap();
    assert_eq!(e.message.as_deref(), Some("escaped"));
    assert!(e.moved().is_empty());
}

#[test]
fn fixture_lines() {
    let text = fixture("json-app.log");
    type Lifted = (Option<String>, Option<String>, Option<String>);
    let got: Vec<Option<Lifted>> = text
        .lines()
        .map(|l| {
            parse(l.as_bytes()).map(|a| {
                (
                    a.message.map(Cow::into_owned),
                    a.level.map(Cow::into_owned),
                    a.time.map(Cow::into_owned),
                )
            })
        })
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        got,
        vec![
            // zap
            Some((s("request served"), s("info"), None)),
            // logrus
            Some((
                s("connection reset"),
                s("warning"),
                s("2026-11-24T10:00:00+01:00")
            )),
            // pino: numeric level stays in the object
            Some((s("listening"), None, None)),
            // structlog with a nested exception object
            Some((s("job failed"), s("error"), s("2026-11-24T09:00:00.123Z"))),
            // GCP-style severity
            Some((s("cache miss"), s("DEBUG"), s("2026-11-24T10:00:01.5Z"))),
            None,
            None,
        ]
    );
}
