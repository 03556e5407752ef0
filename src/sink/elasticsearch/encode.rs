//! Encoding events as bulk `create` actions, written straight into the request body.
//!
//! Everything that is the same for every line of a file (path, pod, container, node, cluster,
//! agent) is rendered once per file into a JSON fragment and copied into each document. The
//! message is escaped into the body directly; no per-line `String` or `serde_json::Value`.
//! The document `_id` is a per-file seed (the file's source identity and fingerprint, mixed
//! once per file) followed by the event's offset (`id`). The clock is never read here: an event's timestamp,
//! and so its index, comes from the reader (see `pipeline::reader::clock`).
//!
//! Still one file (about 650 lines) for two halves of one document: the per-file context
//! (`FileContext`, the rendered tail) and the per-event writer (`Encoder`), which share the
//! field layout; the ids (`id`), the Fluentd shape and the JSON object (`appjson`) are apart.
//! The context's rendering is the next piece to move out.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::kubernetes::PodRef;
use crate::kubernetes::meta::{PodMeta, Workload};
use crate::parse::{self, Stream};
use crate::tail::{Fingerprint, IdScheme};
use crate::telemetry::tap::{self, Tap};

use super::IndexPattern;
use super::appjson;
use super::escape::{escape_into, escape_str_into};
use super::route::Distinct;

mod fluentd;
mod id;

pub use fluentd::FluentdNode;
pub use id::{document_id, id_seed};

/// One event as the encoder needs it, borrowed from the reader's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// A valid RFC 3339 timestamp (the parsers check it; a malformed line gets one from the
    /// reader): it is the document's `@timestamp` and picks its index.
    pub timestamp: &'a [u8],
    pub stream: Stream,
    pub message: &'a [u8],
    /// Offset of the event's first byte in its file: with the file's id seed, the `_id`.
    pub start: u64,
    pub truncated: bool,
    /// The line was not a valid CRI/docker record; `message` is the raw line.
    pub malformed: bool,
}

/// Fields shared by all events of one file, rendered once.
#[derive(Debug, Clone)]
pub struct FileContext {
    pub fingerprint: Fingerprint,
    /// What the `_id` of every event of this file is derived from, with its offset: see
    /// [`id_seed`]. Set by [`FileContext::identify`].
    pub id_seed: u64,
    /// How the ids are made from the seed and the offset ([`document_id`]): the current scheme,
    /// or the one the file's checkpoint entry keeps.
    pub ids: IdScheme,
    /// Closes the `log` object and the document: `,"file":{…}},"kubernetes":{…},…}`.
    tail: Vec<u8>,
    /// `sluice.io/exclude*`: events are counted and dropped (the file is still read, so its
    /// checkpoint advances).
    pub skip: bool,
    /// `sluice.io/parser*`: `Some(true)` parses JSON app logs, `Some(false)` never does;
    /// `None` follows `parse.json`.
    pub json: Option<bool>,
    /// Kubernetes watching is on but this file was rendered without its pod's metadata.
    pub partial: bool,
    /// Namespace, pod and container as `sluice tap` filters them (empty when the path tells
    /// none).
    pub tap: tap::Source,
    /// The file's own index pattern when `elasticsearch.index` holds field references: resolved
    /// once, when the file's metadata is first rendered, and kept for the whole file
    /// (`pipeline::reader::route`). `None`: the encoder's pattern.
    pub route: Option<IndexPattern>,
}

/// Values that are the same for every file on this node.
#[derive(Debug, Clone)]
pub struct NodeFields {
    pub node_name: String,
    pub cluster_name: Option<String>,
    /// `Some`: files are rendered in the Fluentd DaemonSet's shape (`elasticsearch.compat`).
    pub fluentd: Option<FluentdNode>,
}

/// What the API server knows about a file's pod.
#[derive(Debug, Clone, Copy)]
pub struct PodFields<'a> {
    pub pod: &'a PodMeta,
    pub namespace_labels: &'a [(String, String)],
}

impl FileContext {
    /// `pod` is what the path tells; `api` (when known) adds and overrides it.
    pub fn new(
        fingerprint: Fingerprint,
        path: &Path,
        pod: Option<&PodRef>,
        api: Option<PodFields<'_>>,
        node: &NodeFields,
    ) -> FileContext {
        if let Some(f) = &node.fluentd {
            return FileContext::with_tail(
                fingerprint,
                pod,
                fluentd::render_tail(path, pod, api, node, f),
            );
        }
        let mut t = Vec::with_capacity(512);
        t.extend_from_slice(b",\"file\":{\"path\":\"");
        escape_str_into(&mut t, &path.to_string_lossy());
        t.extend_from_slice(b"\"}}");
        let mut container_id = pod.and_then(|p| p.container_id.as_deref());
        let mut image = None;
        if let Some(pod) = pod {
            let meta = api.map(|a| a.pod);
            let container = meta.and_then(|m| m.container(&pod.container_name));
            container_id = container_id.or(container.and_then(|c| c.id.as_deref()));
            image = container.and_then(|c| c.image.as_deref());
            t.extend_from_slice(b",\"kubernetes\":{\"namespace\":\"");
            escape_str_into(&mut t, &pod.namespace);
            t.extend_from_slice(b"\",\"pod\":{\"name\":\"");
            escape_str_into(&mut t, &pod.pod_name);
            if let Some(uid) = meta.map(|m| m.uid.as_str()).or(pod.pod_uid.as_deref()) {
                t.extend_from_slice(b"\",\"uid\":\"");
                escape_str_into(&mut t, uid);
            }
            if let Some(ip) = meta.and_then(|m| m.ip.as_deref()) {
                t.extend_from_slice(b"\",\"ip\":\"");
                escape_str_into(&mut t, ip);
            }
            t.extend_from_slice(b"\"},\"container\":{\"name\":\"");
            escape_str_into(&mut t, &pod.container_name);
            t.extend_from_slice(b"\"},\"node\":{\"name\":\"");
            escape_str_into(&mut t, &node.node_name);
            t.push(b'"');
            t.push(b'}');
            if let Some(a) = api {
                render_pairs(&mut t, "labels", &a.pod.labels);
                render_pairs(&mut t, "annotations", &a.pod.annotations);
                render_pairs(&mut t, "namespace_labels", a.namespace_labels);
                render_workload(&mut t, a.pod.workload.as_ref());
            }
            t.push(b'}');
        }
        if container_id.is_some() || image.is_some() {
            t.extend_from_slice(b",\"container\":{");
            if let Some(id) = container_id {
                t.extend_from_slice(b"\"id\":\"");
                escape_str_into(&mut t, id);
                t.push(b'"');
            }
            if let Some(image) = image {
                if container_id.is_some() {
                    t.push(b',');
                }
                t.extend_from_slice(b"\"image\":{\"name\":\"");
                escape_str_into(&mut t, image);
                t.extend_from_slice(b"\"}");
            }
            t.push(b'}');
        }
        if let Some(cluster) = &node.cluster_name {
            t.extend_from_slice(
                b",\"orchestrator\":{\"type\":\"kubernetes\",\"cluster\":{\"name\":\"",
            );
            escape_str_into(&mut t, cluster);
            t.extend_from_slice(b"\"}}");
        }
        t.extend_from_slice(b",\"host\":{\"name\":\"");
        escape_str_into(&mut t, &node.node_name);
        t.extend_from_slice(
            b"\"},\"agent\":{\"name\":\"sluice\",\"type\":\"sluice\",\"version\":\"",
        );
        t.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        t.extend_from_slice(b"\"}}\n");
        // One per open file, kept as long as the file is: no spare capacity.
        t.shrink_to_fit();
        FileContext::with_tail(fingerprint, pod, t)
    }

    fn with_tail(fingerprint: Fingerprint, pod: Option<&PodRef>, tail: Vec<u8>) -> FileContext {
        FileContext {
            fingerprint,
            id_seed: id_seed(None, fingerprint),
            ids: IdScheme::CURRENT,
            tail,
            skip: false,
            json: None,
            partial: false,
            tap: pod.map_or_else(tap::Source::default, |p| tap::Source {
                namespace: p.namespace.clone(),
                pod: p.pod_name.clone(),
                container: p.container_name.clone(),
            }),
            route: None,
        }
    }
}

impl FileContext {
    /// Mixes the file's source identity into the seed of its documents' ids (see [`id_seed`]).
    pub fn identify(mut self, source: &[u8]) -> FileContext {
        self.id_seed = id_seed(Some(source), self.fingerprint);
        self
    }
}

/// `,"<name>":{"k":"v",…}`; nothing when empty.
fn render_pairs(t: &mut Vec<u8>, name: &str, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    t.extend_from_slice(b",\"");
    t.extend_from_slice(name.as_bytes());
    t.extend_from_slice(b"\":{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            t.push(b',');
        }
        t.push(b'"');
        escape_str_into(t, k);
        t.extend_from_slice(b"\":\"");
        escape_str_into(t, v);
        t.push(b'"');
    }
    t.push(b'}');
}

fn render_workload(t: &mut Vec<u8>, w: Option<&Workload>) {
    let mut one = |kind: &str, name: &str| {
        t.extend_from_slice(b",\"");
        t.extend_from_slice(kind.as_bytes());
        t.extend_from_slice(b"\":{\"name\":\"");
        escape_str_into(t, name);
        t.extend_from_slice(b"\"}");
    };
    match w {
        Some(Workload::Deployment(n)) => one("deployment", n),
        Some(Workload::ReplicaSet(n)) => one("replicaset", n),
        Some(Workload::StatefulSet(n)) => one("statefulset", n),
        Some(Workload::DaemonSet(n)) => one("daemonset", n),
        Some(Workload::Job(n)) => one("job", n),
        Some(Workload::CronJob(c, j)) => {
            one("cronjob", c);
            one("job", j);
        }
        None => {}
    }
}

/// Where one action + document pair sits in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub start: u32,
    /// Where the document line begins (after the action line).
    pub doc: u32,
    pub end: u32,
}

/// Renders events into bulk bodies. Holds the per-date index name cache.
#[derive(Debug)]
pub struct Encoder {
    index: IndexPattern,
    json_target: Option<String>,
    /// `parse.json.fields`, and their names alone (what the parser matches).
    json_fields: Vec<(String, parse::json::FieldType)>,
    json_field_names: Vec<String>,
    cached_day: [u8; 10],
    cached_index: String,
    /// Which pattern `cached_index` was rendered from: the encoder's own (`true`), or a file's
    /// route with this text. Files take turns in a batch, so this changes per read, not per event.
    cached_default: bool,
    cached_route: String,
    distinct: Distinct,
    typed_scratch: Vec<u8>,
    mistyped_scratch: Vec<u8>,
    /// `telemetry.tap`: copies of what is encoded, while someone watches.
    tap: Option<Arc<Tap>>,
    /// `elasticsearch.compat: fluentd`: every document takes the [`fluentd`] path.
    fluentd: bool,
    /// `parse.json.keep_lifted`: the keys lifted into ECS fields stay in the object too.
    keep_lifted: bool,
    /// The object without its moved keys, when it must then go through the limits.
    moved_scratch: Vec<u8>,
}

impl Encoder {
    pub fn new(index: IndexPattern, json_target: Option<String>) -> Encoder {
        Encoder {
            index,
            json_target,
            json_fields: Vec::new(),
            json_field_names: Vec::new(),
            cached_day: [0; 10],
            cached_index: String::new(),
            cached_default: true,
            cached_route: String::new(),
            distinct: Distinct::default(),
            typed_scratch: Vec::new(),
            mistyped_scratch: Vec::new(),
            tap: None,
            fluentd: false,
            keep_lifted: false,
            moved_scratch: Vec::new(),
        }
    }

    /// Offers every encoded event to `tap` (`telemetry.tap: true`).
    pub fn set_tap(&mut self, tap: Arc<Tap>) {
        self.tap = Some(tap);
    }

    /// The tap this encoder offers to, to hand on to its replacement (a reload).
    pub fn tap(&self) -> Option<Arc<Tap>> {
        self.tap.clone()
    }

    /// Writes the Fluentd DaemonSet's document shape (`elasticsearch.compat: fluentd`); the
    /// files' contexts must then be rendered with [`NodeFields::fluentd`] set.
    pub fn fluentd_shape(mut self, on: bool) -> Encoder {
        self.fluentd = on;
        self
    }

    /// `parse.json.keep_lifted`: keep the lifted keys in the object as copies.
    pub fn keep_lifted(mut self, keep: bool) -> Encoder {
        self.keep_lifted = keep;
        self
    }

    /// Types these top-level keys of JSON app logs (`parse.json.fields`).
    pub fn with_json_fields(mut self, fields: Vec<(String, parse::json::FieldType)>) -> Encoder {
        self.json_field_names = fields.iter().map(|(k, _)| k.clone()).collect();
        self.json_fields = fields;
        self
    }

    /// Counts the distinct index names rendered in `gauge` (`sluice_indices_written`).
    pub fn with_index_gauge(mut self, gauge: prometheus_client::metrics::gauge::Gauge) -> Encoder {
        self.distinct = Distinct::new(gauge);
        self
    }

    /// Appends one `create` action and its document to `body`; returns where they sit.
    pub fn encode(&mut self, body: &mut Vec<u8>, ctx: &FileContext, ev: &Event<'_>) -> Item {
        // The shape is the agent's, fixed at start: one predictable branch, not one per field.
        let item = if self.fluentd {
            fluentd::encode(self, body, ctx, ev)
        } else {
            self.encode_ecs(body, ctx, ev)
        };
        if let Some(t) = &self.tap
            && t.active()
        {
            t.offer(
                &ctx.tap,
                &body[item.start as usize..],
                &body[item.doc as usize..],
            );
        }
        item
    }

    fn encode_ecs(&mut self, body: &mut Vec<u8>, ctx: &FileContext, ev: &Event<'_>) -> Item {
        let timestamp = ev.timestamp;
        let (start, doc) = write_action(self, body, ctx, ev);

        body.extend_from_slice(b"{\"@timestamp\":\"");
        body.extend_from_slice(timestamp);
        body.extend_from_slice(b"\",\"message\":\"");
        let json = ctx.json.unwrap_or(self.json_target.is_some());
        let app = if json && !ev.malformed && ev.message.first() == Some(&b'{') {
            parse::json::parse_typed(ev.message, &self.json_field_names)
        } else {
            None
        };
        match app.as_ref().and_then(|a| a.message.as_deref()) {
            Some(m) => escape_str_into(body, m),
            None => escape_into(body, ev.message),
        }
        body.push(b'"');
        let mut limited = false;
        if let Some(app) = &app {
            // A `sluice.io/parser: json` pod on a node with parse.json off uses the default name.
            let target = self.json_target.as_deref().unwrap_or("json");
            // The keys lifted into ECS fields are moved, not copied: each value stored once.
            let moved = if self.keep_lifted {
                &[][..]
            } else {
                app.moved()
            };
            limited =
                appjson::write_object(body, target, app.object, moved, &mut self.moved_scratch);
            if !self.json_fields.is_empty() {
                write_typed(
                    body,
                    target,
                    app,
                    &self.json_fields,
                    (&mut self.typed_scratch, &mut self.mistyped_scratch),
                );
            }
            write_ecs(body, app);
        }
        write_tags(body, ev.truncated, ev.malformed, limited);
        if let Some(app) = &app {
            let created = app
                .time
                .as_deref()
                .and_then(appjson::app_time_rfc3339)
                .filter(|t| t.as_bytes() != timestamp);
            if created.is_some() || limited {
                body.extend_from_slice(b",\"event\":{");
                if let Some(t) = &created {
                    body.extend_from_slice(b"\"created\":\"");
                    escape_str_into(body, t);
                    body.push(b'"');
                }
                if limited {
                    // What was cut or turned into strings stays here, stored, not indexed.
                    if created.is_some() {
                        body.push(b',');
                    }
                    body.extend_from_slice(b"\"original\":\"");
                    escape_into(body, app.object);
                    body.push(b'"');
                }
                body.push(b'}');
            }
        }
        body.extend_from_slice(b",\"log\":{\"iostream\":\"");
        body.extend_from_slice(ev.stream.as_str().as_bytes());
        body.extend_from_slice(b"\",\"offset\":");
        body.extend_from_slice(itoa_u64(ev.start, &mut [0u8; 20]));
        if let Some(app) = &app {
            for (name, value) in [("level", &app.level), ("logger", &app.logger)] {
                if let Some(v) = value.as_deref() {
                    body.extend_from_slice(b",\"");
                    body.extend_from_slice(name.as_bytes());
                    body.extend_from_slice(b"\":\"");
                    escape_str_into(body, v);
                    body.push(b'"');
                }
            }
            if let Some(caller) = app.caller.as_deref() {
                let (file, line) = appjson::split_caller(caller);
                body.extend_from_slice(b",\"origin\":{\"file\":{\"name\":\"");
                escape_str_into(body, file);
                body.push(b'"');
                if let Some(line) = line {
                    body.extend_from_slice(b",\"line\":");
                    body.extend_from_slice(itoa_u64(line, &mut [0u8; 20]));
                }
                body.extend_from_slice(b"}}");
            }
        }
        body.extend_from_slice(&ctx.tail);

        // Bodies are capped far below 4 GiB by configuration (elasticsearch.batch.max_bytes ≤ 100 MiB
        // plus one event of at most 64 MiB).
        Item {
            start: start as u32,
            doc: doc as u32,
            end: body.len() as u32,
        }
    }

    /// The index of an event: the file's route (else the encoder's pattern) on the event's date.
    /// Rendered again only when the pattern or the date changes.
    fn index_for(&mut self, route: Option<&IndexPattern>, timestamp: &[u8]) -> &str {
        let same = match route {
            None => self.cached_default,
            Some(r) => !self.cached_default && r.as_str() == self.cached_route,
        };
        if !same {
            self.cached_default = route.is_none();
            self.cached_route.clear();
            self.cached_route
                .push_str(route.map_or("", IndexPattern::as_str));
            self.cached_index.clear();
        }
        let pattern = route.unwrap_or(&self.index);
        if !pattern.is_dated() {
            if self.cached_index.is_empty() {
                self.cached_index = pattern.render((0, 0, 0));
                self.distinct.note(&self.cached_index);
            }
            return &self.cached_index;
        }
        // A `Z` timestamp's first ten bytes are its UTC date: skip the parse when they repeat.
        let utc = timestamp.last() == Some(&b'Z') && timestamp.len() >= 10;
        if utc && self.cached_day == timestamp[..10] && !self.cached_index.is_empty() {
            return &self.cached_index;
        }
        // Never the clock: a replay must pick the same index. Events carry valid timestamps
        // (`Event::timestamp`); an invalid one would be a bug, and still lands deterministically.
        let date = parse::timestamp::utc_date(timestamp).unwrap_or((1970, 1, 1));
        self.cached_index = pattern.render(date);
        self.distinct.note(&self.cached_index);
        if utc {
            self.cached_day.copy_from_slice(&timestamp[..10]);
        } else {
            self.cached_day = [0; 10];
        }
        &self.cached_index
    }
}

/// The `create` action line of one event (its index from the event's timestamp, its `_id` from
/// the file's seed and the event's offset), for both shapes; returns where the action and the
/// document start.
fn write_action(
    enc: &mut Encoder,
    body: &mut Vec<u8>,
    ctx: &FileContext,
    ev: &Event<'_>,
) -> (usize, usize) {
    let start = body.len();
    debug_assert!(
        parse::timestamp::is_rfc3339(ev.timestamp),
        "events carry a valid timestamp: {:?}",
        String::from_utf8_lossy(ev.timestamp)
    );
    body.extend_from_slice(b"{\"create\":{\"_index\":\"");
    let index = enc.index_for(ctx.route.as_ref(), ev.timestamp);
    body.extend_from_slice(index.as_bytes());
    body.extend_from_slice(b"\",\"_id\":\"");
    body.extend_from_slice(&document_id(ctx.ids, ctx.id_seed, ev.start));
    body.extend_from_slice(b"\"}}\n");
    (start, body.len())
}

/// `,"tags":[…]` naming what happened to the event; nothing when nothing did.
fn write_tags(body: &mut Vec<u8>, truncated: bool, malformed: bool, limited: bool) {
    if !(truncated || malformed || limited) {
        return;
    }
    body.extend_from_slice(b",\"tags\":[");
    let mut first = true;
    for (on, tag) in [
        (truncated, &b"\"truncated\""[..]),
        (malformed, b"\"malformed\""),
        (limited, b"\"json_limited\""),
    ] {
        if on {
            if !first {
                body.push(b',');
            }
            first = false;
            body.extend_from_slice(tag);
        }
    }
    body.push(b']');
}

/// `,"<target>_typed":{…}` and `,"<target>_mistyped":{…}`, each only when not empty; the
/// scratch buffers are the encoder's, reused.
fn write_typed(
    body: &mut Vec<u8>,
    target: &str,
    app: &parse::json::AppLog<'_>,
    fields: &[(String, parse::json::FieldType)],
    (typed, mistyped): (&mut Vec<u8>, &mut Vec<u8>),
) {
    typed.clear();
    mistyped.clear();
    appjson::write_typed(typed, mistyped, fields, app);
    for (suffix, part) in [("_typed", &*typed), ("_mistyped", &*mistyped)] {
        if part.is_empty() {
            continue;
        }
        body.extend_from_slice(b",\"");
        body.extend_from_slice(target.as_bytes());
        body.extend_from_slice(suffix.as_bytes());
        body.extend_from_slice(b"\":{");
        body.extend_from_slice(part);
        body.push(b'}');
    }
}

/// `trace.id`, `span.id`, `error.message|stack_trace` lifted from a JSON app log.
fn write_ecs(body: &mut Vec<u8>, app: &parse::json::AppLog<'_>) {
    for (object, key, value) in [("trace", "id", &app.trace_id), ("span", "id", &app.span_id)] {
        if let Some(v) = value.as_deref() {
            body.extend_from_slice(b",\"");
            body.extend_from_slice(object.as_bytes());
            body.extend_from_slice(b"\":{\"");
            body.extend_from_slice(key.as_bytes());
            body.extend_from_slice(b"\":\"");
            escape_str_into(body, v);
            body.extend_from_slice(b"\"}");
        }
    }
    if app.error.is_some() || app.stack_trace.is_some() {
        body.extend_from_slice(b",\"error\":{");
        if let Some(m) = app.error.as_deref() {
            body.extend_from_slice(b"\"message\":\"");
            escape_str_into(body, m);
            body.push(b'"');
        }
        if let Some(st) = app.stack_trace.as_deref() {
            if app.error.is_some() {
                body.push(b',');
            }
            body.extend_from_slice(b"\"stack_trace\":\"");
            escape_str_into(body, st);
            body.push(b'"');
        }
        body.push(b'}');
    }
}

fn itoa_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// Writes `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn format_rfc3339(t: SystemTime, out: &mut Vec<u8>) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    );
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests;
