//! The document shape of the Fluentd Kubernetes DaemonSet (`elasticsearch.compat: fluentd`):
//! `log`, `stream`, `docker.container_id`, `kubernetes.{pod_name,namespace_name,…}` as
//! fluent-plugin-kubernetes_metadata_filter writes them, `tag` and `@timestamp` as
//! fluent-plugin-elasticsearch (`logstash_format true`, `include_tag_key true`) adds them.
//! The field table and its sources are in `docs/migrating-from-fluentd.md`.
//!
//! The second encoder path, chosen once for the agent (the [`Encoder`] and the per-file
//! [`FileContext`] know their shape), never per field: the per-file part is rendered here once,
//! the per-event part writes a handful of fields. It shares the `_id`, the `create` action, the
//! index choice and the escaping with the ECS path, so exactly-once holds the same way. It must
//! not read the clock nor allocate per event.

use std::path::Path;

use super::{Encoder, Event, FileContext, Item, NodeFields, PodFields, appjson, escape_into};
use super::{escape_str_into, write_action};
use crate::kubernetes::PodRef;
use crate::kubernetes::config::Source;
use crate::parse;

/// What the Fluentd shape needs of the node beyond [`NodeFields`]; its presence in
/// [`NodeFields::fluentd`] selects the shape.
#[derive(Debug, Clone, Default)]
pub struct FluentdNode {
    /// `kubernetes.master_url`: the API server URL as the filter was given it
    /// (`https://<KUBERNETES_SERVICE_HOST>:<PORT>/api` in the DaemonSet); `None`: not written.
    pub master_url: Option<String>,
}

impl FluentdNode {
    /// What the filter would have been given as `kubernetes_url`: the DaemonSet builds
    /// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api` in a cluster; an explicit
    /// `kubernetes.url` gets `/api` appended as the filter's client does. A kubeconfig's server
    /// is not read here (`None`).
    pub fn new(source: Option<&Source>, env: &dyn Fn(&str) -> Option<String>) -> FluentdNode {
        let master_url = match source {
            Some(Source::InCluster) => env("KUBERNETES_SERVICE_HOST").map(|host| {
                let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into());
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("https://{host}:{port}/api")
            }),
            Some(Source::Url { url, .. }) => Some(format!("{}/api", url.trim_end_matches('/'))),
            Some(Source::Kubeconfig(_)) | None => None,
        };
        FluentdNode { master_url }
    }
}

/// The per-file part of a Fluentd-shaped document, from `,"docker":…` to the closing brace and
/// newline. Key order follows the filter's record (it does not matter to Elasticsearch).
pub(super) fn render_tail(
    path: &Path,
    pod: Option<&PodRef>,
    api: Option<PodFields<'_>>,
    node: &NodeFields,
    fluentd: &FluentdNode,
) -> Vec<u8> {
    let mut t = Vec::with_capacity(512);
    if let Some(pod) = pod {
        let meta = api.map(|a| a.pod);
        let container = meta.and_then(|m| m.container(&pod.container_name));
        // The filter prefers the id in the pod's status over the one in the file name.
        let container_id = container
            .and_then(|c| c.id.as_deref())
            .or(pod.container_id.as_deref());
        if let Some(id) = container_id {
            t.extend_from_slice(b",\"docker\":{\"container_id\":\"");
            escape_str_into(&mut t, id);
            t.extend_from_slice(b"\"}");
        }
        t.extend_from_slice(b",\"kubernetes\":{\"container_name\":\"");
        escape_str_into(&mut t, &pod.container_name);
        t.extend_from_slice(b"\",\"namespace_name\":\"");
        escape_str_into(&mut t, &pod.namespace);
        t.extend_from_slice(b"\",\"pod_name\":\"");
        escape_str_into(&mut t, &pod.pod_name);
        t.push(b'"');
        let string = |t: &mut Vec<u8>, key: &str, value: Option<&str>| {
            if let Some(v) = value {
                t.extend_from_slice(b",\"");
                t.extend_from_slice(key.as_bytes());
                t.extend_from_slice(b"\":\"");
                escape_str_into(t, v);
                t.push(b'"');
            }
        };
        // The runtime's view of the image (status), as the filter ships it; the spec's as a
        // fallback.
        let image = container.and_then(|c| c.status_image.as_deref().or(c.image.as_deref()));
        string(&mut t, "container_image", image);
        string(
            &mut t,
            "container_image_id",
            container.and_then(|c| c.image_id.as_deref()),
        );
        let uid = meta.map(|m| m.uid.as_str()).or(pod.pod_uid.as_deref());
        string(&mut t, "pod_id", uid);
        string(&mut t, "pod_ip", meta.and_then(|m| m.ip.as_deref()));
        string(&mut t, "host", Some(&node.node_name));
        if let Some(a) = api {
            super::render_pairs(&mut t, "labels", &a.pod.labels);
            string(&mut t, "master_url", fluentd.master_url.as_deref());
            super::render_pairs(&mut t, "namespace_labels", a.namespace_labels);
        }
        t.push(b'}');
    }
    // in_tail's tag for `tag kubernetes.*`: the path with `/` turned into `.`, runs of `.`
    // squeezed to one and a leading one dropped (`TailWatcher#tag`).
    t.extend_from_slice(b",\"tag\":\"kubernetes.");
    let start = t.len();
    escape_str_into(&mut t, &path.to_string_lossy());
    let mut w = start;
    for r in start..t.len() {
        let b = if t[r] == b'/' { b'.' } else { t[r] };
        if b == b'.' && (w == start || t[w - 1] == b'.') {
            continue;
        }
        t[w] = b;
        w += 1;
    }
    t.truncate(w);
    t.extend_from_slice(b"\"}\n");
    t.shrink_to_fit();
    t
}

/// Appends one `create` action and its Fluentd-shaped document.
pub(super) fn encode(
    enc: &mut Encoder,
    body: &mut Vec<u8>,
    ctx: &FileContext,
    ev: &Event<'_>,
) -> Item {
    let (start, doc) = write_action(enc, body, ctx, ev);
    // fluent-plugin-elasticsearch writes `DateTime#iso8601(9)`: an offset, never `Z`.
    body.extend_from_slice(b"{\"@timestamp\":\"");
    match ev.timestamp.split_last() {
        Some((b'Z', head)) => {
            body.extend_from_slice(head);
            body.extend_from_slice(b"+00:00");
        }
        _ => body.extend_from_slice(ev.timestamp),
    }
    // The line as it was, JSON or not: the DaemonSet parses no app JSON into `log`.
    body.extend_from_slice(b"\",\"log\":\"");
    escape_into(body, ev.message);
    body.extend_from_slice(b"\",\"stream\":\"");
    body.extend_from_slice(ev.stream.as_str().as_bytes());
    body.push(b'"');
    let json = ctx.json.unwrap_or(enc.json_target.is_some());
    let app = if json && !ev.malformed && ev.message.first() == Some(&b'{') {
        parse::json::parse_typed(ev.message, &[])
    } else {
        None
    };
    let mut limited = false;
    if let Some(app) = &app {
        let target = enc.json_target.as_deref().unwrap_or("json");
        body.extend_from_slice(b",\"");
        body.extend_from_slice(target.as_bytes());
        body.extend_from_slice(b"\":");
        if appjson::may_exceed_limits(app.object) {
            limited = appjson::write_limited(body, app.object);
        } else {
            body.extend_from_slice(app.object);
        }
    }
    super::write_tags(body, ev.truncated, ev.malformed, limited);
    body.extend_from_slice(&ctx.tail);
    Item {
        start: start as u32,
        doc: doc as u32,
        end: body.len() as u32,
    }
}
