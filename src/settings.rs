//! The shared vocabulary of configuration: the error type, durations and sizes as written in
//! YAML, `${VAR}` expansion and the key-path checks every section uses. A leaf: it imports
//! nothing of the crate, so every stage's `config.rs` can use it without reaching back.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "config: environment variable `{0}` is not set and has no default (write ${{{0}:-default}})"
    )]
    MissingEnv(String),
    #[error("config: unterminated `${{` reference")]
    UnterminatedEnv,
    /// Not `#[from]`: that would make the YAML error the source too, and `{:#}` would print
    /// its message twice.
    #[error("config: {0}")]
    Yaml(serde_norway::Error),
    #[error("config: `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl From<serde_norway::Error> for ConfigError {
    fn from(e: serde_norway::Error) -> Self {
        ConfigError::Yaml(e)
    }
}

/// The error for a bad value: `key` is the full dotted path (`input.max_line_bytes`).
pub fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Wrapper that deserializes a human duration such as `250ms` or `1m 30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a duration ({e}); write e.g. 500ms, 5s, 2m"
                ))
            })
    }
}

/// Wrapper that deserializes a byte size such as `4MiB` or `512KiB` (or a plain number of bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s
                .parse::<bytesize::ByteSize>()
                .map(|b| ByteSize(b.as_u64()))
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "`{s}` is not a size ({e}); write e.g. 512KiB, 4MiB"
                    ))
                }),
        }
    }
}

/// A size between `min` and `max` bytes (inclusive), as a `usize`.
pub fn bounded(key: &'static str, v: u64, min: u64, max: u64) -> Result<usize, ConfigError> {
    if v < min || v > max {
        return Err(invalid(
            key,
            format!(
                "{} is out of range ({} to {})",
                bytesize::ByteSize(v),
                bytesize::ByteSize(min),
                bytesize::ByteSize(max)
            ),
        ));
    }
    usize::try_from(v).map_err(|_| invalid(key, "too large for this platform"))
}

pub fn nonzero_duration(key: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(())
}

/// Expands `${VAR}` and `${VAR:-default}` (an unset or empty variable takes the default); `$$`
/// is a literal `$`. YAML comments are copied as they are, never expanded: a commented-out
/// `# api_key: ${ES_API_KEY}` (as in the reference configuration) must not need the variable.
///
/// The text is expanded before it is parsed (so a reference can stand for a number, a list or a
/// key, and parse errors keep their line numbers); comments are found with the YAML rules that
/// matter here: `#` starts a comment at the start of a line or after whitespace, but not inside a
/// quoted scalar (which may span lines), a `${...}` reference or a block scalar (`|`, `>`).
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    // Indentation of the line that opened a block scalar: more-indented (and blank) lines are its
    // content, where `#` is text.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block {
            if line.trim().is_empty() || indent > parent {
                expand_refs(line, env, &mut out)?;
                continue;
            }
            block = None;
        }
        let code = code_len(line, &mut quote);
        expand_refs(&line[..code], env, &mut out)?;
        out.push_str(&line[code..]);
        if quote.is_none() && opens_block_scalar(&line[..code]) {
            block = Some(indent);
        }
    }
    Ok(out)
}

/// The length of `line` before its comment (all of it if it has none). `quote` is the quoted
/// scalar open at the start of the line, updated to the one open at its end.
fn code_len(line: &str, quote: &mut Option<char>) -> usize {
    let bytes = line.as_bytes();
    // The last significant byte outside quotes (none at the start of the line) and whether the
    // previous byte was whitespace: a quote opens a scalar only where a scalar can begin.
    let mut last: Option<u8> = None;
    let mut after_space = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match *quote {
            Some('"') => match b {
                b'\\' => i += 1, // the escaped byte is skipped with it (`\"` does not close)
                b'"' => *quote = None,
                _ => {}
            },
            Some(_) => {
                if b == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 1; // `''` is a quote inside a single-quoted scalar
                    } else {
                        *quote = None;
                    }
                }
            }
            None => match b {
                b'#' if after_space => return i,
                b'"' | b'\''
                    if match last {
                        None => true,
                        Some(b':' | b'-' | b'?') => after_space,
                        Some(b'[' | b'{' | b',') => true,
                        Some(_) => false,
                    } =>
                {
                    *quote = Some(b as char);
                }
                // A reference is one token, so a `#` in its default is not a comment.
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    if let Some(end) = line[i..].find('}') {
                        i += end;
                    }
                }
                _ => {}
            },
        }
        after_space = b.is_ascii_whitespace();
        if !after_space && quote.is_none() {
            last = Some(b);
        }
        i += 1;
    }
    bytes.len()
}

/// Whether a line's code ends with a block scalar header (`key: |`, `- >-`, `key: |2`).
fn opens_block_scalar(code: &str) -> bool {
    let code = code.trim_end();
    let head = code.trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
    let Some(before) = head.strip_suffix('|').or_else(|| head.strip_suffix('>')) else {
        return false;
    };
    before.is_empty() || before.ends_with(' ') || before.ends_with('\t')
}

/// Expands the references of a piece of YAML text that holds no comment.
fn expand_refs(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ConfigError> {
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(ConfigError::UnterminatedEnv)?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match env(name)
                .filter(|v| !v.is_empty())
                .or(default.map(str::to_string))
            {
                Some(v) => out.push_str(&v),
                None => return Err(ConfigError::MissingEnv(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(())
}

/// For a section's own tests: reads a file that holds only the section `key` (so serde's
/// messages carry the same `key.field` path as in a whole file) and validates it.
#[cfg(test)]
pub(crate) fn section<R, T>(
    key: &str,
    yaml: &str,
    validate: impl FnOnce(R) -> Result<T, ConfigError>,
) -> Result<T, ConfigError>
where
    R: serde::de::DeserializeOwned,
{
    let mut file: std::collections::BTreeMap<String, R> = serde_norway::from_str(yaml)?;
    let raw = file
        .remove(key)
        .unwrap_or_else(|| panic!("the test's YAML has no `{key}:` section"));
    validate(raw)
}

/// For tests: `result` is a refusal whose message mentions `needle` (a key path, a value).
#[cfg(test)]
pub(crate) fn expect_refused<T: std::fmt::Debug>(result: Result<T, ConfigError>, needle: &str) {
    let err = result.expect_err("config should be refused").to_string();
    assert!(
        err.contains(needle),
        "error `{err}` should mention `{needle}`"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str) -> Result<String, ConfigError> {
        let env = |n: &str| (n == "SET").then(|| "v".to_string());
        expand_env(text, &env)
    }

    #[test]
    fn a_yaml_error_is_reported_once() {
        let yaml = serde_norway::from_str::<u32>("[1").unwrap_err();
        let message = yaml.to_string();
        let err = ConfigError::from(yaml);
        // `sluice` prints errors as anyhow's `{:#}`: the message and then every source.
        let printed = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(printed.matches(&message).count(), 1, "{printed}");
        assert!(printed.starts_with("config: "), "{printed}");
    }

    #[test]
    fn env_references_in_comments_are_not_expanded() {
        // The reference configuration's own lines: a commented-out key and a trailing comment.
        let text = "auth:\n  username: elastic\n  # api_key: ${ES_API_KEY}     # the base64 value\n\
                    #   region: ${AWS_REGION}\nnode: ${SET} # from ${UNSET}, $$ kept\n";
        assert_eq!(
            expand(text).unwrap(),
            text.replace("node: ${SET}", "node: v")
        );
    }

    #[test]
    fn a_hash_that_is_not_a_comment_does_not_stop_expansion() {
        for (text, expanded) in [
            // Inside quoted scalars (escapes and `''` included), one spanning two lines.
            ("a: \"x # ${SET}\"\n", "a: \"x # v\"\n"),
            ("a: \"x \\\" # ${SET}\"\n", "a: \"x \\\" # v\"\n"),
            ("a: 'it''s # ${SET}'\n", "a: 'it''s # v'\n"),
            ("a: \"x\n  # ${SET}\"\n", "a: \"x\n  # v\"\n"),
            ("a: [\"#\", '# ${SET}']\n", "a: [\"#\", '# v']\n"),
            // Not after whitespace, or in a reference's default.
            ("a: b#${SET}\n", "a: b#v\n"),
            ("a: ${UNSET:-x #y}\n", "a: x #y\n"),
            // In a block scalar's content; the block ends at the next less-indented line.
            (
                "a: |\n  # ${SET}\n\n  b\nc: d # ${UNSET}\n",
                "a: |\n  # v\n\n  b\nc: d # ${UNSET}\n",
            ),
        ] {
            assert_eq!(expand(text).unwrap(), expanded, "{text:?}");
        }
        // A quote inside a plain scalar opens nothing: the comment after it is still one.
        assert_eq!(
            expand("a: don't # ${UNSET}\n").unwrap(),
            "a: don't # ${UNSET}\n"
        );
        // Outside comments, references still must resolve, and the error names the variable.
        let err = expand("a: \"# ${UNSET}\"\n").unwrap_err().to_string();
        assert!(err.contains("`UNSET`"), "{err}");
        assert!(matches!(
            expand("a: ${SET\n"),
            Err(ConfigError::UnterminatedEnv)
        ));
    }
}
