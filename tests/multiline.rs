//! Multiline presets and `auto` detection through the real assembler: every fixture under
//! `tests/fixtures/multiline/<lang>/` becomes exactly the events its `.expected` file lists,
//! with its own preset and with `auto`; the ordinary-lines corpus stays one event per line
//! under `auto`; all traces and all ordinary lines interleaved are grouped exactly.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::parse::assemble::{Assembler, AssemblerConfig};
use sluice::parse::multiline::{Builtin, Config, Rules};
use sluice::parse::{Record, Stream};

const LANGS: [(&str, Builtin); 7] = [
    ("java", Builtin::Java),
    ("python", Builtin::Python),
    ("go", Builtin::Go),
    ("ruby", Builtin::Ruby),
    ("node", Builtin::Node),
    ("dotnet", Builtin::Dotnet),
    ("php", Builtin::Php),
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/multiline")
}

fn rules(parsers: Vec<Builtin>, max_lines: u32) -> Arc<Rules> {
    Arc::new(
        Rules::new(&Config {
            parsers,
            start_pattern: None,
            max_lines,
        })
        .expect("valid rules"),
    )
}

/// The log lines of a fixture and its expected `(first line, line count)` events (1-based).
fn fixture(lang: &str, name: &str) -> (Vec<String>, Vec<(usize, usize)>) {
    let base = dir().join(lang).join(name);
    let log = std::fs::read_to_string(base.with_extension("log")).expect("fixture log");
    let exp = std::fs::read_to_string(base.with_extension("expected")).expect("expected");
    let events = exp
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once(' ').expect("`<first> <count>`");
            (a.parse().expect("line number"), b.parse().expect("count"))
        })
        .collect();
    (log.lines().map(str::to_string).collect(), events)
}

fn fixtures(lang: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir().join(lang))
        .expect("fixture dir")
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".log").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures for {lang}");
    names
}

/// Runs the lines through a real assembler (one record per line, stdout) and returns each
/// event as `(first line, line count)`, checking that each message is its lines joined.
fn assemble(lines: &[String], rules: Arc<Rules>, max_event_bytes: usize) -> Vec<(usize, usize)> {
    let mut a = Assembler::new(AssemblerConfig {
        max_event_bytes,
        multiline: Some(rules),
        timeout: Duration::from_secs(1),
    });
    let mut starts = Vec::new();
    let mut off = 0u64;
    let mut out = Vec::new();
    let now = Instant::now();
    let check = |e: &sluice::parse::assemble::Event<'_>, starts: &[u64]| {
        let first = starts
            .binary_search(&e.start)
            .expect("event starts at a line")
            + 1;
        let n = e.lines as usize;
        if !e.truncated {
            let joined = lines[first - 1..first - 1 + n].join("\n");
            assert_eq!(
                String::from_utf8_lossy(e.message),
                joined,
                "message of the event at line {first}"
            );
        }
        (first, n)
    };
    for line in lines {
        starts.push(off);
        let end = off + line.len() as u64 + 1;
        let rec = Record {
            timestamp: b"2026-12-02T12:00:00Z",
            stream: Stream::Stdout,
            partial: false,
            message: Cow::Borrowed(line.as_bytes()),
        };
        a.push(rec, off, end, now, &mut |e| out.push(check(e, &starts)));
        off = end;
    }
    a.flush_all(&mut |e| out.push(check(e, &starts)));
    out
}

#[test]
fn every_fixture_becomes_its_expected_events_with_its_preset_and_with_auto() {
    let mut total = 0;
    for (lang, preset) in LANGS {
        for name in fixtures(lang) {
            let (lines, expected) = fixture(lang, &name);
            assert_eq!(
                expected.iter().map(|e| e.1).sum::<usize>(),
                lines.len(),
                "{lang}/{name}.expected covers every line"
            );
            let got = assemble(&lines, rules(vec![preset], 1000), 1 << 20);
            assert_eq!(got, expected, "{lang}/{name} with the {lang} preset");
            let got = assemble(&lines, rules(vec![Builtin::Auto], 1000), 1 << 20);
            assert_eq!(got, expected, "{lang}/{name} with auto");
            println!(
                "{lang}/{name}: {} lines -> {} events",
                lines.len(),
                got.len()
            );
            total += 1;
        }
    }
    assert!(total >= 9, "{total} fixtures");
}

fn plain_corpus() -> Vec<String> {
    let text = std::fs::read_to_string(dir().join("plain/ordinary.log")).expect("corpus");
    text.lines().map(str::to_string).collect()
}

#[test]
fn auto_never_joins_ordinary_lines() {
    let lines = plain_corpus();
    let got = assemble(&lines, rules(vec![Builtin::Auto], 1000), 1 << 20);
    println!(
        "plain corpus: {} lines -> {} events",
        lines.len(),
        got.len()
    );
    let expected: Vec<_> = (1..=lines.len()).map(|i| (i, 1)).collect();
    assert_eq!(got, expected);
    assert!(lines.len() >= 60);
}

#[test]
fn auto_groups_every_trace_among_ordinary_lines() {
    // Every fixture of every language, each followed by a slice of the ordinary corpus.
    let plain = plain_corpus();
    let mut lines = Vec::new();
    let mut expected = Vec::new();
    let mut traces = 0;
    for (i, (lang, _)) in LANGS.iter().enumerate() {
        for name in fixtures(lang) {
            let (l, e) = fixture(lang, &name);
            let base = lines.len();
            traces += e.iter().filter(|e| e.1 > 1).count();
            expected.extend(e.iter().map(|&(a, n)| (a + base, n)));
            lines.extend(l);
            for p in plain.iter().skip(i * 7).take(9) {
                lines.push(p.clone());
                expected.push((lines.len(), 1));
            }
        }
    }
    let got = assemble(&lines, rules(vec![Builtin::Auto], 1000), 1 << 20);
    let grouped = got.iter().filter(|e| e.1 > 1).count();
    println!(
        "trace corpus: {} lines, {traces} traces -> {} events, {grouped} of them multi-line",
        lines.len(),
        got.len()
    );
    assert_eq!(got, expected);
    assert_eq!(grouped, traces);
}

#[test]
fn a_group_is_cut_at_max_lines_and_max_event_bytes() {
    let (lines, expected) = fixture("java", "spring-boot");
    let longest = expected.iter().map(|e| e.1).max().expect("events");
    assert!(longest > 5);
    let got = assemble(&lines, rules(vec![Builtin::Auto], 5), 1 << 20);
    assert!(got.iter().all(|e| e.1 <= 5), "{got:?}");
    assert_eq!(got.iter().map(|e| e.1).sum::<usize>(), lines.len());
    assert!(got.len() > expected.len());
    // The byte limit cuts the message but keeps the lines in the event.
    let got = assemble(&lines, rules(vec![Builtin::Auto], 1000), 200);
    assert_eq!(got, expected);
}
