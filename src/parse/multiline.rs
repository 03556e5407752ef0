//! Multiline grouping rules: which complete lines belong to the event in progress (a stack
//! trace of one of the presets, or whatever a `start_pattern` says).
//!
//! This is a pure decision per line, with a small [`GroupState`] carried between lines; it
//! holds no text and knows nothing of timeouts, offsets or buffers (that is `assemble`). The
//! line shapes of each language are in [`presets`].
//!
//! # Presets (`parsers: [java, python, go, ruby, node, dotnet, php]`)
//! A named preset is lenient: its continuation lines (indented `at …` frames, `Caused by: …`,
//! `\tfrom x.rb:1:in …`, `#0 …`, …) continue *whatever* event is in progress, so the logger's
//! own line above a trace may carry it. Python and Go are stateful: `Traceback (most recent
//! call last):` takes indented lines up to its final exception line (chained tracebacks with
//! `During handling of the above exception …` / `The above exception was the direct cause …`
//! stay in the event); `panic: `, `fatal error: ` or `goroutine N […]:` takes a Go dump (frames
//! indented with tabs or spaces, `created by`, `[signal …]`, empty lines) up to and including
//! `exit status N`, or up to the first line of another shape.
//!
//! # `auto` (the default)
//! Strict: a line begins a trace only if it has the shape of a trace's first line in some
//! language (`java.lang.X: …`, `TypeError: …`, `System.X: …`, `x.rb:3:in '…': …`,
//! `PHP Fatal error: …`, `Traceback …`, `panic: …`), and only continuation lines *of that
//! language* join it. Any other line is its own event and never waits: the assembler emits it
//! at once (see [`Rules::may_start`]), so ordinary logs, indented YAML or SQL dumps and the
//! like are never joined.
//!
//! # `start_pattern`
//! A line that the presets do not claim continues the event in progress unless it matches
//! `start_pattern`. Presets are checked first so that, e.g., with `start_pattern: '^\S'` a
//! Python traceback's final `KeyError: 'x'` line still closes its traceback. A trailing `\r`
//! is ignored by the presets (not by the pattern).
//!
//! # Bounds
//! A group holds at most `max_lines` lines (default 1000); the next line begins a new event.
//! The byte limit and the idle timeout are the assembler's.

mod presets;

use regex::bytes::Regex;

/// The `multiline` configuration (the timeout is the caller's).
#[derive(serde::Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Built-in trace recognisers.
    #[serde(default)]
    pub parsers: Vec<Builtin>,
    /// A regex: a line matching it begins a new event; other lines continue the previous one.
    #[serde(default)]
    pub start_pattern: Option<String>,
    /// Most lines in one group.
    #[serde(default = "default_max_lines")]
    pub max_lines: u32,
}

fn default_max_lines() -> u32 {
    1000
}

impl Config {
    /// `parsers: [auto]`, the default when `parse.multiline` is not configured.
    pub fn auto() -> Config {
        Config {
            parsers: vec![Builtin::Auto],
            start_pattern: None,
            max_lines: default_max_lines(),
        }
    }

    /// `parsers: [none]` without a pattern: no grouping at all.
    pub fn is_off(&self) -> bool {
        self.parsers == [Builtin::None] && self.start_pattern.is_none()
    }
}

/// A built-in trace recogniser (see the module doc for what each one groups).
#[derive(serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// Every preset, strictly: a trace is grouped only by its shape.
    Auto,
    /// No grouping.
    None,
    Go,
    Java,
    Python,
    Ruby,
    Node,
    Dotnet,
    Php,
}

impl Builtin {
    /// The value as written in configuration and annotations.
    pub fn parse(s: &str) -> Option<Builtin> {
        Some(match s {
            "auto" => Builtin::Auto,
            "none" => Builtin::None,
            "go" => Builtin::Go,
            "java" => Builtin::Java,
            "python" => Builtin::Python,
            "ruby" => Builtin::Ruby,
            "node" => Builtin::Node,
            "dotnet" => Builtin::Dotnet,
            "php" => Builtin::Php,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        match self {
            Builtin::Auto | Builtin::None => 0,
            Builtin::Java => JAVA,
            Builtin::Python => PYTHON,
            Builtin::Go => GO,
            Builtin::Ruby => RUBY,
            Builtin::Node => NODE,
            Builtin::Dotnet => DOTNET,
            Builtin::Php => PHP,
        }
    }
}

const JAVA: u8 = 1;
const PYTHON: u8 = 2;
const GO: u8 = 4;
const RUBY: u8 = 8;
const NODE: u8 = 16;
const DOTNET: u8 = 32;
const PHP: u8 = 64;
const ALL: u8 = 127;

/// Why a multiline configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum MultilineError {
    #[error("start_pattern `{pattern}` is not a valid regex: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error(
        "neither `parsers` (auto, none, java, python, go, ruby, node, dotnet, php) nor `start_pattern` is set"
    )]
    Empty,
    #[error("`{0}` cannot be combined with other parsers or a start_pattern")]
    Exclusive(&'static str),
    #[error("max_lines must be at least 1")]
    MaxLines,
}

/// Compiled rules, shared by every file's assembler.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Enabled presets (bits).
    langs: u8,
    /// Strict shape detection (`auto`).
    auto: bool,
    max_lines: u32,
    start: Option<Regex>,
}

/// What the rules know about the group in progress. `Default` is "nothing special".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupState {
    trace: Trace,
    lines: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Trace {
    #[default]
    None,
    /// A line that may be the first of a trace of these languages (bits).
    Maybe(u8),
    Java,
    /// Inside a Python traceback; whether an indented frame line has been seen yet.
    PyFrames {
        frame_seen: bool,
    },
    /// After a traceback's final exception line: a chained traceback may follow.
    PyEnded,
    /// After "During handling …" / "The above exception …": the next traceback joins.
    PyChained,
    /// Inside a Go panic or goroutine dump.
    Go,
    /// After `exit status N`: the dump is over.
    GoEnded,
    Ruby,
    Node,
    /// After a Node frame ending in ` {`: the error's properties, up to `}`.
    NodeProps,
    Dotnet,
    Php,
}

const PY_TRACEBACK: &[u8] = b"Traceback (most recent call last):";
const PY_DURING: &[u8] = b"During handling of the above exception, another exception occurred:";
const PY_CAUSE: &[u8] = b"The above exception was the direct cause of the following exception:";

impl Rules {
    /// Compiles the configuration; refuses a bad regex (naming it) or an empty configuration.
    pub fn new(cfg: &Config) -> Result<Rules, MultilineError> {
        let start = match &cfg.start_pattern {
            Some(p) => Some(Regex::new(p).map_err(|source| MultilineError::BadPattern {
                pattern: p.clone(),
                source,
            })?),
            None => None,
        };
        let only = cfg.parsers.len() == 1 && start.is_none();
        for (b, name) in [(Builtin::Auto, "auto"), (Builtin::None, "none")] {
            if cfg.parsers.contains(&b) && !only {
                return Err(MultilineError::Exclusive(name));
            }
        }
        if (cfg.parsers.is_empty() || cfg.parsers == [Builtin::None]) && start.is_none() {
            return Err(MultilineError::Empty);
        }
        if cfg.max_lines == 0 {
            return Err(MultilineError::MaxLines);
        }
        let auto = cfg.parsers == [Builtin::Auto];
        Ok(Rules {
            langs: if auto {
                ALL
            } else {
                cfg.parsers.iter().fold(0, |m, b| m | b.bit())
            },
            auto,
            max_lines: cfg.max_lines,
            start,
        })
    }

    /// Whether a group that begins with `line` might be continued by a later line. When not,
    /// the caller emits `line` at once instead of holding it for the next one: with `auto`
    /// this refuses an ordinary line in a few byte comparisons.
    #[inline]
    pub fn may_start(&self, line: &[u8]) -> bool {
        !self.auto || self.classify_start(strip_cr(line)) != Trace::None
    }

    /// [`Rules::may_start`] for the line that `state` was last reset for (by
    /// [`Rules::start`] or a `false` from [`Rules::continues`]), without looking at it again.
    #[inline]
    pub fn holds(&self, state: &GroupState) -> bool {
        !self.auto || state.trace != Trace::None
    }

    /// Resets `state` for a group that begins with `line`.
    pub fn start(&self, state: &mut GroupState, line: &[u8]) {
        state.trace = self.classify_start(strip_cr(line));
        state.lines = 1;
    }

    /// Whether `line` belongs to the group in progress (described by `state`). Either way
    /// `state` afterwards describes the group `line` is in: when this returns `false`, it has
    /// been reset as by [`Rules::start`] for the group `line` begins.
    pub fn continues(&self, state: &mut GroupState, line: &[u8]) -> bool {
        if state.lines < self.max_lines {
            let l = strip_cr(line);
            if let Some(next) = self.continuation(state.trace, l) {
                state.trace = next;
                state.lines += 1;
                return true;
            }
            if let Some(re) = &self.start
                && !re.is_match(line)
            {
                // Continued by the pattern; a trace beginning here still arms its preset.
                let t = self.classify_start(l);
                if t != Trace::None {
                    state.trace = t;
                }
                state.lines += 1;
                return true;
            }
        }
        self.start(state, line);
        false
    }

    fn classify_start(&self, l: &[u8]) -> Trace {
        // Letters, paths and `<internal:`: every preset's first line begins with one of these.
        if !matches!(
            l.first(),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'/' | b'.' | b'<')
        ) {
            return Trace::None;
        }
        let on = |bit| self.langs & bit != 0;
        if on(PYTHON) && l == PY_TRACEBACK {
            return Trace::PyFrames { frame_seen: false };
        }
        if on(GO)
            && (l.starts_with(b"panic: ")
                || l.starts_with(b"fatal error: ")
                || is_goroutine_header(l))
        {
            return Trace::Go;
        }
        if !self.auto {
            // The lenient presets need no first line.
            return Trace::None;
        }
        let mut mask = 0;
        if presets::java_start(l) {
            mask |= JAVA;
        }
        if presets::node_start(l) {
            mask |= NODE;
        }
        if presets::dotnet_start(l) {
            mask |= DOTNET;
        }
        if presets::ruby_frame(l) {
            mask |= RUBY;
        }
        if presets::php_start(l) {
            mask |= PHP;
        }
        if mask == 0 {
            Trace::None
        } else {
            Trace::Maybe(mask)
        }
    }

    /// The state after `l` if it continues a group in state `trace`.
    fn continuation(&self, trace: Trace, l: &[u8]) -> Option<Trace> {
        match trace {
            Trace::PyFrames { frame_seen } => {
                if l.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                    return Some(Trace::PyFrames { frame_seen: true });
                }
                if frame_seen && is_python_exception_line(l) {
                    return Some(Trace::PyEnded);
                }
            }
            Trace::PyEnded | Trace::PyChained => {
                if l.is_empty() {
                    return Some(trace);
                }
                if trace == Trace::PyEnded && (l == PY_DURING || l == PY_CAUSE) {
                    return Some(Trace::PyChained);
                }
                if trace == Trace::PyChained && l == PY_TRACEBACK {
                    return Some(Trace::PyFrames { frame_seen: false });
                }
            }
            Trace::Go => {
                if l.starts_with(b"exit status ") {
                    return Some(Trace::GoEnded);
                }
                if is_go_dump_line(l) {
                    return Some(Trace::Go);
                }
            }
            Trace::NodeProps => {
                if l == b"}" {
                    return Some(Trace::Node);
                }
                if l.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                    return Some(Trace::NodeProps);
                }
            }
            Trace::Maybe(mask) => {
                if let Some(t) = lang_continuation(mask, l) {
                    return Some(t);
                }
            }
            Trace::Java => return lang_continuation(JAVA, l).or_else(|| self.lenient(trace, l)),
            Trace::Ruby if presets::ruby_frame(l) => return Some(Trace::Ruby),
            Trace::Ruby => return lang_continuation(RUBY, l).or_else(|| self.lenient(trace, l)),
            Trace::Node => return lang_continuation(NODE, l).or_else(|| self.lenient(trace, l)),
            Trace::Dotnet => {
                return lang_continuation(DOTNET, l).or_else(|| self.lenient(trace, l));
            }
            // PHP prints an empty line before each `Next …` exception of a chain.
            Trace::Php if l.is_empty() => return Some(Trace::Php),
            Trace::Php => return lang_continuation(PHP, l).or_else(|| self.lenient(trace, l)),
            Trace::None | Trace::GoEnded => {}
        }
        self.lenient(trace, l)
    }

    /// Named presets only: their continuation lines continue any event.
    fn lenient(&self, trace: Trace, l: &[u8]) -> Option<Trace> {
        if self.auto {
            return None;
        }
        let t = lang_continuation(self.langs & !(PYTHON | GO), l)?;
        // Keep a Python or Go state (their own lines come next); otherwise take the language.
        Some(match trace {
            Trace::PyFrames { .. } | Trace::PyEnded | Trace::PyChained | Trace::Go => trace,
            _ => t,
        })
    }
}

/// The first of the languages in `mask` that `l` continues, as the state it leaves.
fn lang_continuation(mask: u8, l: &[u8]) -> Option<Trace> {
    if mask & JAVA != 0 && presets::java_cont(l) {
        return Some(Trace::Java);
    }
    if mask & NODE != 0 && presets::node_cont(l) {
        return Some(if l.ends_with(b" {") {
            Trace::NodeProps
        } else {
            Trace::Node
        });
    }
    if mask & DOTNET != 0 && presets::dotnet_cont(l) {
        return Some(Trace::Dotnet);
    }
    if mask & RUBY != 0 && presets::ruby_cont(l) {
        return Some(Trace::Ruby);
    }
    if mask & PHP != 0 && presets::php_cont(l) {
        return Some(Trace::Php);
    }
    None
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `NameError`, `KeyError: 'x'`, `requests.exceptions.ConnectionError: …`.
fn is_python_exception_line(l: &[u8]) -> bool {
    let Some((&first, rest)) = l.split_first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return false;
    }
    let n = rest
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        .count();
    matches!(&rest[n..], [] | [b':'] | [b':', b' ', ..])
}

/// `goroutine 1 [running]:`, `goroutine 7 gp=0xc000007c00 m=nil [select]:`.
fn is_goroutine_header(l: &[u8]) -> bool {
    l.strip_prefix(b"goroutine ")
        .is_some_and(|r| r.first().is_some_and(u8::is_ascii_digit))
        && l.ends_with(b"]:")
}

fn is_go_dump_line(l: &[u8]) -> bool {
    // Frames, locations and nested panics, however a logger indented them.
    if l.is_empty() || l[0] == b'\t' || l[0] == b' ' {
        return true;
    }
    if is_goroutine_header(l) {
        return true;
    }
    const PREFIXES: [&[u8]; 6] = [
        b"created by ",
        b"[signal ",
        b"runtime: ",
        b"panic: ",
        b"fatal error: ",
        b"...additional frames elided...",
    ];
    if PREFIXES.iter().any(|p| l.starts_with(p)) {
        return true;
    }
    // A function line: `main.main()`, `net/http.(*conn).serve(0xc000132000, {0x7a33b8, …})`.
    match (memchr::memchr(b'(', l), memchr::memchr(b' ', l)) {
        (Some(paren), space) => paren > 0 && space.is_none_or(|s| s > paren) && l.ends_with(b")"),
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests;
