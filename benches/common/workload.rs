//! The per-line workload the micro benchmarks and the instruction-count drivers share (CRI and
//! docker bodies like the end-to-end benchmark's); only data, no measuring.

#![allow(dead_code)]

pub const JSON_MSG: &str = r#"{"level":"info","msg":"request completed user cache miss","status":200,"path":"/api/v1/cart","duration_ms":412,"trace_id":"9f3c2a1b7d4e5f60"}"#;
pub const PLAIN_MSG: &str = "GET /api/v1/orders 200 request completed user cache miss retrying upstream timeout order payment accepted queued";

/// A CRI file body like the end-to-end benchmark's: plain lines, JSON lines, split long lines.
pub fn cri_body(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let ts = format!(
            "2026-11-24T08:{:02}:{:02}.{:09}Z",
            (i / 60) % 60,
            i % 60,
            i * 7919 % 1_000_000_000
        );
        match i % 20 {
            0..=5 => out.extend_from_slice(format!("{ts} stdout F {JSON_MSG}\n").as_bytes()),
            6 => {
                out.extend_from_slice(format!("{ts} stdout P {PLAIN_MSG} part one ").as_bytes());
                out.push(b'\n');
                out.extend_from_slice(format!("{ts} stdout F {PLAIN_MSG} part two\n").as_bytes());
            }
            _ => out.extend_from_slice(format!("{ts} stdout F {PLAIN_MSG}\n").as_bytes()),
        }
    }
    out
}

pub fn docker_body(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let msg = if i % 3 == 0 { JSON_MSG } else { PLAIN_MSG };
        let log = serde_json::to_string(&format!("{msg}\n")).expect("string");
        out.extend_from_slice(
            format!("{{\"log\":{log},\"stream\":\"stdout\",\"time\":\"2026-11-24T08:00:{:02}.123456789Z\"}}\n", i % 60)
                .as_bytes(),
        );
    }
    out
}
