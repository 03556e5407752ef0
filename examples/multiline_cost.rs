//! A fixed driver for instruction counts of the per-line path with and without multiline
//! `auto`: parses the benchmark's CRI workload (benches/common/workload.rs: JSON lines, plain lines,
//! split lines) and assembles it, 20 rounds of 10,000 lines. Run under
//! `valgrind --tool=callgrind target/release/examples/multiline_cost {off|auto}`; the
//! difference between the two counts, per line, is what `auto` costs.

use std::time::{Duration, Instant};

use sluice::parse::assemble::{Assembler, AssemblerConfig};
use sluice::parse::multiline::{Config, Rules};
use sluice::parse::{Format, parse};

#[path = "../benches/common/workload.rs"]
mod workload;

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
    let body = workload::cri_body(10_000);
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
