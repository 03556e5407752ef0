//! The JSON object without the top-level members whose values were lifted into ECS fields
//! (`message`, `log.level`, …): each value is stored once, not twice (BENCHMARKS.md, "Index
//! size"). A byte walk over the validated object that copies whole members; nothing is parsed
//! into values, and nothing here decides which keys move (`parse::json::AppLog::moved` does).

use super::{composite_end, string_end};

/// Copies `object` (one valid JSON object) into `out` without the first top-level member with
/// a string value of each key in `keys` (raw key bytes: a key written with escapes is not
/// matched, and stays). Returns the number of members left.
pub fn write_without(out: &mut Vec<u8>, object: &[u8], keys: &[&str]) -> usize {
    // At most 7 keys (one per lifted group): a bit each for "already dropped".
    let mut dropped = 0u8;
    let mut left = 0;
    out.push(b'{');
    let mut i = skip_ws(object, 1);
    while i < object.len() && object[i] == b'"' {
        let member = i;
        let key_end = string_end(object, i);
        let key = &object[i + 1..key_end];
        i = skip_ws(object, key_end + 1) + 1; // past `:`
        i = skip_ws(object, i);
        let is_string = object[i] == b'"';
        let value_end = match object[i] {
            b'"' => string_end(object, i) + 1,
            b'{' | b'[' => composite_end(object, i),
            _ => scalar_end(object, i),
        };
        i = skip_ws(object, value_end);
        let next = if object.get(i) == Some(&b',') {
            skip_ws(object, i + 1)
        } else {
            i
        };
        let drop = is_string
            && keys.iter().enumerate().any(|(k, name)| {
                let hit = dropped & (1 << k) == 0 && name.as_bytes() == key;
                if hit {
                    dropped |= 1 << k;
                }
                hit
            });
        if !drop {
            if left > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&object[member..value_end]);
            left += 1;
        }
        i = next;
    }
    out.push(b'}');
    left
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past a number, `true`, `false` or `null` starting at `at`.
fn scalar_end(b: &[u8], at: usize) -> usize {
    let mut i = at;
    while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without(object: &str, keys: &[&str]) -> (String, usize) {
        let mut out = b"x".to_vec();
        let left = write_without(&mut out, object.as_bytes(), keys);
        let text = String::from_utf8(out[1..].to_vec()).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
        (text, left)
    }

    #[test]
    fn the_named_members_go_and_the_rest_stays_byte_for_byte() {
        assert_eq!(
            without(
                r#"{"level":"info","msg":"served","status":200}"#,
                &["msg", "level"]
            ),
            (r#"{"status":200}"#.to_string(), 1)
        );
        assert_eq!(
            without(
                r#"{ "a" : [1, {"msg":"nested"}] , "msg" : "x\"y\\" , "b" : {"c":"d"}, "n": -1.5e3 }"#,
                &["msg"]
            ),
            (
                r#"{"a" : [1, {"msg":"nested"}],"b" : {"c":"d"},"n": -1.5e3}"#.to_string(),
                3
            )
        );
        assert_eq!(
            without(r#"{"msg":"only"}"#, &["msg"]),
            ("{}".to_string(), 0)
        );
        assert_eq!(without("{}", &["msg"]), ("{}".to_string(), 0));
        assert_eq!(
            without(r#"{"a":true,"b":null}"#, &[]),
            (r#"{"a":true,"b":null}"#.to_string(), 2)
        );
    }

    #[test]
    fn only_the_first_string_member_of_a_key_goes() {
        // The parser lifts the first *string* value: an object under the key stays, as does a
        // second occurrence; an escaped spelling of the key is not matched.
        assert_eq!(
            without(r#"{"msg":{"k":1},"msg":"lifted","msg":"again"}"#, &["msg"]),
            (r#"{"msg":{"k":1},"msg":"again"}"#.to_string(), 2)
        );
        assert_eq!(
            without(r#"{"m\u0073g":"escaped","level":"x"}"#, &["msg", "level"]),
            (r#"{"m\u0073g":"escaped"}"#.to_string(), 1)
        );
    }
}
