//! Index names (`elasticsearch.index`, `elasticsearch.dead_letter_index`): `%Y`, `%m` and `%d`
//! from the event's date, and field references (`{kubernetes.namespace}`,
//! `{kubernetes.namespace_labels.tenant|shared}`, see [`super::route`]) from the file's
//! metadata. Checked once when the configuration is read; a file's references are resolved once
//! when its metadata is rendered ([`IndexPattern::resolve`]), the date by the encoder when it
//! changes. Imports nothing of the crate but the configuration vocabulary.

use std::fmt::Write as _;

use super::route::{self, Field, Lookup};
use crate::settings::{ConfigError, invalid};

/// An index name with `%Y`, `%m` and `%d` taken from the event's own timestamp (UTC), never
/// from the clock at send time, so that a replay lands in the same index; and with field
/// references taken from the file's metadata, once per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPattern {
    /// As written (for a resolved pattern: its literal parts with `%` doubled, and the date
    /// parts): two patterns with the same text render the same names.
    pattern: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Year,
    Month,
    Day,
    Ref {
        field: Field,
        fallback: Option<String>,
    },
}

impl IndexPattern {
    pub fn parse(key: &'static str, s: &str) -> Result<Self, ConfigError> {
        if s.is_empty() {
            return Err(invalid(key, "must not be empty"));
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let part = match chars.next() {
                        Some('Y') => Part::Year,
                        Some('m') => Part::Month,
                        Some('d') => Part::Day,
                        Some('%') => {
                            lit.push('%');
                            continue;
                        }
                        other => {
                            return Err(invalid(
                                key,
                                format!(
                                    "`%{}` is not supported; use %Y, %m, %d or %%",
                                    other.map(String::from).unwrap_or_default()
                                ),
                            ));
                        }
                    };
                    flush(&mut parts, &mut lit);
                    parts.push(part);
                }
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(invalid(
                                    key,
                                    format!("`{s}`: a `{{` is not closed by `}}`"),
                                ));
                            }
                            Some(c) => inner.push(c),
                        }
                    }
                    flush(&mut parts, &mut lit);
                    parts.push(reference(key, &inner)?);
                }
                '}' => {
                    return Err(invalid(key, format!("`{s}`: a `}}` without its `{{`")));
                }
                c => {
                    literal_char(key, s, c)?;
                    lit.push(c);
                }
            }
        }
        flush(&mut parts, &mut lit);
        if let Some(Part::Lit(l)) = parts.first()
            && l.starts_with(['-', '_', '+'])
        {
            return Err(invalid(key, "an index name may not start with -, _ or +"));
        }
        Ok(IndexPattern {
            pattern: s.to_string(),
            parts,
        })
    }

    /// Whether the name depends on the date at all.
    pub fn is_dated(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Year | Part::Month | Part::Day))
    }

    /// Whether the name holds field references (routing).
    pub fn is_routed(&self) -> bool {
        self.fields().next().is_some()
    }

    /// The fields the pattern references.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref { field, .. } => Some(field),
            _ => None,
        })
    }

    /// The pattern with every field reference replaced by its value from `values` (made safe:
    /// [`route::push_value`]), else its fallback, else [`route::MISSING`]; the date parts stay.
    /// `data_stream`: `-` in values becomes `_` (Elastic's `type-dataset-namespace` naming); the
    /// dataset never keeps a `-` in any mode, so it cannot reach past the `-` that follows it.
    pub fn resolve(&self, values: &dyn Lookup, data_stream: bool) -> IndexPattern {
        let mut parts: Vec<Part> = Vec::with_capacity(self.parts.len());
        let mut lit = String::new();
        for p in &self.parts {
            match p {
                Part::Ref { field, fallback } => {
                    let no_dash = data_stream || *field == Field::Dataset;
                    let before = lit.len();
                    if let Some(v) = values.value(field) {
                        route::push_value(&mut lit, v, no_dash);
                    }
                    if lit.len() == before {
                        lit.push_str(fallback.as_deref().unwrap_or(route::MISSING));
                    }
                }
                Part::Lit(l) => lit.push_str(l),
                date => {
                    flush(&mut parts, &mut lit);
                    parts.push(date.clone());
                }
            }
        }
        flush(&mut parts, &mut lit);
        let mut pattern = String::new();
        for p in &parts {
            match p {
                Part::Lit(l) => pattern.push_str(&l.replace('%', "%%")),
                Part::Year => pattern.push_str("%Y"),
                Part::Month => pattern.push_str("%m"),
                Part::Day => pattern.push_str("%d"),
                // Resolved above.
                Part::Ref { .. } => {}
            }
        }
        IndexPattern { pattern, parts }
    }

    /// A resolved pattern as text: its literal parts with `%` doubled, and its date parts
    /// (the checkpoint keeps each file's route in this form; [`IndexPattern::from_resolved`]).
    pub fn resolved_text(&self) -> &str {
        &self.pattern
    }

    /// A resolved pattern read back from [`IndexPattern::resolved_text`]: literal text (a `{`
    /// in it is a literal too) and `%Y`, `%m`, `%d`, `%%`. `None` when the text is not one.
    pub fn from_resolved(text: &str) -> Option<IndexPattern> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let part = match chars.next()? {
                'Y' => Part::Year,
                'm' => Part::Month,
                'd' => Part::Day,
                '%' => {
                    lit.push('%');
                    continue;
                }
                _ => return None,
            };
            flush(&mut parts, &mut lit);
            parts.push(part);
        }
        flush(&mut parts, &mut lit);
        (!parts.is_empty()).then(|| IndexPattern {
            pattern: text.to_string(),
            parts,
        })
    }

    /// Renders the index name for a UTC date, made legal as a whole ([`route::legalise`]). A
    /// reference not resolved renders as its fallback, else [`route::MISSING`].
    pub fn render(&self, (year, month, day): (i32, u32, u32)) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 4);
        for p in &self.parts {
            // Writing into a String cannot fail.
            let _ = match p {
                Part::Lit(l) => {
                    out.push_str(l);
                    Ok(())
                }
                Part::Year => write!(out, "{year:04}"),
                Part::Month => write!(out, "{month:02}"),
                Part::Day => write!(out, "{day:02}"),
                Part::Ref { fallback, .. } => {
                    out.push_str(fallback.as_deref().unwrap_or(route::MISSING));
                    Ok(())
                }
            };
        }
        route::legalise(&mut out);
        out
    }

    /// The names this pattern can render to, as an index template pattern: each date part and
    /// each reference becomes `*` (`logs-{kubernetes.namespace}-%Y.%m.%d` → `logs-*-*.*.*`).
    pub fn glob(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                _ if !out.ends_with('*') => out.push('*'),
                _ => {}
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

fn flush(parts: &mut Vec<Part>, lit: &mut String) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

fn literal_char(key: &'static str, s: &str, c: char) -> Result<(), ConfigError> {
    if c.is_uppercase() || route::is_forbidden(c) {
        return Err(invalid(
            key,
            format!(
                "`{s}` is not a valid index name: `{c}` is not allowed (lowercase, no \\ / * ? \" < > | space , # :)"
            ),
        ));
    }
    Ok(())
}

/// `field` or `field|fallback`.
fn reference(key: &'static str, inner: &str) -> Result<Part, ConfigError> {
    let (path, fallback) = match inner.split_once('|') {
        Some((p, f)) => (p.trim(), Some(f.trim())),
        None => (inner.trim(), None),
    };
    let Some(field) = Field::parse(path) else {
        return Err(invalid(
            key,
            format!(
                "`{{{inner}}}`: `{path}` is not a field sluice routes on; use kubernetes.namespace, kubernetes.pod.name, kubernetes.container.name, kubernetes.labels.<key>, kubernetes.namespace_labels.<key>, kubernetes.<{}>.name, orchestrator.cluster.name or sluice.dataset",
                route::WORKLOAD_KINDS.join("|")
            ),
        ));
    };
    let fallback = match fallback {
        None => None,
        Some("") => {
            return Err(invalid(
                key,
                format!("`{{{inner}}}`: the fallback after `|` is empty"),
            ));
        }
        Some(f) => {
            for c in f.chars() {
                if matches!(c, '%' | '{' | '}') {
                    return Err(invalid(
                        key,
                        format!("`{{{inner}}}`: the fallback `{f}` may not hold `{c}`"),
                    ));
                }
                literal_char(key, f, c)?;
            }
            Some(f.to_string())
        }
    };
    Ok(Part::Ref { field, fallback })
}

#[cfg(test)]
mod tests;
