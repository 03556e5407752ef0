//! `sluice-loggen`: writes a deterministic kubelet-style log tree for the demo and benchmarks.
//!
//! `<root>/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` files in CRI or docker json-file
//! format, with `<root>/var/log/containers/<pod>_<ns>_<container>-<id>.log` symlinks, holding a
//! realistic mix: plain lines, JSON application logs, long lines split into partial records, and
//! Java stack traces. Prints what it wrote (files, physical lines, events, bytes) as JSON so a
//! caller knows how many documents to expect.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "Write a deterministic kubelet-style container log tree")]
struct Args {
    /// Root of the fake node (files go under <root>/var/log/...).
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value_t = 8)]
    pods: usize,
    /// Events per pod (a partial-line event or a stack trace counts once).
    #[arg(long, default_value_t = 500)]
    events_per_pod: usize,
    /// Total size to write instead of a number of events: each pod gets an equal share and
    /// stops at the first event that reaches it.
    #[arg(long, value_parser = parse_size)]
    bytes: Option<u64>,
    #[arg(long, value_enum, default_value_t = FormatArg::Mixed)]
    format: FormatArg,
    /// Percentages of the mix (the rest is plain lines).
    #[arg(long, default_value_t = 30)]
    json_percent: u32,
    #[arg(long, default_value_t = 5)]
    partial_percent: u32,
    /// Stack traces (several lines, one event when multiline java is configured).
    #[arg(long, default_value_t = 0)]
    trace_percent: u32,
    /// Typical plain line length in bytes.
    #[arg(long, default_value_t = 120)]
    line_bytes: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Cri,
    Docker,
    /// Even pods CRI, odd pods docker.
    Mixed,
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const NAMESPACES: &[&str] = &["shop", "payments", "search", "kube-system", "monitoring"];
const APPS: &[&str] = &[
    "web", "api", "worker", "cart", "checkout", "indexer", "gateway", "auth",
];
const PATHS: &[&str] = &[
    "/api/v1/cart",
    "/api/v1/orders",
    "/healthz",
    "/search?q=boots",
    "/login",
    "/static/app.js",
];
const LEVELS: &[&str] = &["info", "info", "info", "debug", "warn", "error"];
const WORDS: &[&str] = &[
    "request",
    "completed",
    "user",
    "cache",
    "miss",
    "retrying",
    "upstream",
    "timeout",
    "order",
    "payment",
    "accepted",
    "queued",
];

#[derive(Default, serde::Serialize)]
struct Stats {
    files: usize,
    lines: usize,
    events: usize,
    events_with_multiline: usize,
    bytes: u64,
}

struct Out {
    w: BufWriter<File>,
    format: FormatArg,
    stats_lines: usize,
    bytes: u64,
}

impl Out {
    fn record(&mut self, ts: &str, stream: &str, partial: bool, msg: &str) -> std::io::Result<()> {
        let line = match self.format {
            FormatArg::Cri | FormatArg::Mixed => {
                format!("{ts} {stream} {} {msg}\n", if partial { "P" } else { "F" })
            }
            FormatArg::Docker => {
                let mut log = msg.to_string();
                if !partial {
                    log.push('\n');
                }
                format!(
                    "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{ts}\"}}\n",
                    serde_json::to_string(&log).expect("string")
                )
            }
        };
        self.stats_lines += 1;
        self.bytes += line.len() as u64;
        self.w.write_all(line.as_bytes())
    }
}

fn timestamp(i: u64) -> String {
    // 2026-11-24T08:00:00Z plus i milliseconds and a few nanoseconds of jitter.
    let ms = i;
    let (h, m, s, rest) = (
        8 + ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    format!(
        "2026-11-24T{h:02}:{m:02}:{s:02}.{rest:03}{:06}Z",
        (i * 7919) % 1_000_000
    )
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rng = Rng(args.seed.max(1));
    let pods_dir = args.root.join("var/log/pods");
    let containers_dir = args.root.join("var/log/containers");
    fs::create_dir_all(&containers_dir)?;
    let mut stats = Stats::default();
    let mut clock = 0u64;
    for p in 0..args.pods {
        let ns = NAMESPACES[p % NAMESPACES.len()];
        let app = APPS[p % APPS.len()];
        let pod = format!("{app}-{:08x}-{:05x}", rng.next() as u32, rng.below(0xfffff));
        let uid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rng.next() as u32,
            rng.below(0xffff),
            rng.below(0xfff),
            rng.below(0xfff),
            rng.next() & 0xffff_ffff_ffff
        );
        let container = app.to_string();
        let id: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
        let format = match args.format {
            FormatArg::Mixed if p % 2 == 1 => FormatArg::Docker,
            FormatArg::Mixed => FormatArg::Cri,
            f => f,
        };
        let dir = pods_dir.join(format!("{ns}_{pod}_{uid}")).join(&container);
        fs::create_dir_all(&dir)?;
        let file = dir.join("0.log");
        let mut out = Out {
            w: BufWriter::new(File::create(&file)?),
            format,
            stats_lines: 0,
            bytes: 0,
        };
        let per_pod = args.bytes.map(|b| b / args.pods.max(1) as u64);
        let mut written = 0usize;
        loop {
            let done = match per_pod {
                Some(target) => out.bytes >= target,
                None => written >= args.events_per_pod,
            };
            if done {
                break;
            }
            written += 1;
            clock += 1 + rng.below(5);
            let ts = timestamp(clock);
            let roll = rng.below(100) as u32;
            if roll < args.trace_percent {
                write_trace(&mut out, &ts, &mut rng)?;
                stats.events_with_multiline += 1;
                // Without multiline grouping each physical line is its own event.
                stats.events += 4;
            } else if roll < args.trace_percent + args.partial_percent {
                // A long line the runtime split at its buffer size: several partial records.
                let long = sentence(&mut rng, 3 * args.line_bytes.max(60));
                let parts = 3;
                let step = long.len() / parts;
                for k in 0..parts {
                    let piece = if k + 1 == parts {
                        &long[k * step..]
                    } else {
                        &long[k * step..(k + 1) * step]
                    };
                    out.record(&ts, "stdout", k + 1 != parts, piece)?;
                }
                stats.events += 1;
                stats.events_with_multiline += 1;
            } else if roll < args.trace_percent + args.partial_percent + args.json_percent {
                let status = [200, 200, 201, 404, 500][rng.below(5) as usize];
                let msg = serde_json::json!({
                    "level": rng.pick(LEVELS),
                    "msg": sentence(&mut rng, 40),
                    "status": status,
                    "path": rng.pick(PATHS),
                    "duration_ms": rng.below(900),
                    "trace_id": format!("{:016x}", rng.next()),
                });
                out.record(&ts, "stdout", false, &msg.to_string())?;
                stats.events += 1;
                stats.events_with_multiline += 1;
            } else {
                let stream = if rng.below(10) == 0 {
                    "stderr"
                } else {
                    "stdout"
                };
                let msg = format!(
                    "{} {} {} {}",
                    rng.pick(&["GET", "POST", "PUT"]),
                    rng.pick(PATHS),
                    [200, 200, 304, 404, 503][rng.below(5) as usize],
                    sentence(&mut rng, args.line_bytes.saturating_sub(30))
                );
                out.record(&ts, stream, false, &msg)?;
                stats.events += 1;
                stats.events_with_multiline += 1;
            }
        }
        out.w.flush()?;
        stats.lines += out.stats_lines;
        stats.bytes += out.bytes;
        stats.files += 1;
        let link = containers_dir.join(format!("{pod}_{ns}_{container}-{id}.log"));
        let _ = fs::remove_file(&link);
        symlink(relative_or_absolute(&file), &link)?;
    }
    println!("{}", serde_json::to_string(&stats).expect("stats"));
    Ok(())
}

fn write_trace(out: &mut Out, ts: &str, rng: &mut Rng) -> std::io::Result<()> {
    let class = rng.pick(&["OrderService", "PaymentClient", "CartRepository"]);
    out.record(
        ts,
        "stderr",
        false,
        &format!(
            "java.lang.IllegalStateException: {} failed for order {}",
            class,
            rng.below(99_999)
        ),
    )?;
    out.record(
        ts,
        "stderr",
        false,
        &format!(
            "\tat com.example.shop.{class}.process({class}.java:{})",
            rng.below(400)
        ),
    )?;
    out.record(
        ts,
        "stderr",
        false,
        "\tat com.example.shop.Handler.handle(Handler.java:88)",
    )?;
    out.record(
        ts,
        "stderr",
        false,
        "\tat java.base/java.lang.Thread.run(Thread.java:833)",
    )
}

fn sentence(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len + 12);
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

/// `1GiB`, `256MiB`, `4096`: binary units only, like the agent's configuration.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (B, KiB, MiB, GiB)")),
    };
    Ok(n * mult)
}

fn relative_or_absolute(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
