//! The assembler's tests: partial records, multiline groups, limits, adoption across a
//! rotation, and that the common path allocates nothing. One file: they share the record and
//! feeding helpers and the counting allocator (a `#[global_allocator]` is one per test binary).

use std::borrow::Cow;

use proptest::prelude::*;

use super::super::{cri, multiline};
use super::*;

/// Counts heap allocations per thread, to prove the hot path does none.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn bump() {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    pub fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            bump();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            bump();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            bump();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// An emitted event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ev {
    stream: Stream,
    timestamp: String,
    message: String,
    start: u64,
    end: u64,
    truncated: bool,
    lines: u32,
    adopted: bool,
}

impl Ev {
    fn of(e: &Event<'_>) -> Ev {
        Ev {
            stream: e.stream,
            timestamp: String::from_utf8_lossy(e.timestamp).into_owned(),
            message: String::from_utf8_lossy(e.message).into_owned(),
            start: e.start,
            end: e.end,
            truncated: e.truncated,
            lines: e.lines,
            adopted: e.adopted,
        }
    }
}

fn assembler(max: usize, rules: Option<Rules>) -> Assembler {
    Assembler::new(AssemblerConfig {
        max_event_bytes: max,
        multiline: rules.map(Arc::new),
        timeout: Duration::from_secs(1),
    })
}

fn rules(parsers: &[multiline::Builtin]) -> Rules {
    Rules::new(&multiline::Config {
        parsers: parsers.to_vec(),
        start_pattern: None,
        max_lines: 1000,
    })
    .unwrap()
}

fn rec(stream: Stream, partial: bool, msg: &str) -> Record<'_> {
    Record {
        timestamp: b"2026-11-24T10:00:00Z",
        stream,
        partial,
        message: Cow::Borrowed(msg.as_bytes()),
    }
}

/// Feeds `(record, len)` pairs at consecutive offsets from 0; returns the emitted events.
fn feed(a: &mut Assembler, recs: &[(Record<'_>, u64)], now: Instant) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut off = 0;
    for (r, len) in recs {
        a.push(r.clone(), off, off + len, now, &mut |e| out.push(Ev::of(e)));
        off += len;
    }
    out
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/parse/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn rules_change_only_between_events() {
    let trace = [
        (
            rec(
                Stream::Stdout,
                false,
                "Exception in thread \"main\" java.lang.IllegalStateException: x",
            ),
            10,
        ),
        (rec(Stream::Stdout, false, "\tat a.B.c(B.java:1)"), 10),
    ];
    // No rules: every line is its own event.
    let mut a = assembler(1 << 20, None);
    assert!(a.set_rules(None));
    assert_eq!(feed(&mut a, &trace, Instant::now()).len(), 2);
    // Java rules asked for while nothing is in progress: taken at once.
    let java = Arc::new(rules(&[multiline::Builtin::Java]));
    assert!(a.set_rules(Some(java.clone())));
    let mut out = feed(&mut a, &trace, Instant::now());
    assert!(out.is_empty(), "the trace is a group in progress: {out:?}");
    // Asked for under the group in progress: refused for now, the group keeps java's rules.
    assert!(!a.set_rules(None));
    a.push(trace[1].0.clone(), 20, 30, Instant::now(), &mut |e| {
        out.push(Ev::of(e))
    });
    assert!(out.is_empty(), "the continuation joins the group: {out:?}");
    a.flush_all(&mut |e| out.push(Ev::of(e)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].lines, 3);
    // The next record starts under the rules asked for: no grouping any more.
    out.clear();
    let mut off = 100;
    for (r, len) in &trace {
        a.push(r.clone(), off, off + len, Instant::now(), &mut |e| {
            out.push(Ev::of(e))
        });
        off += len;
    }
    assert_eq!(out.len(), 2, "{out:?}");
}

#[test]
fn complete_record_is_emitted_at_once_borrowed_without_allocating() {
    let mut a = assembler(1 << 20, None);
    let line = b"2026-11-24T10:00:00.123456789Z stdout F hello world".to_vec();
    let now = Instant::now();
    let mut seen = 0;
    let mut ptrs = (std::ptr::null(), std::ptr::null());
    let before = counting::allocations();
    for i in 0..1000 {
        let r = cri::parse(&line).unwrap();
        a.push(r, i * 52, (i + 1) * 52, now, &mut |e| {
            seen += 1;
            ptrs = (e.message.as_ptr(), e.timestamp.as_ptr());
            assert_eq!(e.message, b"hello world");
            assert_eq!(
                (e.start, e.end, e.lines, e.truncated),
                (i * 52, (i + 1) * 52, 1, false)
            );
        });
    }
    assert_eq!(
        counting::allocations() - before,
        0,
        "the hot path allocated"
    );
    assert_eq!(seen, 1000);
    // The event points into the line itself: nothing was copied.
    assert_eq!(ptrs.0, line[40..].as_ptr());
    assert_eq!(ptrs.1, line.as_ptr());
    assert_eq!(a.pending_start(), None);
}

#[test]
fn joining_reuses_buffers_without_allocating_in_steady_state() {
    let mut a = assembler(1 << 20, None);
    let now = Instant::now();
    let parts = [
        rec(Stream::Stdout, true, "first half, "),
        rec(Stream::Stdout, false, "second half"),
    ];
    let run = |a: &mut Assembler| {
        let mut n = 0;
        for (i, r) in parts.iter().enumerate() {
            a.push(
                r.clone(),
                i as u64 * 10,
                i as u64 * 10 + 10,
                now,
                &mut |e| {
                    assert_eq!(e.message, b"first half, second half");
                    n += 1;
                },
            );
        }
        n
    };
    assert_eq!(run(&mut a), 1); // warms the buffers up
    let before = counting::allocations();
    for _ in 0..100 {
        assert_eq!(run(&mut a), 1);
    }
    assert_eq!(
        counting::allocations() - before,
        0,
        "joining allocated in steady state"
    );
}

#[test]
fn partial_records_join_per_stream_with_offsets() {
    let mut a = assembler(1 << 20, None);
    let now = Instant::now();
    let mut out = Vec::new();
    let mut push = |a: &mut Assembler, r: Record<'_>, s: u64, e: u64| {
        a.push(r, s, e, now, &mut |ev| out.push(Ev::of(ev)))
    };
    push(
        &mut a,
        Record {
            timestamp: b"T1",
            ..rec(Stream::Stdout, true, "out-a ")
        },
        0,
        10,
    );
    assert_eq!(a.pending_start(), Some(0));
    push(
        &mut a,
        Record {
            timestamp: b"T2",
            ..rec(Stream::Stderr, true, "err-a ")
        },
        10,
        25,
    );
    assert_eq!(a.pending_start(), Some(0));
    push(
        &mut a,
        Record {
            timestamp: b"T3",
            ..rec(Stream::Stdout, false, "out-b")
        },
        25,
        40,
    );
    assert_eq!(
        a.pending_start(),
        Some(10),
        "stdout is done, stderr still pending"
    );
    push(
        &mut a,
        Record {
            timestamp: b"T4",
            ..rec(Stream::Stdout, false, "whole")
        },
        40,
        50,
    );
    push(
        &mut a,
        Record {
            timestamp: b"T5",
            ..rec(Stream::Stderr, true, "err-b ")
        },
        50,
        60,
    );
    push(
        &mut a,
        Record {
            timestamp: b"T6",
            ..rec(Stream::Stderr, false, "err-c")
        },
        60,
        75,
    );
    assert_eq!(a.pending_start(), None);
    let got: Vec<(Stream, &str, &str, u64, u64, u32)> = out
        .iter()
        .map(|e| {
            (
                e.stream,
                e.timestamp.as_str(),
                e.message.as_str(),
                e.start,
                e.end,
                e.lines,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Stream::Stdout, "T1", "out-a out-b", 0, 40, 2),
            (Stream::Stdout, "T4", "whole", 40, 50, 1),
            (Stream::Stderr, "T2", "err-a err-b err-c", 10, 75, 3),
        ]
    );
}

#[test]
fn docker_fixture_partial_lines_join() {
    let text = fixture("docker.log");
    let mut a = assembler(1 << 20, None);
    let mut out = Vec::new();
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let end = off + line.len() as u64;
        let r = super::super::docker::parse(line.trim_end_matches('\n').as_bytes()).unwrap();
        a.push(r, off, end, Instant::now(), &mut |e| out.push(Ev::of(e)));
        off = end;
    }
    assert_eq!(out.len(), 6);
    assert_eq!(
        out[2].message,
        "{\"msg\":\"a long line split by docker at 16 KiB: the end\"}"
    );
    assert_eq!(
        (out[2].lines, out[2].timestamp.as_str()),
        (2, "2026-11-24T10:00:01.000000001Z")
    );
    assert_eq!(out[2].start, out[1].end);
    assert_eq!(out[3].start, out[2].end);
}

#[test]
fn oversized_join_is_truncated_and_the_rest_swallowed() {
    let mut a = assembler(10, None);
    let out = feed(
        &mut a,
        &[
            (rec(Stream::Stdout, true, "abcdef"), 10),
            (rec(Stream::Stdout, true, "ghijkl"), 10),
            (rec(Stream::Stdout, true, "mnopqr"), 10),
            (rec(Stream::Stdout, false, "st"), 10),
            (rec(Stream::Stdout, false, "next"), 10),
        ],
        Instant::now(),
    );
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        (
            out[0].message.as_str(),
            out[0].truncated,
            out[0].lines,
            out[0].start,
            out[0].end
        ),
        ("abcdefghij", true, 4, 0, 40)
    );
    assert_eq!(
        (out[1].message.as_str(), out[1].truncated, out[1].start),
        ("next", false, 40)
    );
    // The reused buffers start clean: the next joined event is not marked truncated.
    let out = feed(
        &mut a,
        &[
            (rec(Stream::Stdout, true, "ab"), 10),
            (rec(Stream::Stdout, false, "c"), 10),
        ],
        Instant::now(),
    );
    assert_eq!(
        (out[0].message.as_str(), out[0].truncated, out[0].lines),
        ("abc", false, 2)
    );
}

#[test]
fn truncation_respects_utf8_boundaries() {
    // é is two bytes: cutting "abcdé" at 5 would split it.
    let mut a = assembler(5, None);
    let out = feed(
        &mut a,
        &[
            (rec(Stream::Stdout, false, "abcdé"), 1),
            (rec(Stream::Stdout, true, "abcd"), 1),
            (rec(Stream::Stdout, false, "éxyz"), 1),
        ],
        Instant::now(),
    );
    assert_eq!(out[0].message, "abcd");
    assert!(out[0].truncated);
    assert_eq!(out[1].message, "abcd");
    assert!(out[1].truncated);
    // Exactly at the limit is not truncated.
    let out = feed(
        &mut a,
        &[(rec(Stream::Stdout, false, "abcé"), 1)],
        Instant::now(),
    );
    assert_eq!((out[0].message.as_str(), out[0].truncated), ("abcé", false));
    assert_eq!(complete_prefix_len("a😀".as_bytes()), 5);
    assert_eq!(complete_prefix_len(&"a😀".as_bytes()[..4]), 1);
    assert_eq!(
        complete_prefix_len(b"\x80\x80\x80\x80\x80"),
        5,
        "not UTF-8: left alone"
    );
}

#[test]
fn oversized_multiline_group_is_truncated_and_keeps_its_lines() {
    // The exception line is 29 bytes: exactly the limit; the `\n` joining the next line is not.
    let mut a = assembler(29, Some(rules(&[multiline::Builtin::Java])));
    let out = feed(
        &mut a,
        &[
            (
                rec(Stream::Stdout, false, "java.lang.RuntimeException: x"),
                10,
            ),
            (rec(Stream::Stdout, false, "\tat a.B.c(B.java:1)"), 10),
            (rec(Stream::Stdout, false, "\tat a.B.d(B.java:2)"), 10),
            (rec(Stream::Stdout, false, "next"), 10),
        ],
        Instant::now(),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (
            out[0].message.as_str(),
            out[0].truncated,
            out[0].lines,
            out[0].end
        ),
        ("java.lang.RuntimeException: x", true, 3, 30)
    );
    assert_eq!(a.pending_start(), Some(30));
}

#[test]
fn multiline_group_waits_for_the_next_line_or_the_timeout() {
    let mut a = assembler(1 << 20, Some(rules(&[multiline::Builtin::Java])));
    let t0 = Instant::now();
    let out = feed(
        &mut a,
        &[
            (
                rec(Stream::Stderr, false, "java.lang.RuntimeException: x"),
                31,
            ),
            (rec(Stream::Stderr, false, "\tat a.B.c(B.java:1)"), 20),
        ],
        t0,
    );
    assert!(out.is_empty());
    assert_eq!(a.pending_start(), Some(0));
    let mut out = Vec::new();
    a.flush_idle(t0 + Duration::from_millis(999), &mut |e| {
        out.push(Ev::of(e))
    });
    assert!(out.is_empty(), "not idle long enough");
    a.flush_idle(t0 + Duration::from_secs(1), &mut |e| out.push(Ev::of(e)));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (
            out[0].message.as_str(),
            out[0].start,
            out[0].end,
            out[0].lines
        ),
        (
            "java.lang.RuntimeException: x\n\tat a.B.c(B.java:1)",
            0,
            51,
            2
        )
    );
    assert_eq!(a.pending_start(), None);
    // A frame arriving after the flush is an event of its own.
    let out = feed(
        &mut a,
        &[(rec(Stream::Stderr, false, "\tat a.B.d(B.java:2)"), 20)],
        t0,
    );
    assert!(out.is_empty());
    let mut out = Vec::new();
    a.flush_all(&mut |e| out.push(Ev::of(e)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message, "\tat a.B.d(B.java:2)");
}

#[test]
fn idle_partial_line_is_flushed_alone_and_per_stream() {
    let mut a = assembler(1 << 20, None);
    let t0 = Instant::now();
    let mut out = Vec::new();
    a.push(rec(Stream::Stdout, true, "half"), 0, 10, t0, &mut |e| {
        out.push(Ev::of(e))
    });
    a.push(
        rec(Stream::Stderr, true, "later"),
        10,
        20,
        t0 + Duration::from_millis(500),
        &mut |e| out.push(Ev::of(e)),
    );
    a.flush_idle(t0 + Duration::from_secs(1), &mut |e| out.push(Ev::of(e)));
    assert_eq!(
        out.iter()
            .map(|e| (e.message.as_str(), e.stream))
            .collect::<Vec<_>>(),
        vec![("half", Stream::Stdout)]
    );
    assert_eq!(a.pending_start(), Some(10));
    a.flush_all(&mut |e| out.push(Ev::of(e)));
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[1].message.as_str(), out[1].start, out[1].end),
        ("later", 10, 20)
    );
    assert_eq!(a.pending_start(), None);
}

#[test]
fn flush_all_emits_partial_then_its_group_in_offset_order() {
    let mut a = assembler(1 << 20, Some(rules(&[multiline::Builtin::Java])));
    let out = feed(
        &mut a,
        &[
            (rec(Stream::Stderr, false, "stderr line"), 10),
            (
                rec(Stream::Stdout, false, "java.lang.RuntimeException: x"),
                10,
            ),
            (rec(Stream::Stdout, true, "\tat a.B.c(B.java:1)"), 10),
        ],
        Instant::now(),
    );
    assert!(out.is_empty());
    assert_eq!(a.pending_start(), Some(0));
    let mut out = Vec::new();
    a.flush_all(&mut |e| out.push(Ev::of(e)));
    let got: Vec<(&str, u64, u64)> = out
        .iter()
        .map(|e| (e.message.as_str(), e.start, e.end))
        .collect();
    assert_eq!(
        got,
        vec![
            ("stderr line", 0, 10),
            (
                "java.lang.RuntimeException: x\n\tat a.B.c(B.java:1)",
                10,
                30
            )
        ]
    );
}

/// Feeds `(record, len)` pairs at consecutive offsets from `off`.
fn feed_at(a: &mut Assembler, off: u64, recs: &[(Record<'_>, u64)], out: &mut Vec<Ev>) {
    let mut off = off;
    for (r, len) in recs {
        a.push(r.clone(), off, off + len, Instant::now(), &mut |e| {
            out.push(Ev::of(e))
        });
        off += len;
    }
}

#[test]
fn partial_lines_split_by_a_rotation_are_joined_per_stream_by_the_successor() {
    // The rotated file: a complete line, then a stdout and a stderr line begun, not ended.
    let mut old = assembler(1 << 20, None);
    let mut out = Vec::new();
    feed_at(
        &mut old,
        0,
        &[
            (rec(Stream::Stdout, false, "whole"), 10),
            (rec(Stream::Stdout, true, "out-1 "), 10),
            (rec(Stream::Stderr, true, "err-1 "), 10),
            (rec(Stream::Stdout, true, "out-2 "), 10),
        ],
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(old.pending_start(), Some(10));
    let pending = old.take_pending().expect("two lines in progress");
    assert_eq!(pending.start(), 10);
    assert!(!old.in_progress() && old.pending_start().is_none());
    assert!(old.take_pending().is_none(), "nothing left");

    let mut new = assembler(1 << 20, None);
    new.adopt(pending, Instant::now()).unwrap();
    assert!(new.in_progress() && new.adopted());
    // Nothing of the new file is held yet: its checkpoint may sit at its head.
    assert_eq!(new.pending_start(), None);
    let mut out = Vec::new();
    feed_at(
        &mut new,
        0,
        &[
            (rec(Stream::Stderr, false, "err-2"), 7),
            (rec(Stream::Stdout, true, "out-3 "), 7),
        ],
        &mut out,
    );
    assert_eq!(
        out,
        vec![Ev {
            stream: Stream::Stderr,
            timestamp: "2026-11-24T10:00:00Z".into(),
            message: "err-1 err-2".into(),
            start: 20,
            end: 7,
            truncated: false,
            lines: 2,
            adopted: true,
        }]
    );
    assert_eq!(new.pending_start(), Some(7), "the stdout piece read here");
    feed_at(
        &mut new,
        14,
        &[
            (rec(Stream::Stdout, false, "out-4"), 7),
            (rec(Stream::Stdout, false, "local"), 7),
        ],
        &mut out,
    );
    let got: Vec<(&str, u64, u64, bool)> = out[1..]
        .iter()
        .map(|e| (e.message.as_str(), e.start, e.end, e.adopted))
        .collect();
    assert_eq!(
        got,
        vec![
            ("out-1 out-2 out-3 out-4", 10, 21, true),
            ("local", 21, 28, false)
        ]
    );
    assert!(!new.adopted() && new.pending_start().is_none());
}

#[test]
fn multiline_group_split_by_a_rotation_is_finished_by_the_successor() {
    let java = || Some(rules(&[multiline::Builtin::Java]));
    let mut old = assembler(1 << 20, java());
    let mut out = Vec::new();
    feed_at(
        &mut old,
        0,
        &[
            (
                rec(Stream::Stderr, false, "java.lang.RuntimeException: x"),
                40,
            ),
            (rec(Stream::Stderr, false, "\tat a.B.c(B.java:1)"), 30),
        ],
        &mut out,
    );
    assert!(out.is_empty());
    let pending = old.take_pending().unwrap();
    let mut new = assembler(1 << 20, java());
    new.adopt(pending, Instant::now()).unwrap();
    feed_at(
        &mut new,
        0,
        &[
            (rec(Stream::Stderr, false, "\tat a.B.d(B.java:2)"), 30),
            (rec(Stream::Stderr, false, "next"), 10),
        ],
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (
            out[0].message.as_str(),
            out[0].start,
            out[0].end,
            out[0].lines,
            out[0].adopted
        ),
        (
            "java.lang.RuntimeException: x\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)",
            0,
            30,
            3,
            true
        )
    );
    // `next` may begin a group of its own: held, and local.
    assert_eq!(new.pending_start(), Some(30));
    let mut rest = Vec::new();
    new.flush_all(&mut |e| rest.push(Ev::of(e)));
    assert_eq!(
        (rest.len(), rest[0].message.as_str(), rest[0].adopted),
        (1, "next", false)
    );
}

#[test]
fn adopted_event_is_flushed_when_idle_even_with_no_record_of_this_file() {
    let mut old = assembler(1 << 20, None);
    let mut out = Vec::new();
    feed_at(
        &mut old,
        100,
        &[(rec(Stream::Stdout, true, "never ended"), 20)],
        &mut out,
    );
    let mut new = assembler(1 << 20, None);
    let t0 = Instant::now();
    new.adopt(old.take_pending().unwrap(), t0).unwrap();
    new.flush_idle(t0 + Duration::from_millis(999), &mut |e| {
        out.push(Ev::of(e))
    });
    assert!(
        out.is_empty(),
        "idle from the adoption, not from the old record"
    );
    new.flush_idle(t0 + Duration::from_secs(1), &mut |e| out.push(Ev::of(e)));
    assert_eq!(
        out.iter()
            .map(|e| (e.message.as_str(), e.start, e.adopted))
            .collect::<Vec<_>>(),
        vec![("never ended", 100, true)]
    );
    assert!(!new.in_progress());
}

#[test]
fn adopt_is_refused_once_the_successor_holds_something_and_take_skips_adopted_events() {
    let mut old = assembler(1 << 20, None);
    let mut out = Vec::new();
    feed_at(
        &mut old,
        0,
        &[(rec(Stream::Stdout, true, "a"), 5)],
        &mut out,
    );
    let mut new = assembler(1 << 20, None);
    feed_at(
        &mut new,
        0,
        &[(rec(Stream::Stdout, true, "b"), 5)],
        &mut out,
    );
    let pending = old.take_pending().unwrap();
    let back = new.adopt(pending, Instant::now()).unwrap_err();
    assert_eq!(back.start(), 0);
    // An adopted event's offsets are another file's: it is never handed on again.
    let mut fresh = assembler(1 << 20, None);
    fresh.adopt(back, Instant::now()).unwrap();
    assert!(fresh.take_pending().is_none());
    assert!(fresh.in_progress());
}

/// Renders events as the `.expected` fixtures spell them.
fn render(events: &[Ev]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "--- {} lines={}\n{}\n",
                e.stream.as_str(),
                e.lines,
                e.message
            )
        })
        .collect()
}

/// Feeds a CRI fixture through an assembler; checks offsets on the way.
fn assemble_fixture(name: &str, parsers: &[multiline::Builtin]) -> Vec<Ev> {
    let text = fixture(name);
    let mut a = assembler(1 << 20, Some(rules(parsers)));
    let now = Instant::now();
    let mut out = Vec::new();
    let mut off = 0u64;
    let mut line_starts = vec![];
    for line in text.split_inclusive('\n') {
        let end = off + line.len() as u64;
        let r = cri::parse(line.trim_end_matches('\n').as_bytes()).unwrap();
        a.push(r, off, end, now, &mut |e| out.push(Ev::of(e)));
        line_starts.push(off);
        off = end;
    }
    a.flush_all(&mut |e| out.push(Ev::of(e)));
    // Every event starts at a line start, and the events' lines add up to the file's.
    assert!(
        out.iter()
            .all(|e| line_starts.contains(&e.start) && e.end <= off && e.start < e.end)
    );
    assert_eq!(
        out.iter().map(|e| e.lines as usize).sum::<usize>(),
        line_starts.len()
    );
    out
}

#[test]
fn java_fixture_groups_stack_traces() {
    let out = assemble_fixture("multiline-java.log", &[multiline::Builtin::Java]);
    assert_eq!(out.len(), 7);
    assert_eq!(render(&out), fixture("multiline-java.expected"));
}

#[test]
fn python_fixture_groups_tracebacks() {
    let out = assemble_fixture("multiline-python.log", &[multiline::Builtin::Python]);
    assert_eq!(out.len(), 8);
    assert_eq!(render(&out), fixture("multiline-python.expected"));
}

#[test]
fn go_fixture_groups_panics() {
    let out = assemble_fixture("multiline-go.log", &[multiline::Builtin::Go]);
    assert_eq!(out.len(), 7);
    assert_eq!(render(&out), fixture("multiline-go.expected"));
}

#[test]
fn all_builtins_together_on_all_fixtures() {
    use multiline::Builtin::*;
    for name in ["java", "python", "go"] {
        let out = assemble_fixture(&format!("multiline-{name}.log"), &[Go, Java, Python]);
        assert_eq!(
            render(&out),
            fixture(&format!("multiline-{name}.expected")),
            "{name}"
        );
    }
}

/// Cuts `msg` at the given points (taken modulo its length + 1).
fn split_at_points(msg: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (msg.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut parts = Vec::new();
    let mut prev = 0;
    for c in cuts {
        parts.push(msg[prev..c].to_vec());
        prev = c;
    }
    parts.push(msg[prev..].to_vec());
    parts
}

proptest! {
    #[test]
    fn split_partial_records_reassemble_exactly(
        msgs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<usize>(), 0..8)),
            1..12,
        ),
        overhead in 1u64..60,
    ) {
        let mut a = assembler(usize::MAX, None);
        let now = Instant::now();
        let mut out = Vec::new();
        let mut off = 0u64;
        for (msg, points) in &msgs {
            let parts = split_at_points(msg, points);
            let n = parts.len();
            let first = off;
            for (i, part) in parts.iter().enumerate() {
                let len = overhead + part.len() as u64 + 1;
                let r = Record { timestamp: b"T", stream: Stream::Stdout, partial: i + 1 < n, message: Cow::Borrowed(part) };
                a.push(r, off, off + len, now, &mut |e| out.push((e.message.to_vec(), e.start, e.end, e.lines, e.truncated)));
                off += len;
                prop_assert_eq!(a.pending_start(), (i + 1 < n).then_some(first));
            }
        }
        prop_assert_eq!(out.len(), msgs.len());
        let mut expected_start = 0;
        for ((msg, points), (got, start, end, lines, truncated)) in msgs.iter().zip(&out) {
            prop_assert_eq!(got, msg);
            prop_assert_eq!(*lines as usize, split_at_points(msg, points).len());
            prop_assert!(!truncated);
            // Contiguous: each event starts where the previous ended; the last ends at EOF.
            prop_assert_eq!(*start, expected_start);
            prop_assert!(end > start);
            expected_start = *end;
        }
        prop_assert_eq!(expected_start, off);
    }

    #[test]
    fn interleaved_streams_reassemble_independently(
        msgs in proptest::collection::vec(
            (any::<bool>(), "[a-zé😀 ]{0,40}", proptest::collection::vec(any::<usize>(), 0..4)),
            1..10,
        ),
        schedule in proptest::collection::vec(any::<bool>(), 0..200),
    ) {
        // Each stream's records in order; the schedule picks which stream writes next.
        let mut queues: [Vec<(Vec<u8>, bool, usize)>; 2] = Default::default();
        for (k, (err, msg, points)) in msgs.iter().enumerate() {
            let parts = split_at_points(msg.as_bytes(), points);
            let n = parts.len();
            for (i, p) in parts.into_iter().enumerate() {
                queues[usize::from(*err)].push((p, i + 1 < n, k));
            }
        }
        let mut a = assembler(usize::MAX, None);
        let now = Instant::now();
        let mut out: Vec<(Stream, Vec<u8>, u64, u64)> = Vec::new();
        let mut starts: Vec<Option<u64>> = vec![None; msgs.len()];
        let mut ends = vec![0u64; msgs.len()];
        let mut next = [0usize, 0usize];
        let mut off = 0u64;
        let mut pick = schedule.into_iter();
        while next[0] < queues[0].len() || next[1] < queues[1].len() {
            let mut q = usize::from(pick.next().unwrap_or(false));
            if next[q] == queues[q].len() {
                q = 1 - q;
            }
            let (part, partial, k) = &queues[q][next[q]];
            next[q] += 1;
            let stream = STREAMS[q];
            let len = 30 + part.len() as u64;
            starts[*k].get_or_insert(off);
            ends[*k] = off + len;
            let r = Record { timestamp: b"T", stream, partial: *partial, message: Cow::Borrowed(part) };
            a.push(r, off, off + len, now, &mut |e| out.push((e.stream, e.message.to_vec(), e.start, e.end)));
            off += len;
            // Pending: the earliest start of a message begun but not finished.
            let pending = (0..msgs.len()).filter(|&k| starts[k].is_some() && !out.iter().any(|o| Some(o.2) == starts[k])).filter_map(|k| starts[k]).min();
            prop_assert_eq!(a.pending_start(), pending);
        }
        for (q, stream) in STREAMS.into_iter().enumerate() {
            let want: Vec<(Vec<u8>, u64, u64)> = msgs.iter().enumerate()
                .filter(|(_, m)| usize::from(m.0) == q)
                .map(|(k, m)| (m.1.as_bytes().to_vec(), starts[k].unwrap(), ends[k]))
                .collect();
            let got: Vec<(Vec<u8>, u64, u64)> = out.iter().filter(|o| o.0 == stream).map(|o| (o.1.clone(), o.2, o.3)).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn truncation_keeps_a_valid_utf8_prefix(msg in "[a-zé€😀]{0,60}", points in proptest::collection::vec(any::<usize>(), 0..5), max in 0usize..80) {
        let mut a = assembler(max, None);
        let parts = split_at_points(msg.as_bytes(), &points);
        let n = parts.len();
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let r = Record { timestamp: b"T", stream: Stream::Stdout, partial: i + 1 < n, message: Cow::Borrowed(p) };
            a.push(r, i as u64, i as u64 + 1, Instant::now(), &mut |e| out.push((e.message.to_vec(), e.truncated, e.lines)));
        }
        prop_assert_eq!(out.len(), 1);
        let (got, truncated, lines) = &out[0];
        let got = std::str::from_utf8(got).expect("valid UTF-8");
        prop_assert!(msg.starts_with(got));
        prop_assert_eq!(*truncated, msg.len() > max);
        prop_assert_eq!(*lines as usize, n);
        if *truncated {
            prop_assert!(got.len() <= max && got.len() + 4 > max, "{} of max {}", got.len(), max);
        } else {
            prop_assert_eq!(got, msg.as_str());
        }
    }
}
