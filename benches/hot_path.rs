//! Micro benchmarks of the per-line hot path, through the library's public API: CRI and docker
//! parsing, partial-line joining, JSON application logs, JSON escaping, document encoding, whole
//! bulk bodies, `_id` hashing and gzip. Run with `cargo bench --bench hot_path`; the numbers and
//! what they told us are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use sluice::config::IndexPattern;
use sluice::kubernetes::PodRef;
use sluice::parse::assemble::{Assembler, AssemblerConfig};
use sluice::parse::multiline::{self, Rules};
use sluice::parse::{Format, Stream, cri, docker, json};
use sluice::sink::elasticsearch::encode::{self, Encoder, Event, FileContext, NodeFields};
use sluice::sink::elasticsearch::escape::escape_into;
use sluice::tail::Fingerprint;

#[path = "common/workload.rs"]
mod workload;
use workload::{JSON_MSG, PLAIN_MSG, cri_body, docker_body};

fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

fn context() -> FileContext {
    let pod = PodRef {
        namespace: "shop".into(),
        pod_name: "checkout-7f9c6d5b4-x2x9q".into(),
        pod_uid: Some("0f5e1c9a-3b2d-4c8e-9a7f-1d2e3f4a5b6c".into()),
        container_name: "checkout".into(),
        container_id: Some(
            "containerd://8d7f6e5d4c3b2a190817263544536271809f8e7d6c5b4a39281706f5e4d3c2b1".into(),
        ),
    };
    let node = NodeFields {
        node_name: "node-a-7".into(),
        cluster_name: Some("prod-eu-1".into()),
        fluentd: None,
    };
    FileContext::new(
        Fingerprint(0x1234_5678_9abc_def0),
        Path::new("/var/log/containers/checkout-7f9c6d5b4-x2x9q_shop_checkout-8d7f6e5d4c3b.log"),
        Some(&pod),
        None,
        &node,
    )
}

fn encoder() -> Encoder {
    let index =
        IndexPattern::parse("elasticsearch.index", "logs-kubernetes-%Y.%m.%d").expect("pattern");
    Encoder::new(index, Some("json".into()))
}

fn parsing(c: &mut Criterion) {
    let cri_b = cri_body(10_000);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(cri_b.len() as u64));
    g.bench_function("cri", |b| {
        b.iter(|| {
            for l in lines(&cri_b) {
                black_box(cri::parse(l).ok());
            }
        })
    });
    let docker_b = docker_body(10_000);
    g.throughput(Throughput::Bytes(docker_b.len() as u64));
    g.bench_function("docker", |b| {
        b.iter(|| {
            for l in lines(&docker_b) {
                black_box(docker::parse(l).ok());
            }
        })
    });
    g.throughput(Throughput::Bytes(JSON_MSG.len() as u64));
    g.bench_function("json_app_log", |b| {
        b.iter(|| black_box(json::parse(black_box(JSON_MSG.as_bytes()))))
    });
    g.finish();
}

fn assembling(c: &mut Criterion) {
    let body = cri_body(10_000);
    let recs: Vec<_> = lines(&body)
        .map(|l| (cri::parse(l).expect("cri"), l.len() as u64))
        .collect();
    let cfg = AssemblerConfig {
        max_event_bytes: 1 << 20,
        multiline: None,
        timeout: Duration::from_secs(1),
    };
    let mut g = c.benchmark_group("assemble");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("partial_join", |b| {
        let now = Instant::now();
        b.iter(|| {
            let mut a = Assembler::new(cfg.clone());
            let mut off = 0;
            let mut n = 0usize;
            for (rec, len) in &recs {
                a.push(rec.clone(), off, off + len + 1, now, &mut |ev| {
                    n += ev.message.len()
                });
                off += len + 1;
            }
            black_box(n)
        })
    });
    // The same workload with multiline `auto` (the default): ordinary lines must be refused
    // by a first-byte check and emitted without a copy; a Java trace every 1,000 lines is
    // grouped.
    let traced = {
        let mut out = Vec::new();
        for (i, l) in lines(&body).enumerate() {
            out.extend_from_slice(l);
            out.push(b'\n');
            if i % 1000 == 999 {
                for t in [
                    "java.lang.IllegalStateException: boom",
                    "\tat com.example.Svc.run(Svc.java:10)",
                    "\tat com.example.Main.main(Main.java:5)",
                ] {
                    out.extend_from_slice(
                        format!("2026-11-24T08:00:00.000000000Z stdout F {t}\n").as_bytes(),
                    );
                }
            }
        }
        out
    };
    let traced_recs: Vec<_> = lines(&traced)
        .map(|l| (cri::parse(l).expect("cri"), l.len() as u64))
        .collect();
    let auto = AssemblerConfig {
        multiline: Some(std::sync::Arc::new(
            Rules::new(&multiline::Config::auto()).expect("auto"),
        )),
        ..cfg.clone()
    };
    g.bench_function("multiline_auto", |b| {
        let now = Instant::now();
        b.iter(|| {
            let mut a = Assembler::new(auto.clone());
            let mut off = 0;
            let mut n = 0usize;
            for (rec, len) in &traced_recs {
                a.push(rec.clone(), off, off + len + 1, now, &mut |ev| {
                    n += ev.message.len()
                });
                off += len + 1;
            }
            a.flush_all(&mut |ev| n += ev.message.len());
            black_box(n)
        })
    });
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let ctx = context();
    let mut g = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(1 << 20);
    g.throughput(Throughput::Bytes(PLAIN_MSG.len() as u64));
    g.bench_function("escape_plain", |b| {
        b.iter(|| {
            out.clear();
            escape_into(&mut out, black_box(PLAIN_MSG.as_bytes()));
        })
    });
    let quoted = "a \"quoted\" path C:\\temp\\x and a tab\tand more text after it ".repeat(3);
    g.throughput(Throughput::Bytes(quoted.len() as u64));
    g.bench_function("escape_quoted", |b| {
        b.iter(|| {
            out.clear();
            escape_into(&mut out, black_box(quoted.as_bytes()));
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("document_id", |b| {
        let mut off = 0u64;
        b.iter(|| {
            off += 137;
            black_box(encode::document_id(ctx.ids, ctx.id_seed, off))
        })
    });
    for (name, msg) in [("document_plain", PLAIN_MSG), ("document_json", JSON_MSG)] {
        let mut enc = encoder();
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(name, |b| {
            let mut off = 0u64;
            b.iter(|| {
                if out.len() > 1 << 20 {
                    out.clear();
                }
                off += 200;
                let ev = Event {
                    timestamp: b"2026-11-24T08:00:01.123456789Z",
                    stream: Stream::Stdout,
                    message: msg.as_bytes(),
                    start: off,
                    truncated: false,
                    malformed: false,
                };
                black_box(enc.encode(&mut out, &ctx, &ev))
            })
        });
    }
    g.finish();
}

/// The whole per-line path for one batch: parse, join, encode into a reused body.
fn bulk_bodies(c: &mut Criterion) {
    let ctx = context();
    let mut g = c.benchmark_group("bulk_body");
    for (name, format, body) in [
        ("cri", Format::Cri, cri_body(10_000)),
        ("docker", Format::Docker, docker_body(10_000)),
    ] {
        let cfg = AssemblerConfig {
            max_event_bytes: 1 << 20,
            multiline: None,
            timeout: Duration::from_secs(1),
        };
        let mut enc = encoder();
        let mut out = Vec::with_capacity(8 << 20);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            let now = Instant::now();
            b.iter(|| {
                out.clear();
                let mut a = Assembler::new(cfg.clone());
                let mut off = 0u64;
                for l in lines(&body) {
                    let end = off + l.len() as u64 + 1;
                    if let Ok(rec) = sluice::parse::parse(format, l) {
                        a.push(rec, off, end, now, &mut |ev| {
                            let e = Event {
                                timestamp: ev.timestamp,
                                stream: ev.stream,
                                message: ev.message,
                                start: ev.start,
                                truncated: ev.truncated,
                                malformed: false,
                            };
                            black_box(enc.encode(&mut out, &ctx, &e));
                        });
                    }
                    off = end;
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn gzip(c: &mut Criterion) {
    use std::io::Write;
    let ctx = context();
    let mut enc = encoder();
    let mut body = Vec::new();
    let mut off = 0u64;
    for (i, l) in lines(&cri_body(20_000)).enumerate() {
        let rec = cri::parse(l).expect("cri");
        let ev = Event {
            timestamp: rec.timestamp,
            stream: rec.stream,
            message: &rec.message,
            start: off,
            truncated: false,
            malformed: i % 1000 == 999,
        };
        enc.encode(&mut body, &ctx, &ev);
        off += l.len() as u64 + 1;
    }
    let mut g = c.benchmark_group("gzip");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(20);
    let mut out = Vec::with_capacity(body.len());
    g.bench_function("level1_bulk_body", |b| {
        b.iter(|| {
            out.clear();
            let mut z = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            z.write_all(&body).expect("gzip into Vec");
            z.finish().expect("gzip into Vec");
        })
    });
    g.finish();
}

criterion_group!(benches, parsing, assembling, encoding, bulk_bodies, gzip);
criterion_main!(benches);
