//! A node's agent config with chosen endpoints and extra lines in the `elasticsearch:` section
//! (for proxies, several nodes, credentials and TLS). Included with `#[path]` by the tests that
//! need it.
#![allow(dead_code)]

use std::path::PathBuf;

use crate::support::Node;

/// `es_extra` lines go inside `elasticsearch:` (indent them by two spaces); `extra` at the top.
pub fn config_full(
    node: &Node,
    index: &str,
    endpoints: &[String],
    es_extra: &str,
    extra: &str,
) -> PathBuf {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    let text = format!(
        concat!(
            "node_name: test-node\n",
            "cluster_name: test-cluster\n",
            "state_dir: {state}\n",
            "input:\n  root: {root}\n  poll_interval: 200ms\n  scan_interval: 1s\n",
            "elasticsearch:\n  endpoints: [{es}]\n  index: \"{index}\"\n  dead_letter_index: \"{index}-dlq\"\n",
            "  batch:\n    timeout: 200ms\n    max_events: 500\n",
            "  retry:\n    initial_backoff: 50ms\n    max_backoff: 1s\n",
            "{es_extra}",
            "telemetry:\n  listen: off\n",
            "shutdown_timeout: 10s\n",
            "{extra}"
        ),
        state = node.state_dir().display(),
        root = node.root().display(),
        es = eps.join(", "),
        index = index,
        es_extra = es_extra,
        extra = extra,
    );
    let p = node.root().join("sluice.yaml");
    std::fs::write(&p, text).unwrap();
    p
}
