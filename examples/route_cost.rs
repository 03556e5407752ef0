//! A fixed driver for instruction counts of routing: encodes plain lines of two files (two
//! namespaces) taking turns every 100 events, as the reader does when it reads one file's chunk
//! and then another's, with `elasticsearch.index` routed (`logs-{kubernetes.namespace}-%Y.%m.%d`,
//! each file's route resolved once) or not (`logs-kubernetes-%Y.%m.%d`). Run under callgrind:
//!
//!   cargo build --release --example route_cost
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/route_cost on 20000
//!
//! The difference between `on` and `off`, over the input bytes, is what routing costs per GiB.

use std::path::Path;

use sluice::config::IndexPattern;
use sluice::kubernetes::PodRef;
use sluice::parse::Stream;
use sluice::sink::elasticsearch::encode::{Encoder, Event, FileContext, NodeFields};
use sluice::sink::elasticsearch::route::{Field, Lookup};
use sluice::tail::Fingerprint;

const LINE: &str = "10.1.2.3 - - [24/Nov/2026:10:55:33 +0000] \"GET /api/v1/cart?user=u1 HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=0.412 upstream=10.1.9.9:8080";

/// The file's namespace is all this pattern asks for.
struct Namespace<'a>(&'a str);

impl Lookup for Namespace<'_> {
    fn value(&self, field: &Field) -> Option<&str> {
        (*field == Field::Namespace).then_some(self.0)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let routed = match args.next().as_deref() {
        Some("on") => true,
        Some("off") => false,
        _ => {
            eprintln!("usage: route_cost on|off [events]");
            std::process::exit(2);
        }
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let node = NodeFields {
        node_name: "node-a-7".into(),
        cluster_name: Some("prod-eu-1".into()),
        fluentd: None,
    };
    let pattern = if routed {
        "logs-{kubernetes.namespace}-%Y.%m.%d"
    } else {
        "logs-kubernetes-%Y.%m.%d"
    };
    let index = IndexPattern::parse("elasticsearch.index", pattern).expect("pattern");
    let ctxs: Vec<FileContext> = ["shop", "billing"]
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let pod = PodRef {
                namespace: (*ns).into(),
                pod_name: format!("{ns}-7f9c6d5b4-x2x9q"),
                pod_uid: Some("0f5e1c9a-3b2d-4c8e-9a7f-1d2e3f4a5b6c".into()),
                container_name: "app".into(),
                container_id: Some("containerd://8d7f6e5d4c3b2a19".into()),
            };
            let mut ctx = FileContext::new(
                Fingerprint(0x1234_5678_9abc_def0 + i as u64),
                Path::new(&format!("/var/log/containers/{ns}_app.log")),
                Some(&pod),
                None,
                &node,
            );
            // What `pipeline::reader::route` does once per file.
            ctx.route = routed.then(|| index.resolve(&Namespace(ns), false));
            ctx
        })
        .collect();
    let mut enc = Encoder::new(index, None);
    let mut body = Vec::with_capacity(1 << 20);
    let (mut total, mut input) = (0usize, 0usize);
    for i in 0..n {
        let ctx = &ctxs[(i / 100) % 2];
        let ev = Event {
            timestamp: b"2026-11-24T10:55:33.148123456Z",
            stream: Stream::Stdout,
            message: LINE.as_bytes(),
            start: i as u64 * 256,
            truncated: false,
            malformed: false,
        };
        input += LINE.len();
        enc.encode(&mut body, ctx, &ev);
        if body.len() > (1 << 19) {
            total += body.len();
            body.clear();
        }
    }
    total += body.len();
    println!("{total} bytes out, {input} bytes of messages in");
}
