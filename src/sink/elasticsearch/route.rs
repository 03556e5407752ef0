//! Routing: the field references an index pattern may hold (`{kubernetes.namespace}`,
//! `{sluice.dataset|default}`, ...), how a value becomes a legal part of an index name, and the
//! count of distinct names written. Pure functions of strings: it reads no metadata store and no
//! clock, and it is never called per event (a file's route is resolved once, when its metadata is
//! rendered; see `pipeline::reader::route`).

use std::collections::HashSet;

use prometheus_client::metrics::gauge::Gauge;

/// What a reference names. The names are the document's own field paths, so a pattern reads
/// like the documents it routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Namespace,
    PodName,
    ContainerName,
    /// A pod label, by its de-dotted key (`app.kubernetes.io/name` → `app_kubernetes_io/name`,
    /// as in the documents; either spelling may be written).
    Label(String),
    /// A label of the pod's namespace, de-dotted likewise.
    NamespaceLabel(String),
    /// The owning workload of this kind (`deployment`, `statefulset`, `daemonset`, `replicaset`,
    /// `job`, `cronjob`), as `kubernetes::meta` derives it.
    Workload(&'static str),
    ClusterName,
    /// The pod's `sluice.io/dataset` annotation.
    Dataset,
}

/// The workload kinds a reference may name (`kubernetes.<kind>.name`).
pub const WORKLOAD_KINDS: [&str; 6] = [
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "job",
    "cronjob",
];

/// What a missing value (no fallback written) renders as: visible, searchable, and never a
/// reason to hold a line back.
pub const MISSING: &str = "unknown";

/// The bytes Elasticsearch allows in an index name.
pub const MAX_NAME_BYTES: usize = 255;

impl Field {
    /// Reads a reference's field path; `None` when it names no field sluice routes on.
    pub fn parse(path: &str) -> Option<Field> {
        Some(match path {
            "kubernetes.namespace" => Field::Namespace,
            "kubernetes.pod.name" => Field::PodName,
            "kubernetes.container.name" => Field::ContainerName,
            "orchestrator.cluster.name" => Field::ClusterName,
            "sluice.dataset" => Field::Dataset,
            _ => {
                if let Some(k) = path.strip_prefix("kubernetes.labels.") {
                    Field::Label(dedot(k)?)
                } else if let Some(k) = path.strip_prefix("kubernetes.namespace_labels.") {
                    Field::NamespaceLabel(dedot(k)?)
                } else {
                    let kind = path.strip_prefix("kubernetes.")?.strip_suffix(".name")?;
                    Field::Workload(WORKLOAD_KINDS.into_iter().find(|k| *k == kind)?)
                }
            }
        })
    }

    /// Where the field sits in a shipped document (the dead-letter index is routed from the
    /// refused document); `None` for the dataset, which documents do not carry.
    pub fn document_path(&self) -> Option<Vec<&str>> {
        Some(match self {
            Field::Namespace => vec!["kubernetes", "namespace"],
            Field::PodName => vec!["kubernetes", "pod", "name"],
            Field::ContainerName => vec!["kubernetes", "container", "name"],
            Field::Label(k) => vec!["kubernetes", "labels", k],
            Field::NamespaceLabel(k) => vec!["kubernetes", "namespace_labels", k],
            Field::Workload(kind) => vec!["kubernetes", kind, "name"],
            Field::ClusterName => vec!["orchestrator", "cluster", "name"],
            Field::Dataset => return None,
        })
    }
}

/// The same de-dotting as `kubernetes::meta::dedot` (this module imports nothing of the crate).
fn dedot(key: &str) -> Option<String> {
    (!key.is_empty()).then(|| key.replace('.', "_"))
}

/// Where a file's (or a document's) values come from.
pub trait Lookup {
    /// The value of `field`, or `None` when it is not known.
    fn value(&self, field: &Field) -> Option<&str>;
}

/// The values of a shipped document (a `serde_json::Value`), for the dead-letter index.
pub struct DocumentLookup<'a>(pub &'a serde_json::Value);

impl Lookup for DocumentLookup<'_> {
    fn value(&self, field: &Field) -> Option<&str> {
        let mut v = self.0;
        for step in field.document_path()? {
            v = v.get(step)?;
        }
        v.as_str()
    }
}

/// Whether a character may not appear in an index name: `\ / * ? " < > | , # :`, whitespace and
/// control characters.
pub fn is_forbidden(c: char) -> bool {
    matches!(
        c,
        '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':'
    ) || c.is_whitespace()
        || c.is_control()
}

/// Appends `value` made safe inside an index name: lowercased; every forbidden character (see
/// [`is_forbidden`]) replaced by `_`; with `no_dash`, `-` replaced by `_` too (a dataset, and in
/// data-stream mode every value, so that `-` only ever separates the parts the pattern wrote).
pub fn push_value(out: &mut String, value: &str, no_dash: bool) {
    for c in value.chars().flat_map(char::to_lowercase) {
        if is_forbidden(c) || (no_dash && c == '-') {
            out.push('_');
        } else {
            out.push(c);
        }
    }
}

/// Makes a rendered name legal as a whole: no leading `-`, `_`, `+` or `.` (the first three are
/// refused by Elasticsearch, a leading `.` names hidden and system indices), never empty, `.` or
/// `..` (those become [`MISSING`]), at most [`MAX_NAME_BYTES`] bytes (cut on a character
/// boundary).
pub fn legalise(name: &mut String) {
    let lead = name.len() - name.trim_start_matches(['-', '_', '+', '.']).len();
    if lead > 0 {
        name.drain(..lead);
    }
    if name.is_empty() {
        name.push_str(MISSING);
    }
    if name.len() > MAX_NAME_BYTES {
        let mut k = MAX_NAME_BYTES;
        // At most 3 steps back: a UTF-8 character is at most 4 bytes.
        while !name.is_char_boundary(k) {
            k -= 1;
        }
        name.truncate(k);
    }
}

/// Counts the distinct index names the encoder rendered (`sluice_indices_written`), in bounded
/// memory: a set of 64-bit hashes of at most [`Distinct::CAP`] names; past it the gauge stays
/// at the cap (the README's shard-count warning applies long before).
#[derive(Debug, Default)]
pub struct Distinct {
    seen: HashSet<u64>,
    gauge: Option<Gauge>,
}

impl Distinct {
    pub const CAP: usize = 10_000;

    pub fn new(gauge: Gauge) -> Distinct {
        Distinct {
            seen: HashSet::new(),
            gauge: Some(gauge),
        }
    }

    /// Called when the encoder renders a name (a new file or a new day), not per event.
    pub fn note(&mut self, name: &str) {
        let Some(gauge) = &self.gauge else {
            return;
        };
        if self.seen.len() >= Self::CAP {
            return;
        }
        if self
            .seen
            .insert(xxhash_rust::xxh3::xxh3_64(name.as_bytes()))
        {
            gauge.set(self.seen.len() as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str, no_dash: bool) -> String {
        let mut s = String::new();
        push_value(&mut s, v, no_dash);
        s
    }

    fn legal(v: &str) -> String {
        let mut s = v.to_string();
        legalise(&mut s);
        s
    }

    #[test]
    fn fields_parse_from_document_paths() {
        assert_eq!(Field::parse("kubernetes.namespace"), Some(Field::Namespace));
        assert_eq!(Field::parse("kubernetes.pod.name"), Some(Field::PodName));
        assert_eq!(
            Field::parse("kubernetes.container.name"),
            Some(Field::ContainerName)
        );
        assert_eq!(
            Field::parse("kubernetes.labels.app.kubernetes.io/name"),
            Some(Field::Label("app_kubernetes_io/name".into()))
        );
        assert_eq!(
            Field::parse("kubernetes.namespace_labels.tenant"),
            Some(Field::NamespaceLabel("tenant".into()))
        );
        assert_eq!(
            Field::parse("kubernetes.deployment.name"),
            Some(Field::Workload("deployment"))
        );
        assert_eq!(
            Field::parse("kubernetes.cronjob.name"),
            Some(Field::Workload("cronjob"))
        );
        assert_eq!(
            Field::parse("orchestrator.cluster.name"),
            Some(Field::ClusterName)
        );
        assert_eq!(Field::parse("sluice.dataset"), Some(Field::Dataset));
        for bad in [
            "kubernetes.labels.",
            "kubernetes.node.name",
            "kubernetes.pod.uid",
            "message",
            "",
        ] {
            assert_eq!(Field::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sanitise_lowercases() {
        assert_eq!(value("Shop-EU", false), "shop-eu");
        assert_eq!(value("ÄRGER", false), "ärger");
    }

    #[test]
    fn sanitise_replaces_each_forbidden_character_by_underscore() {
        for c in [
            '\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ':', ' ', '\t', '\n',
        ] {
            assert_eq!(value(&format!("a{c}b"), false), "a_b", "{c:?}");
        }
        assert_eq!(value("../", false), ".._");
    }

    #[test]
    fn sanitise_replaces_dashes_where_they_would_separate() {
        assert_eq!(value("x-othertenant", true), "x_othertenant");
        assert_eq!(value("x-othertenant", false), "x-othertenant");
    }

    #[test]
    fn legalise_strips_leading_dash_underscore_plus_and_dot() {
        assert_eq!(legal("-x"), "x");
        assert_eq!(legal("_x"), "x");
        assert_eq!(legal("+x"), "x");
        assert_eq!(legal(".x"), "x");
        assert_eq!(legal("-_+.x-y"), "x-y");
    }

    #[test]
    fn legalise_never_leaves_dot_dotdot_or_nothing() {
        assert_eq!(legal("."), MISSING);
        assert_eq!(legal(".."), MISSING);
        assert_eq!(legal(""), MISSING);
        assert_eq!(legal("a.."), "a..");
    }

    #[test]
    fn legalise_cuts_at_255_bytes_on_a_character_boundary() {
        assert_eq!(legal(&"a".repeat(300)).len(), 255);
        // 254 ASCII bytes, then a 2-byte character that would end at byte 256.
        let s = format!("{}é", "a".repeat(254));
        let l = legal(&s);
        assert_eq!(l, "a".repeat(254));
        assert!(legal(&"é".repeat(200)).len() <= 255);
    }

    #[test]
    fn document_lookup_reads_shipped_fields() {
        let doc = serde_json::json!({"kubernetes": {"namespace": "shop",
            "labels": {"app_kubernetes_io/name": "web"}, "deployment": {"name": "web"}}});
        let l = DocumentLookup(&doc);
        assert_eq!(l.value(&Field::Namespace), Some("shop"));
        assert_eq!(
            l.value(&Field::Label("app_kubernetes_io/name".into())),
            Some("web")
        );
        assert_eq!(l.value(&Field::Workload("deployment")), Some("web"));
        assert_eq!(l.value(&Field::PodName), None);
        assert_eq!(l.value(&Field::Dataset), None);
    }

    #[test]
    fn distinct_counts_each_name_once_and_is_bounded() {
        let g = Gauge::default();
        let mut d = Distinct::new(g.clone());
        d.note("a");
        d.note("b");
        d.note("a");
        assert_eq!(g.get(), 2);
        for i in 0..(Distinct::CAP + 50) {
            d.note(&format!("n{i}"));
        }
        assert_eq!(g.get(), Distinct::CAP as i64);
        assert!(d.seen.len() <= Distinct::CAP);
    }
}
