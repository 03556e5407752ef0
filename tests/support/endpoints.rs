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
    node.config_full(index, endpoints, es_extra, extra)
}
