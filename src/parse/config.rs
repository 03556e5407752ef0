//! The `parse:` configuration section: the container log format, the largest event, JSON
//! application logs and multiline grouping. Imports nothing of the crate but the configuration
//! vocabulary ([`crate::settings`]).

use std::time::Duration;

use serde::Deserialize;

use super::multiline;
use crate::settings::{ByteSize, ConfigError, HumanDuration, bounded, invalid, nonzero_duration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParse {
    #[serde(default)]
    format: FormatChoice,
    #[serde(default = "default_max_event_bytes")]
    max_event_bytes: ByteSize,
    #[serde(default)]
    json: RawJson,
    #[serde(default)]
    multiline: Option<RawMultiline>,
}

impl Default for RawParse {
    fn default() -> Self {
        RawParse {
            format: FormatChoice::default(),
            max_event_bytes: default_max_event_bytes(),
            json: RawJson::default(),
            multiline: None,
        }
    }
}

fn default_max_event_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

/// The container log format: detected per file from its first line, or forced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    #[default]
    Auto,
    Cri,
    Docker,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJson {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_json_target")]
    target: String,
    /// Top-level keys indexed with a type besides the flattened object (`status: long`).
    #[serde(default)]
    fields: std::collections::BTreeMap<String, super::json::FieldType>,
    /// Keep the keys lifted into ECS fields (`msg`, `level`, …) in the object as well.
    #[serde(default)]
    keep_lifted: bool,
}

impl Default for RawJson {
    fn default() -> Self {
        RawJson {
            enabled: true,
            target: default_json_target(),
            fields: Default::default(),
            keep_lifted: false,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_json_target() -> String {
    "json".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultiline {
    #[serde(flatten)]
    rules: multiline::Config,
    #[serde(default = "default_multiline_timeout")]
    timeout: HumanDuration,
}

fn default_multiline_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

/// Validated `parse:`.
#[derive(Debug, Clone)]
pub struct ParseConfig {
    pub format: FormatChoice,
    pub max_event_bytes: usize,
    /// Object under which JSON application log fields go; `None` when JSON parsing is off.
    pub json_target: Option<String>,
    /// `parse.json.fields`: top-level keys copied, typed, to `<target>_typed`.
    pub json_fields: Vec<(String, super::json::FieldType)>,
    /// `parse.json.keep_lifted`: the lifted keys stay in the object too (copies); by default
    /// they are moved out of it.
    pub json_keep_lifted: bool,
    pub multiline: Option<(multiline::Config, Duration)>,
}

pub(crate) fn validate(parse: RawParse) -> Result<ParseConfig, ConfigError> {
    let max_event_bytes = bounded(
        "parse.max_event_bytes",
        parse.max_event_bytes.0,
        1 << 10,
        64 << 20,
    )?;
    let json_target = if parse.json.enabled {
        let t = parse.json.target;
        if t.is_empty() || t.contains('.') || t.starts_with('_') || t.starts_with('@') {
            return Err(invalid(
                "parse.json.target",
                format!("`{t}` must be a plain field name (no dots, not starting with _ or @)"),
            ));
        }
        // The top-level fields of the document the sink writes; named here as plain strings so
        // that parse keeps knowing nothing of the sink.
        if matches!(
            t.as_str(),
            "message"
                | "log"
                | "kubernetes"
                | "container"
                | "host"
                | "agent"
                | "event"
                | "orchestrator"
                | "error"
                | "trace"
                | "span"
                | "tags"
        ) {
            return Err(invalid(
                "parse.json.target",
                format!("`{t}` is a field sluice writes itself; choose another name"),
            ));
        }
        Some(t)
    } else {
        None
    };
    let json_fields: Vec<_> = parse.json.fields.into_iter().collect();
    if json_fields.len() > super::json::MAX_TYPED_FIELDS {
        return Err(invalid(
            "parse.json.fields",
            format!(
                "at most {} keys can be typed",
                super::json::MAX_TYPED_FIELDS
            ),
        ));
    }
    if let Some((k, _)) = json_fields
        .iter()
        .find(|(k, _)| k.is_empty() || k.contains('.') || k.starts_with('_'))
    {
        return Err(invalid(
            "parse.json.fields",
            format!("`{k}` must be a top-level key (no dots, not starting with _)"),
        ));
    }
    let multiline = match parse.multiline {
        // Not configured: traces are recognised by their shape.
        None => Some((multiline::Config::auto(), default_multiline_timeout().0)),
        Some(m) if m.rules.is_off() => None,
        Some(m) => {
            multiline::Rules::new(&m.rules)
                .map_err(|e| invalid("parse.multiline", e.to_string()))?;
            nonzero_duration("parse.multiline.timeout", m.timeout.0)?;
            Some((m.rules, m.timeout.0))
        }
    };
    Ok(ParseConfig {
        format: parse.format,
        max_event_bytes,
        json_target,
        json_fields,
        json_keep_lifted: parse.json.keep_lifted,
        multiline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{expect_refused, section};

    #[test]
    fn json_fields_are_typed_top_level_keys() {
        use crate::parse::json::FieldType;
        let yaml = "parse:\n  json:\n    fields: {status: long, latency_ms: double}\n";
        let c = section("parse", yaml, validate).unwrap();
        assert_eq!(
            c.json_fields,
            vec![
                ("latency_ms".to_string(), FieldType::Double),
                ("status".to_string(), FieldType::Long)
            ]
        );
    }

    #[test]
    fn validate_rejects_bad_json_fields() {
        let yaml = "parse:\n  json:\n    fields: {a.b: long}\n";
        expect_refused(section("parse", yaml, validate), "parse.json.fields");
        let yaml = "parse:\n  json:\n    fields: {a: integer}\n";
        expect_refused(section("parse", yaml, validate), "integer");
    }

    #[test]
    fn validate_rejects_bad_json_target() {
        let yaml = "parse:\n  json:\n    target: a.b\n";
        expect_refused(section("parse", yaml, validate), "parse.json.target");
        let yaml = "parse:\n  json:\n    target: kubernetes\n";
        expect_refused(section("parse", yaml, validate), "parse.json.target");
    }

    #[test]
    fn multiline_defaults_to_auto_and_none_turns_it_off() {
        let c = section("parse", "parse:\n  format: auto\n", validate).unwrap();
        let (rules, timeout) = c.multiline.expect("auto by default");
        assert_eq!(rules, multiline::Config::auto());
        assert_eq!(timeout, Duration::from_secs(1));
        let yaml = "parse:\n  multiline:\n    parsers: [none]\n";
        assert!(
            section("parse", yaml, validate)
                .unwrap()
                .multiline
                .is_none()
        );
        let yaml = "parse:\n  multiline:\n    parsers: [ruby, php]\n    max_lines: 50\n";
        let (rules, _) = section("parse", yaml, validate).unwrap().multiline.unwrap();
        assert_eq!(rules.max_lines, 50);
    }

    #[test]
    fn validate_rejects_bad_multiline() {
        let yaml = "parse:\n  multiline:\n    parsers: [auto, java]\n";
        expect_refused(
            section("parse", yaml, validate),
            "`auto` cannot be combined",
        );
        let yaml = "parse:\n  multiline:\n    parsers: [auto]\n    start_pattern: x\n";
        expect_refused(
            section("parse", yaml, validate),
            "`auto` cannot be combined",
        );
        let yaml = "parse:\n  multiline:\n    parsers: [java]\n    max_lines: 0\n";
        expect_refused(section("parse", yaml, validate), "max_lines");
    }
}
