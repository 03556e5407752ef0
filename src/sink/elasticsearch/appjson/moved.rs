//! The JSON object without the top-level members whose values were lifted into ECS fields
//! (`message`, `log.level`, …): each value is stored once, not twice (BENCHMARKS.md, "Index
//! size"). The parser says where those members start (`parse::json::AppLog::moved`); this cuts
//! them out, with their comma, and copies the rest byte for byte. It never decides which keys
//! move, and never parses values.

use super::string_end;

/// Copies `object` (one valid JSON object) into `out` without the members `at` (ascending: the
/// offset of a top-level member's key quote and the end of its string value, 0 if unknown; as
/// the parser found them). Returns whether any member is left.
///
/// What lies between two cut members (and before the first, after the last) is a run of kept
/// members with their commas: trimmed of whitespace and of a comma at either end, the runs
/// joined with commas are the object's members, each byte for byte.
pub fn write_without(out: &mut Vec<u8>, object: &[u8], at: &[(u32, u32)]) -> bool {
    out.push(b'{');
    let mut from = 1; // after `{`
    let mut kept = false;
    let mut run = |out: &mut Vec<u8>, stretch: &[u8]| {
        let run = trim(stretch);
        if !run.is_empty() {
            if kept {
                out.push(b',');
            }
            out.extend_from_slice(run);
            kept = true;
        }
    };
    for &(key, end) in at {
        let (start, end) = match end {
            0 => member(object, key as usize),
            end => (key as usize, end as usize),
        };
        run(out, &object[from..start]);
        from = end;
    }
    run(out, &object[from..object.len() - 1]);
    out.push(b'}');
    kept
}

/// `[start, end)` of the member whose key's opening quote is at `key`: the key, `:`, and its
/// string value (one with escapes, whose end the parser could not tell).
fn member(object: &[u8], key: usize) -> (usize, usize) {
    let key_end = string_end(object, key);
    let mut v = key_end + 1;
    while object[v] != b'"' {
        v += 1; // whitespace and `:`
    }
    (key, string_end(object, v) + 1)
}

/// A stretch between cut members without the whitespace and the comma at either end.
fn trim(stretch: &[u8]) -> &[u8] {
    let s = stretch.trim_ascii();
    let s = s.strip_prefix(b",").unwrap_or(s).trim_ascii_start();
    s.strip_suffix(b",").unwrap_or(s).trim_ascii_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The object without the members of `keys`, at the positions the parser gives them.
    fn without(object: &str, keys: &[&str]) -> (String, bool) {
        let app = crate::parse::json::parse(object.as_bytes()).unwrap();
        let at: Vec<(u32, u32)> = app
            .moved()
            .iter()
            .copied()
            .filter(|&(a, _)| {
                let rest = &object[a as usize + 1..];
                keys.contains(&&rest[..rest.find('"').unwrap()])
            })
            .collect();
        assert_eq!(at.len(), keys.len(), "{keys:?} in {object}");
        let mut out = b"x".to_vec();
        let left = write_without(&mut out, object.as_bytes(), &at);
        let text = String::from_utf8(out[1..].to_vec()).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (text, left)
    }

    #[test]
    fn the_named_members_go_with_their_commas_and_the_rest_stays_byte_for_byte() {
        let o = |s: &str| s.to_string();
        let obj = r#"{"level":"info","msg":"served","status":200}"#;
        assert_eq!(
            without(obj, &["msg", "level"]),
            (o(r#"{"status":200}"#), true)
        );
        assert_eq!(
            without(obj, &["level"]),
            (o(r#"{"msg":"served","status":200}"#), true)
        );
        assert_eq!(
            without(obj, &["msg"]),
            (o(r#"{"level":"info","status":200}"#), true)
        );
        let obj = r#"{"status":200,"level":"info","msg":"served"}"#;
        assert_eq!(
            without(obj, &["msg"]),
            (o(r#"{"status":200,"level":"info"}"#), true)
        );
        assert_eq!(
            without(obj, &["level", "msg"]),
            (o(r#"{"status":200}"#), true)
        );
        assert_eq!(
            without(obj, &["level"]),
            (o(r#"{"status":200,"msg":"served"}"#), true)
        );
        let obj = r#"{"msg":"a","status":200,"level":"b"}"#;
        assert_eq!(
            without(obj, &["msg", "level"]),
            (o(r#"{"status":200}"#), true)
        );
        let obj = r#"{"x":1,"msg":"a","level":"b","y":2,"logger":"l"}"#;
        assert_eq!(
            without(obj, &["msg", "level", "logger"]),
            (o(r#"{"x":1,"y":2}"#), true)
        );
        assert_eq!(
            without(
                r#"{ "a" : [1, {"msg":"nested"}] , "msg" : "x\"y\\" , "b" : {"c":"d"}, "n": -1.5e3 }"#,
                &["msg"]
            ),
            (
                o(r#"{"a" : [1, {"msg":"nested"}],"b" : {"c":"d"}, "n": -1.5e3}"#),
                true
            )
        );
        assert_eq!(without(r#"{"msg":"only"}"#, &["msg"]), (o("{}"), false));
        assert_eq!(
            without(r#"{ "msg" : "a" , "level":"b" }"#, &["msg", "level"]),
            (o("{}"), false)
        );
        assert_eq!(
            without(r#"{"a":true,"b":null}"#, &[]),
            (o(r#"{"a":true,"b":null}"#), true)
        );
    }

    #[test]
    fn every_subset_of_members_goes_cleanly() {
        let text = r#" { "msg" : "m" ,"a":[1,{"b":"c"}], "level":"l","n":null,
            "logger":"g" , "trace_id":"t"}"#;
        let full: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap();
        let app = crate::parse::json::parse(text.as_bytes()).unwrap();
        let at = app.moved();
        assert_eq!(at.len(), 4);
        for mask in 0u32..16 {
            let cut: Vec<(u32, u32)> = (0..4)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| at[i])
                .collect();
            let mut out = Vec::new();
            let left = write_without(&mut out, text.trim().as_bytes(), &cut);
            let got: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&out)));
            let mut want = full.clone();
            for &(c, _) in &cut {
                let rest = &text.trim()[c as usize + 1..];
                want.remove(&rest[..rest.find('"').unwrap()]);
            }
            assert_eq!(got, want, "mask {mask}");
            assert_eq!(left, !want.is_empty());
        }
    }

    #[test]
    fn the_member_the_parser_found_goes_and_other_copies_of_its_key_stay() {
        let text = r#"{"msg":{"k":1},"msg":"lifted","msg":"again"}"#;
        let app = crate::parse::json::parse(text.as_bytes()).unwrap();
        let mut out = Vec::new();
        assert!(write_without(&mut out, text.as_bytes(), app.moved()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"msg":{"k":1},"msg":"again"}"#
        );
        let text = r#"{"level":"warn","m\u0073g":"escaped","msg2":"x"}"#;
        let app = crate::parse::json::parse(text.as_bytes()).unwrap();
        let mut out = Vec::new();
        write_without(&mut out, text.as_bytes(), app.moved());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"m\u0073g":"escaped","msg2":"x"}"#
        );
    }
}
