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
mod tests {
    use super::*;

    fn rules(parsers: &[Builtin], start_pattern: Option<&str>) -> Rules {
        Rules::new(&Config {
            parsers: parsers.to_vec(),
            start_pattern: start_pattern.map(str::to_string),
            max_lines: 1000,
        })
        .unwrap()
    }

    /// Groups lines the way the assembler does and returns each group's lines joined by `\n`.
    fn group(r: &Rules, text: &str) -> Vec<String> {
        let mut out: Vec<Vec<&str>> = Vec::new();
        let mut st = GroupState::default();
        for line in text.lines() {
            if out.is_empty() {
                r.start(&mut st, line.as_bytes());
                out.push(vec![line]);
            } else if r.continues(&mut st, line.as_bytes()) {
                out.last_mut().unwrap().push(line);
            } else {
                out.push(vec![line]);
            }
        }
        out.into_iter().map(|g| g.join("\n")).collect()
    }

    #[test]
    fn config_deserializes_lowercase_and_rejects_unknown_keys() {
        let c: Config =
            serde_json::from_str(r#"{"parsers":["go","java","python"],"start_pattern":"^\\d"}"#)
                .unwrap();
        assert_eq!(c.parsers, vec![Builtin::Go, Builtin::Java, Builtin::Python]);
        assert_eq!(c.start_pattern.as_deref(), Some("^\\d"));
        let c: Config = serde_json::from_str(r#"{"start_pattern":"^x"}"#).unwrap();
        assert!(c.parsers.is_empty());
        let e = serde_json::from_str::<Config>(r#"{"parsers":["go"],"timeout":"1s"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `timeout`"), "{e}");
        let e = serde_json::from_str::<Config>(r#"{"parsers":["cobol"]}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `cobol`"), "{e}");
    }

    #[test]
    fn bad_regex_error_names_the_pattern() {
        let e = Rules::new(&Config {
            parsers: vec![],
            start_pattern: Some("^(unclosed".into()),
            max_lines: 1000,
        })
        .unwrap_err();
        assert!(matches!(e, MultilineError::BadPattern { .. }));
        assert!(e.to_string().contains("`^(unclosed`"), "{e}");
    }

    #[test]
    fn empty_config_is_rejected() {
        let e = Rules::new(&Config {
            parsers: vec![],
            start_pattern: None,
            max_lines: 1000,
        })
        .unwrap_err();
        assert!(matches!(e, MultilineError::Empty));
    }

    #[test]
    fn java_trace_with_causes_and_suppressed_is_one_event() {
        let r = rules(&[Builtin::Java], None);
        let text = "\
starting
java.lang.IllegalStateException: boom
\tat com.example.Svc.run(Svc.java:10)
    at com.example.Main.main(Main.java:5)
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.Res.close(Res.java:3)
\t\t... 1 more
Caused by: java.lang.NullPointerException
\tat com.example.Dao.get(Dao.java:7)
\t... 2 more
Caused by: java.sql.SQLException: gone
\t... 12 common frames omitted
next line";
        let g = group(&r, text);
        assert_eq!(g.len(), 3, "{g:#?}");
        assert_eq!(g[0], "starting");
        assert!(g[1].starts_with("java.lang.IllegalStateException: boom\n\tat"));
        assert!(g[1].ends_with("\t... 12 common frames omitted"));
        assert_eq!(g[2], "next line");
    }

    #[test]
    fn java_lookalikes_do_not_continue() {
        let r = rules(&[Builtin::Java], None);
        // Not indented, or no `(`: ordinary lines.
        assert_eq!(
            group(
                &r,
                "a\nat com.x.Y.z(Y.java:1)\n  at noon we met\n... 3 more"
            )
            .len(),
            4
        );
    }

    #[test]
    fn python_traceback_ends_at_its_exception_line() {
        let r = rules(&[Builtin::Python], None);
        let text = "\
INFO:root:working
Traceback (most recent call last):
  File \"/app/main.py\", line 3, in <module>
    main()
  File \"/app/main.py\", line 2, in main
    1/0
    ~^~
ZeroDivisionError: division by zero
INFO:root:next";
        let g = group(&r, text);
        assert_eq!(g.len(), 3, "{g:#?}");
        assert!(
            g[1].starts_with("Traceback") && g[1].ends_with("ZeroDivisionError: division by zero")
        );
        assert_eq!(g[2], "INFO:root:next");
    }

    #[test]
    fn python_chained_tracebacks_stay_together() {
        let r = rules(&[Builtin::Python], None);
        let text = "\
Traceback (most recent call last):
  File \"a.py\", line 1, in <module>
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"a.py\", line 3, in <module>
ValueError
done";
        let g = group(&r, text);
        assert_eq!(g.len(), 2, "{g:#?}");
        assert!(g[0].ends_with("\nValueError"));
        assert_eq!(g[1], "done");
    }

    #[test]
    fn python_traceback_interrupted_by_a_log_line_ends() {
        let r = rules(&[Builtin::Python], None);
        // A timestamped line is not an exception line: it begins a new event.
        let g = group(
            &r,
            "Traceback (most recent call last):\n  File \"a.py\", line 1\n2026-11-24 10:00:00 INFO x",
        );
        assert_eq!(g.len(), 2, "{g:#?}");
    }

    #[test]
    fn go_panic_dump_until_exit_status() {
        let r = rules(&[Builtin::Go], None);
        let text = "\
listening
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48f5a6]

goroutine 1 [running]:
main.(*Server).handle(0x0, {0x4c1e20, 0xc000012345})
\t/app/server.go:42 +0x26
main.main()
\t/app/main.go:12 +0x1d
exit status 2
after";
        let g = group(&r, text);
        assert_eq!(g.len(), 3, "{g:#?}");
        assert!(g[1].starts_with("panic: runtime error") && g[1].ends_with("exit status 2"));
        assert_eq!(g[2], "after");
    }

    #[test]
    fn go_dump_ends_at_a_line_of_another_shape() {
        let r = rules(&[Builtin::Go], None);
        let text = "\
panic: boom [recovered]
\tpanic: boom

goroutine 7 [running]:
net/http.(*conn).serve(0xc000132000, {0x7a33b8, 0xc000106ea0})
\t/usr/local/go/src/net/http/server.go:2092 +0x5d0
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3290 +0x4b4
2026-11-24T10:00:00Z restarted (attempt 2)";
        let g = group(&r, text);
        assert_eq!(g.len(), 2, "{g:#?}");
        assert_eq!(g[1], "2026-11-24T10:00:00Z restarted (attempt 2)");
    }

    #[test]
    fn builtins_only_act_when_enabled() {
        let r = rules(&[Builtin::Java], None);
        assert_eq!(
            group(&r, "panic: x\n\ngoroutine 1 [running]:\nmain.main()").len(),
            4
        );
        let r = rules(&[Builtin::Go], None);
        assert_eq!(
            group(
                &r,
                "Traceback (most recent call last):\n  File \"a.py\"\nKeyError"
            )
            .len(),
            3
        );
        assert_eq!(group(&r, "x\n\tat a.B.c(B.java:1)").len(), 2);
    }

    #[test]
    fn start_pattern_groups_non_matching_lines() {
        let r = rules(&[], Some(r"^\d{4}-\d\d-\d\d "));
        let text = "\
2026-11-24 10:00:00 ERROR failed
java.lang.RuntimeException: x
\tat a.B.c(B.java:1)
2026-11-24 10:00:01 INFO ok";
        let g = group(&r, text);
        assert_eq!(g.len(), 2, "{g:#?}");
        assert!(g[0].ends_with("(B.java:1)"));
    }

    #[test]
    fn builtins_take_precedence_over_start_pattern() {
        // `^\S` alone would split the traceback at its final exception line.
        let r = rules(&[Builtin::Python], Some(r"^\S"));
        let g = group(
            &r,
            "ERROR:root:failed\nTraceback (most recent call last):\n  File \"a.py\"\nKeyError: 'k'\nnext",
        );
        assert_eq!(
            g,
            vec![
                "ERROR:root:failed",
                "Traceback (most recent call last):\n  File \"a.py\"\nKeyError: 'k'",
                "next"
            ]
        );
        let r = rules(&[], Some(r"^\S"));
        assert_eq!(
            group(
                &r,
                "Traceback (most recent call last):\n  File \"a.py\"\nKeyError: 'k'"
            )
            .len(),
            2
        );
    }

    #[test]
    fn trailing_carriage_return_is_ignored_by_builtins() {
        let r = rules(&[Builtin::Python], None);
        assert_eq!(
            group(
                &r,
                "Traceback (most recent call last):\r\n  File \"a.py\"\r\nKeyError\r\nx"
            )
            .len(),
            2
        );
    }

    #[test]
    fn line_shape_helpers() {
        assert!(is_python_exception_line(b"KeyError: 'x'"));
        assert!(is_python_exception_line(
            b"requests.exceptions.ConnectionError: refused"
        ));
        assert!(is_python_exception_line(b"StopIteration"));
        assert!(!is_python_exception_line(b"INFO:root:x"));
        assert!(!is_python_exception_line(b"2026-11-24 x"));
        assert!(!is_python_exception_line(b""));
        assert!(is_go_dump_line(b"main.main()"));
        assert!(is_go_dump_line(b"panic({0x4a0f40?, 0xc000012345?})"));
        assert!(is_go_dump_line(b"main.(*T).M(...)"));
        assert!(!is_go_dump_line(b"server started (pid 1)"));
        assert!(!is_go_dump_line(b"(weird)"));
        assert!(is_goroutine_header(b"goroutine 1 [running]:"));
        assert!(!is_goroutine_header(b"goroutine leak detected [x]:x"));
    }
}
