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
    #[error("config: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("config: `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
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

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Comment lines are expanded too,
/// so an unset variable in a comment is still an error only if referenced with `${`.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
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
    Ok(out)
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
