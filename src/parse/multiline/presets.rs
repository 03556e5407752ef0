//! Line shapes of the built-in trace presets: which lines can begin a trace of a language and
//! which lines continue one. Pure byte tests on one line (a trailing `\r` already removed);
//! no state, no regex, no allocation. The state machine that strings them together is
//! `multiline.rs`.
//!
//! Every test looks at the first byte (or a fixed prefix) before anything else, so the
//! ordinary lines of a log (JSON, timestamps, klog, access logs) are refused in a few
//! comparisons: this runs on every line when `auto` is on.

use memchr::memchr;

/// A line without its leading spaces and tabs.
pub(super) fn trim_indent(l: &[u8]) -> &[u8] {
    let n = l.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &l[n..]
}

fn indented(l: &[u8]) -> bool {
    matches!(l.first(), Some(b' ' | b'\t'))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// `a.b.C` (at least one dot, every segment an identifier); returns the last segment.
fn qualified_name(t: &[u8]) -> Option<&[u8]> {
    if t.is_empty() || t.first() == Some(&b'.') || t.last() == Some(&b'.') {
        return None;
    }
    let mut last = 0;
    let mut dots = 0;
    for (i, &b) in t.iter().enumerate() {
        if b == b'.' {
            if t.get(i + 1) == Some(&b'.') {
                return None;
            }
            dots += 1;
            last = i + 1;
        } else if !is_ident(b) {
            return None;
        }
    }
    (dots > 0).then(|| &t[last..])
}

/// The name of an exception header line and what follows it: `Name`, `Name: msg`, `Name:`.
fn split_header(l: &[u8]) -> (&[u8], &[u8]) {
    let end = l
        .iter()
        .position(|&b| b == b':' || b == b' ')
        .unwrap_or(l.len());
    (&l[..end], &l[end..])
}

fn header_rest_ok(rest: &[u8]) -> bool {
    matches!(rest, [] | [b':'] | [b':', b' ', ..])
}

fn is_throwable_name(last: &[u8]) -> bool {
    last.first().is_some_and(u8::is_ascii_uppercase)
}

// ---------------------------------------------------------------- Java and JVM languages

/// `java.lang.IllegalStateException: boom`, `kotlin.UninitializedPropertyAccessException: …`,
/// `scala.MatchError: 1 (of class …)`, `clojure.lang.ExceptionInfo: …`,
/// `Exception in thread "main" java.lang.Error`.
pub(super) fn java_start(l: &[u8]) -> bool {
    match l.first() {
        Some(b'a'..=b'z') => {
            let (name, rest) = split_header(l);
            header_rest_ok(rest) && qualified_name(name).is_some_and(is_throwable_name)
        }
        Some(b'E') => l.starts_with(b"Exception in thread \""),
        _ => false,
    }
}

/// A JVM frame or cause line: indented `at a.b.C.m(C.java:10)` (or without a location, or
/// with logback's `~[jar:1.0]`), `... 5 more`, `... 12 common frames omitted`, `Caused by: …`,
/// indented `Suppressed: …`, reactor's `Wrapped by: …`.
pub(super) fn java_cont(l: &[u8]) -> bool {
    match l.first() {
        Some(b'C') => return l.starts_with(b"Caused by: "),
        Some(b'W') => return l.starts_with(b"Wrapped by: "),
        Some(b' ' | b'\t') => {}
        _ => return false,
    }
    let t = trim_indent(l);
    match t.first() {
        Some(b'a') => t.strip_prefix(b"at ").is_some_and(java_frame),
        Some(b'.') => {
            t.starts_with(b"... ") && (t.ends_with(b" more") || t.ends_with(b" frames omitted"))
        }
        Some(b'C') => t.starts_with(b"Caused by: "),
        Some(b'S') => t.starts_with(b"Suppressed: "),
        _ => false,
    }
}

/// After `at `: `pkg.Cls.method(…)`, `java.base/jdk.internal.X.y(…)`, `app//a.B.c(…)`,
/// `a.b.C.m` (no location), `clojure.core$eval.invoke(…)`.
fn java_frame(f: &[u8]) -> bool {
    let end = f
        .iter()
        .position(|&b| b == b'(' || b == b' ')
        .unwrap_or(f.len());
    let (name, rest) = f.split_at(end);
    // A module or class loader prefix (`java.base/`, `app//`) before the class name.
    let name = match memchr::memrchr(b'/', name) {
        Some(i) => &name[i + 1..],
        None => name,
    };
    let name_ok = qualified_name(name).is_some()
        || name
            .iter()
            .all(|&b| is_ident(b) || b == b'.' || b == b'<' || b == b'>')
            && name.contains(&b'.');
    name_ok
        && (rest.is_empty()
            || rest[0] == b'('
            || rest.starts_with(b" ~[")
            || rest.starts_with(b" ["))
}

// ---------------------------------------------------------------- Ruby

/// `/app/lib/x.rb:12:in 'm': boom (RuntimeError)`, `app/models/u.rb:3:in `save!'`,
/// `<internal:kernel>:187:in 'loop'`: a path, a line number, `:in `.
pub(super) fn ruby_frame(l: &[u8]) -> bool {
    let Some(&first) = l.first() else {
        return false;
    };
    if !(first == b'/' || first == b'.' || first == b'<' || first.is_ascii_lowercase()) {
        return false;
    }
    let token = match memchr(b' ', l) {
        Some(i) => &l[..i],
        None => return false,
    };
    let Some(pos) = token.strip_suffix(b":in") else {
        return false;
    };
    // `…path…:<digits>`
    let digits = pos.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let path = &pos[..pos.len() - digits];
    digits > 0
        && path.ends_with(b":")
        && (path.ends_with(b".rb:") || path.starts_with(b"<internal:") || path.ends_with(b".ru:"))
}

/// `\tfrom /app/x.rb:7:in '<main>'`, `\t ... 5 levels...`. (Unindented frames, as Rails
/// prints them and as Ruby prints a `cause`'s header, continue only a Ruby trace: the state
/// machine checks [`ruby_frame`] for those.)
pub(super) fn ruby_cont(l: &[u8]) -> bool {
    if !indented(l) {
        return false;
    }
    let t = trim_indent(l);
    match t.first() {
        Some(b'f') => t.strip_prefix(b"from ").is_some_and(ruby_frame),
        Some(b'.') => t.starts_with(b"... ") && t.ends_with(b" levels..."),
        _ => false,
    }
}

// ---------------------------------------------------------------- Node.js

/// `Error: x`, `TypeError: Cannot read properties of undefined (reading 'id')`,
/// `Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers`, `AxiosError: …`, `Uncaught Error: x`.
pub(super) fn node_start(l: &[u8]) -> bool {
    if !l.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let l = l.strip_prefix(b"Uncaught ").unwrap_or(l);
    let n = l.iter().take_while(|&&b| is_ident(b)).count();
    let (name, mut rest) = l.split_at(n);
    if !(name.ends_with(b"Error") || name.ends_with(b"Exception")) {
        return false;
    }
    if let Some(r) = rest.strip_prefix(b" [") {
        // ` [ERR_CODE]`
        match memchr(b']', r) {
            Some(i) if r[..i].iter().all(|&b| is_ident(b)) => rest = &r[i + 1..],
            _ => return false,
        }
    }
    header_rest_ok(rest)
}

/// Indented `at fn (file:1:2)`, `at file:1:2`, `at async x (…)`, `at new X (…)`;
/// `... 4 more lines matching cause stack trace ...`; `[cause]: Error: …` and
/// `caused by: …` of the cause chains libraries print.
pub(super) fn node_cont(l: &[u8]) -> bool {
    match l.first() {
        Some(b'C') => return l.starts_with(b"Caused by: "),
        Some(b'c') => return l.starts_with(b"caused by: "),
        Some(b' ' | b'\t') => {}
        _ => return false,
    }
    let t = trim_indent(l);
    match t.first() {
        Some(b'a') => t.strip_prefix(b"at ").is_some_and(|f| {
            // `at <location>` or `at <name> (<location>)`: a location has `:<line>`; a frame
            // followed by the error's properties ends in ` {`.
            let f = f.strip_suffix(b" {").unwrap_or(f);
            match memchr(b' ', f) {
                None => memchr(b':', f).is_some(),
                Some(i) => i > 0 && f.ends_with(b")") && memchr::memmem::find(f, b" (").is_some(),
            }
        }),
        Some(b'.') => t.starts_with(b"... ") && t.ends_with(b"..."),
        Some(b'[') => t.starts_with(b"[cause]: "),
        Some(b'C') => t.starts_with(b"Caused by: "),
        Some(b'c') => t.starts_with(b"caused by: "),
        _ => false,
    }
}

// ---------------------------------------------------------------- .NET

/// `System.InvalidOperationException: …`, `Microsoft.Data.SqlClient.SqlException (0x80131904): …`,
/// `Unhandled exception. System.Exception: boom`.
pub(super) fn dotnet_start(l: &[u8]) -> bool {
    if !l.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let l = l.strip_prefix(b"Unhandled exception. ").unwrap_or(l);
    let (name, rest) = split_header(l);
    let rest = match rest.strip_prefix(b" (0x") {
        Some(r) => match memchr(b')', r) {
            Some(i) => &r[i + 1..],
            None => return false,
        },
        None => rest,
    };
    header_rest_ok(rest)
        && qualified_name(name).is_some_and(|last| last.ends_with(b"Exception"))
        && name.first().is_some_and(u8::is_ascii_uppercase)
}

/// `   at Ns.Cls.M(String x) in /src/C.cs:line 42`, ` ---> System.X: inner`,
/// `   --- End of inner exception stack trace ---`,
/// `--- End of stack trace from previous location ---`.
pub(super) fn dotnet_cont(l: &[u8]) -> bool {
    let t = trim_indent(l);
    match t.first() {
        Some(b'a') if indented(l) => t.strip_prefix(b"at ").is_some_and(|f| {
            // `Ns.Cls.M(…)`, `lambda_method5(Closure, …)`: a name without spaces, then `(`.
            memchr(b'(', f).is_some_and(|end| end > 0 && !f[..end].contains(&b' '))
        }),
        Some(b'-') => {
            t.starts_with(b"---> ") || (t.starts_with(b"--- End of ") && t.ends_with(b" ---"))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------- PHP

/// `PHP Fatal error:  Uncaught Exception: boom in /app/x.php:3`, `Fatal error: Uncaught …`.
pub(super) fn php_start(l: &[u8]) -> bool {
    match l.first() {
        Some(b'P') => l.starts_with(b"PHP Fatal error:"),
        Some(b'F') => l.starts_with(b"Fatal error: "),
        _ => false,
    }
}

/// `Stack trace:`, `#0 /app/x.php(12): f()`, `#3 {main}`, `  thrown in /app/x.php on line 3`,
/// `Next RuntimeException: …` (a chained exception), `PHP Stack trace:`, `PHP   1. {main}() …`.
pub(super) fn php_cont(l: &[u8]) -> bool {
    let t = trim_indent(l);
    match t.first() {
        Some(b'#') => t.get(1).is_some_and(u8::is_ascii_digit),
        Some(b'S') => t == b"Stack trace:",
        Some(b't') => t.starts_with(b"thrown in "),
        Some(b'N') => !indented(l) && t.starts_with(b"Next ") && memchr(b':', t).is_some(),
        Some(b'P') => {
            t == b"PHP Stack trace:"
                || t.strip_prefix(b"PHP ").is_some_and(|r| {
                    trim_indent(r).first().is_some_and(u8::is_ascii_digit)
                        && r.first() == Some(&b' ')
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_shapes() {
        assert!(java_start(b"java.lang.IllegalStateException: boom"));
        assert!(java_start(b"java.lang.NullPointerException"));
        assert!(java_start(b"clojure.lang.ExceptionInfo: bad {:a 1}"));
        assert!(java_start(
            b"Exception in thread \"main\" java.lang.Error: x"
        ));
        assert!(!java_start(b"level=info msg=x"));
        assert!(!java_start(b"app.started: ok"));
        assert!(java_cont(b"\tat a.b.C.m(C.java:1)"));
        assert!(java_cont(b"    at org.elasticsearch.action.ActionModule.x"));
        assert!(java_cont(
            b"\tat java.base/jdk.internal.reflect.X.invoke0(Native Method)"
        ));
        assert!(java_cont(
            b"\tat o.s.w.F.doFilter(F.java:1) ~[spring-web-6.1.jar:6.1]"
        ));
        assert!(java_cont(
            b"\tat clojure.core$eval2.invokeStatic(NO_SOURCE_FILE:1)"
        ));
        assert!(java_cont(b"\t... 12 common frames omitted"));
        assert!(!java_cont(b"  at noon we met"));
        assert!(!java_cont(b"at a.b.C.m(C.java:1)"));
    }

    #[test]
    fn other_shapes() {
        assert!(ruby_frame(b"/app/x.rb:3:in 'foo': boom (RuntimeError)"));
        assert!(ruby_frame(b"<internal:kernel>:187:in 'loop'"));
        assert!(!ruby_frame(b"/var/log/x.log: 3 in total"));
        assert!(ruby_cont(b"\tfrom /app/x.rb:7:in '<main>'"));
        assert!(!ruby_cont(b"\tfrom the top"));
        assert!(node_start(
            b"TypeError: Cannot read properties of undefined (reading 'id')"
        ));
        assert!(node_start(
            b"Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers"
        ));
        assert!(!node_start(b"ERROR something failed"));
        assert!(!node_start(b"I1202 12:00:00.000000 1 file.go:12] msg"));
        assert!(node_cont(b"    at Object.<anonymous> (/app/index.js:3:9)"));
        assert!(node_cont(
            b"    at node:internal/main/run_main_module:28:49"
        ));
        assert!(!node_cont(b"    at the end"));
        assert!(!node_cont(b"   at 12:00 the cron ran"));
        assert!(node_cont(b"    at async Promise.all (index 0)"));
        assert!(dotnet_start(
            b"System.InvalidOperationException: Sequence contains no elements"
        ));
        assert!(dotnet_start(
            b"Microsoft.Data.SqlClient.SqlException (0x80131904): Timeout"
        ));
        assert!(!dotnet_start(b"System.Startup: done"));
        assert!(dotnet_cont(b"   at A.B.C() in /src/C.cs:line 4"));
        assert!(dotnet_cont(
            b"   --- End of inner exception stack trace ---"
        ));
        assert!(dotnet_cont(b" ---> System.Exception: inner"));
        assert!(php_start(
            b"PHP Fatal error:  Uncaught Exception: boom in /app/x.php:3"
        ));
        assert!(php_cont(b"#0 /app/x.php(12): f()"));
        assert!(php_cont(b"  thrown in /app/x.php on line 3"));
        assert!(php_cont(b"PHP   1. {main}() /app/x.php:0"));
        assert!(!php_cont(b"#hashtag"));
    }
}
