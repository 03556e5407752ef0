//! A small driver for instruction counts of the encoder on JSON app logs (valgrind's
//! callgrind; wall-clock figures on a shared machine are noise). Encodes N lines of each kind
//! into reused bodies and prints the bytes written:
//!
//!   cargo build --release --example encode_json_lines
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/encode_json_lines 20000
//!
//! Instructions per line: (Ir at N - Ir at 0) / (3 N).

use std::path::Path;

use sluice::config::IndexPattern;
use sluice::kubernetes::PodRef;
use sluice::parse::Stream;
use sluice::sink::elasticsearch::encode::{Encoder, Event, FileContext, NodeFields};
use sluice::tail::Fingerprint;

const LINES: [&str; 3] = [
    r#"{"level":"info","msg":"request completed user cache miss","status":200,"path":"/api/v1/cart","duration_ms":412,"trace_id":"9f3c2a1b7d4e5f60"}"#,
    r#"{"timestamp":"2026-11-24 10:55:33.148 Z","level":"error","msg":"Failed to send push notification","caller":"app/notification_push.go:123","user_id":"u1","error":"connection refused"}"#,
    r#"{"ts":"2026-11-24T10:00:00Z","lvl":"debug","message":"cache warm","keys":1234,"ctx":{"a":{"b":[1,2,3]}}}"#,
];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let pod = PodRef {
        namespace: "shop".into(),
        pod_name: "checkout-7f9c6d5b4-x2x9q".into(),
        pod_uid: Some("0f5e1c9a-3b2d-4c8e-9a7f-1d2e3f4a5b6c".into()),
        container_name: "checkout".into(),
        container_id: Some("containerd://8d7f6e5d4c3b2a19".into()),
    };
    let node = NodeFields {
        node_name: "node-a-7".into(),
        cluster_name: Some("prod-eu-1".into()),
        fluentd: None,
    };
    let ctx = FileContext::new(
        Fingerprint(0x1234_5678_9abc_def0),
        Path::new("/var/log/containers/checkout_shop_checkout-8d7f6e5d4c3b.log"),
        Some(&pod),
        None,
        &node,
    );
    let index = IndexPattern::parse("i", "logs-kubernetes-%Y.%m.%d").expect("pattern");
    let mut enc = Encoder::new(index, Some("json".into()));
    let mut body = Vec::with_capacity(1 << 20);
    let mut total = 0usize;
    for i in 0..n {
        for line in LINES {
            let ev = Event {
                timestamp: b"2026-11-24T10:55:33.148123456Z",
                stream: Stream::Stdout,
                message: line.as_bytes(),
                start: i as u64 * 512,
                truncated: false,
                malformed: false,
            };
            enc.encode(&mut body, &ctx, &ev);
        }
        if body.len() > (1 << 19) {
            total += body.len();
            body.clear();
        }
    }
    total += body.len();
    println!("{total} bytes");
}
