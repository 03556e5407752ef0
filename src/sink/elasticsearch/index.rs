//! Index names with `%Y`, `%m` and `%d` from the event's date (`elasticsearch.index`,
//! `elasticsearch.dead_letter_index`): checked once when the configuration is read, rendered by
//! the encoder when the date changes. Imports nothing of the crate but the configuration vocabulary.

use crate::settings::{ConfigError, invalid};

/// An index name with `%Y`, `%m` and `%d` taken from the event's own timestamp (UTC), never
/// from the clock at send time, so that a replay lands in the same index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPattern {
    pattern: String,
}

impl IndexPattern {
    pub fn parse(key: &'static str, s: &str) -> Result<Self, ConfigError> {
        if s.is_empty() {
            return Err(invalid(key, "must not be empty"));
        }
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('Y' | 'm' | 'd' | '%') => {}
                    other => {
                        return Err(invalid(
                            key,
                            format!(
                                "`%{}` is not supported; use %Y, %m, %d or %%",
                                other.map(String::from).unwrap_or_default()
                            ),
                        ));
                    }
                }
            } else if c == '{' || c == '}' {
                // Field references (`{kubernetes.namespace}`) are routing, not built yet: a
                // brace would otherwise end up in the index name as written.
                return Err(invalid(
                    key,
                    format!(
                        "`{s}`: `{{…}}` field references are not supported (yet); use a fixed name with %Y, %m, %d"
                    ),
                ));
            } else if c.is_ascii_uppercase()
                || matches!(
                    c,
                    '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
                )
            {
                return Err(invalid(
                    key,
                    format!(
                        "`{s}` is not a valid index name: `{c}` is not allowed (lowercase, no \\ / * ? \" < > | space , # :)"
                    ),
                ));
            }
        }
        if s.starts_with(['-', '_', '+']) {
            return Err(invalid(key, "an index name may not start with -, _ or +"));
        }
        Ok(IndexPattern {
            pattern: s.to_string(),
        })
    }

    /// Whether the name depends on the date at all.
    pub fn is_dated(&self) -> bool {
        self.pattern.contains("%Y") || self.pattern.contains("%m") || self.pattern.contains("%d")
    }

    /// Renders the index name for a UTC date.
    pub fn render(&self, (year, month, day): (i32, u32, u32)) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 4);
        let mut chars = self.pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&format!("{year:04}")),
                Some('m') => out.push_str(&format!("{month:02}")),
                Some('d') => out.push_str(&format!("{day:02}")),
                Some('%') => out.push('%'),
                // Validated in `parse`: no other character follows a `%`.
                _ => {}
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_pattern_renders_event_date() {
        let p = IndexPattern::parse("k", "logs-%Y.%m.%d").unwrap();
        assert_eq!(p.render((2026, 3, 7)), "logs-2026.03.07");
        assert!(p.is_dated());
        assert!(!IndexPattern::parse("k", "logs").unwrap().is_dated());
    }

    #[test]
    fn braces_are_refused_rather_than_written_into_the_name() {
        let err = IndexPattern::parse("elasticsearch.index", "logs-{kubernetes.namespace}-%Y")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("elasticsearch.index") && err.contains("field references"),
            "{err}"
        );
        assert!(IndexPattern::parse("k", "logs-}").is_err());
    }
}
