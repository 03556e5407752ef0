//! The multiline rules' tests: presets, `auto`, start patterns and the limits.

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
    assert!(g[1].starts_with("Traceback") && g[1].ends_with("ZeroDivisionError: division by zero"));
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
