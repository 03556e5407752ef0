//! A fixed driver for instruction counts of the per-line path with and without multiline
//! `auto`: parses the benchmark's CRI workload (benches/hot_path.rs: JSON lines, plain lines,
//! split lines) and assembles it, 20 rounds of 10,000 lines. Run under
//! `valgrind --tool=callgrind target/release/examples/multiline_cost {off|auto}`; the
//! difference between the two counts, per line, is what `auto` costs.

use std::time::{Duration, Instant};

use sluice::parse::assemble::{Assembler, AssemblerConfig};
use sluice::parse::multiline::{Config, Rules};
use sluice::parse::{Format, parse};

const JSON_MSG: &str = r#"{"level":"info","msg":"request completed user cache miss","status":200,"path":"/api/v1/cart","duration_ms":412,"trace_id":"9f3c2a1b7d4e5f60"}"#;
const PLAIN_MSG: &str = "GET /api/v1/orders 200 request completed user cache miss retrying upstream timeout order payment accepted queued";

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let multiline = match mode.as_str() {
        "off" => None,
        "auto" => Some(std::sync::Arc::new(
            Rules::new(&Config::auto()).expect("auto is valid"),
        )),
        _ => {
            eprintln!("usage: multiline_cost off|auto");
            std::process::exit(2);
        }
    };
    let mut body = Vec::new();
    for i in 0..10_000usize {
        let ts = format!(
            "2026-11-24T08:{:02}:{:02}.{:09}Z",
            (i / 60) % 60,
            i % 60,
            i * 7919 % 1_000_000_000
        );
        match i % 20 {
            0..=5 => body.extend_from_slice(format!("{ts} stdout F {JSON_MSG}\n").as_bytes()),
            6 => {
                body.extend_from_slice(format!("{ts} stdout P {PLAIN_MSG} part one \n").as_bytes());
                body.extend_from_slice(format!("{ts} stdout F {PLAIN_MSG} part two\n").as_bytes());
            }
            _ => body.extend_from_slice(format!("{ts} stdout F {PLAIN_MSG}\n").as_bytes()),
        }
    }
    let mut a = Assembler::new(AssemblerConfig {
        max_event_bytes: 1 << 20,
        multiline,
        timeout: Duration::from_secs(1),
    });
    let now = Instant::now();
    let (mut events, mut bytes) = (0u64, 0u64);
    let mut emit = |e: &sluice::parse::assemble::Event<'_>| {
        events += 1;
        bytes += e.message.len() as u64;
    };
    for _ in 0..20 {
        let mut off = 0u64;
        for line in body.split_inclusive(|&b| b == b'\n') {
            let end = off + line.len() as u64;
            let rec = parse(Format::Cri, &line[..line.len() - 1]).expect("valid CRI");
            a.push(rec, off, end, now, &mut emit);
            off = end;
        }
        a.flush_all(&mut emit);
    }
    println!("{mode}: {events} events, {bytes} bytes");
}
