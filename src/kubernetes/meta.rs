//! Pod metadata as sluice ships it, derived from a `Pod` object: labels and allow-listed
//! annotations de-dotted, the owning workload derived from owner references and names (the
//! RBAC stays pods + namespaces, so a ReplicaSet or Job is never fetched), per-container image
//! and id, and the `sluice.io/*` annotations that steer collection.

use k8s_openapi::api::core::v1::Pod;

/// What a `sluice.io/parser*` annotation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    Json,
    Text,
}

/// The workload that owns a pod, as far as its owner reference and names tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    Deployment(String),
    ReplicaSet(String),
    StatefulSet(String),
    DaemonSet(String),
    Job(String),
    /// A Job created by a CronJob: (cronjob, job).
    CronJob(String, String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    pub name: String,
    pub image: Option<String>,
    /// Without the runtime scheme (`containerd://`).
    pub id: Option<String>,
    /// The image and its digest as the runtime reports them (`status.containerStatuses[].image`,
    /// `.imageID`): what the Fluentd metadata filter ships (`compat: fluentd`).
    pub status_image: Option<String>,
    pub image_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ip: Option<String>,
    /// De-dotted keys, sorted (a `BTreeMap` in the object).
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub workload: Option<Workload>,
    pub containers: Vec<ContainerMeta>,
    /// `sluice.io/exclude: "true"`.
    pub exclude: bool,
    /// `sluice.io/exclude-containers: a,b`.
    pub exclude_containers: Vec<String>,
    /// `sluice.io/parser`.
    pub parser: Option<Parser>,
    /// `sluice.io/parser-<container>`.
    pub container_parsers: Vec<(String, Parser)>,
    /// `sluice.io/multiline`, as written (trimmed): the reader resolves and validates it, since
    /// this module knows nothing of multiline presets.
    pub multiline: Option<String>,
    /// `sluice.io/rate-limit`, as written (trimmed): the reader parses it (a malformed value is
    /// warned about once per pod and ignored), and it may only lower the namespace's budget.
    pub rate_limit: Option<String>,
    /// `sluice.io/multiline-<container>`.
    pub container_multiline: Vec<(String, String)>,
    /// `sluice.io/dataset`, as written (trimmed; empty is none): fills `{sluice.dataset}` in a
    /// routed index, where it is sanitised. The pod's own choice, so a routed pattern must put
    /// it after the namespace (README, "Routing").
    pub dataset: Option<String>,
}

impl PodMeta {
    pub fn container(&self, name: &str) -> Option<&ContainerMeta> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Whether this container's lines are dropped.
    pub fn excludes(&self, container: &str) -> bool {
        self.exclude || self.exclude_containers.iter().any(|c| c == container)
    }

    /// The parser this pod asks for one container, if any.
    pub fn parser_for(&self, container: &str) -> Option<Parser> {
        self.container_parsers
            .iter()
            .find(|(c, _)| c == container)
            .map(|(_, p)| *p)
            .or(self.parser)
    }

    /// The multiline choice this pod asks for one container (the container's own annotation
    /// first), if any; the value as written.
    pub fn multiline_for(&self, container: &str) -> Option<&str> {
        self.container_multiline
            .iter()
            .find(|(c, _)| c == container)
            .map(|(_, v)| v.as_str())
            .or(self.multiline.as_deref())
    }
}

const EXCLUDE: &str = "sluice.io/exclude";
/// A read budget: on a namespace (set by cluster admins) and on a pod (may only lower it).
pub const RATE_LIMIT: &str = "sluice.io/rate-limit";
const EXCLUDE_CONTAINERS: &str = "sluice.io/exclude-containers";
const PARSER: &str = "sluice.io/parser";
const MULTILINE: &str = "sluice.io/multiline";
const DATASET: &str = "sluice.io/dataset";

/// `app.kubernetes.io/name` → `app_kubernetes_io/name`: a key can then never be both a value
/// and the parent object of another key in the mapping.
pub fn dedot(key: &str) -> String {
    key.replace('.', "_")
}

/// Builds the shipped metadata of a pod. `allow` lists the annotation keys (original spelling)
/// that are copied; a trailing `*` matches a prefix.
pub fn from_pod(pod: &Pod, allow: &[String]) -> Option<PodMeta> {
    let md = &pod.metadata;
    let uid = md.uid.clone()?;
    let mut meta = PodMeta {
        namespace: md.namespace.clone().unwrap_or_default(),
        name: md.name.clone().unwrap_or_default(),
        uid,
        ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
        ..PodMeta::default()
    };
    if let Some(labels) = &md.labels {
        meta.labels = labels.iter().map(|(k, v)| (dedot(k), v.clone())).collect();
    }
    if let Some(ann) = &md.annotations {
        for (k, v) in ann {
            if allowed(k, allow) {
                meta.annotations.push((dedot(k), v.clone()));
            }
            if k == EXCLUDE {
                meta.exclude = v.trim().eq_ignore_ascii_case("true");
            } else if k == EXCLUDE_CONTAINERS {
                meta.exclude_containers = v
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
            } else if k == PARSER {
                meta.parser = parse_parser(v);
            } else if let Some(c) = k.strip_prefix(PARSER).and_then(|r| r.strip_prefix('-'))
                && let Some(p) = parse_parser(v)
            {
                meta.container_parsers.push((c.to_string(), p));
            } else if k == RATE_LIMIT {
                meta.rate_limit = Some(v.trim().to_string());
            } else if k == DATASET {
                meta.dataset = Some(v.trim().to_string()).filter(|d| !d.is_empty());
            } else if k == MULTILINE {
                meta.multiline = Some(v.trim().to_string());
            } else if let Some(c) = k.strip_prefix(MULTILINE).and_then(|r| r.strip_prefix('-')) {
                meta.container_multiline
                    .push((c.to_string(), v.trim().to_string()));
            }
        }
    }
    let hash = md
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .map(String::as_str);
    meta.workload = md
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .or_else(|| md.owner_references.iter().flatten().next())
        .and_then(|o| workload(&o.kind, &o.name, hash));

    let spec_containers = pod.spec.iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    for c in spec_containers {
        meta.containers.push(ContainerMeta {
            name: c.name.clone(),
            image: c.image.clone(),
            ..ContainerMeta::default()
        });
    }
    let statuses = pod.status.iter().flat_map(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
    });
    for st in statuses {
        let id = st.container_id.as_deref().map(|id| {
            id.split_once("://")
                .map_or(id, |(_, rest)| rest)
                .to_string()
        });
        let image_id = Some(st.image_id.clone()).filter(|i| !i.is_empty());
        let status_image = Some(st.image.clone()).filter(|i| !i.is_empty());
        match meta.containers.iter_mut().find(|c| c.name == st.name) {
            Some(c) => {
                c.id = id.or(c.id.take());
                c.status_image = status_image;
                c.image_id = image_id;
            }
            None => meta.containers.push(ContainerMeta {
                name: st.name.clone(),
                image: Some(st.image.clone()),
                id,
                status_image,
                image_id,
            }),
        }
    }
    Some(meta)
}

fn allowed(key: &str, allow: &[String]) -> bool {
    allow.iter().any(|a| match a.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => a == key,
    })
}

fn parse_parser(v: &str) -> Option<Parser> {
    match v.trim() {
        "json" => Some(Parser::Json),
        "text" => Some(Parser::Text),
        other => {
            tracing::debug!(value = other, "unknown sluice.io/parser value ignored");
            None
        }
    }
}

/// Derives the workload from the controlling owner reference. A Deployment's ReplicaSet is
/// named `<deployment>-<pod-template-hash>`; a CronJob's Job `<cronjob>-<scheduled minute>`.
pub fn workload(kind: &str, name: &str, template_hash: Option<&str>) -> Option<Workload> {
    let name = name.to_string();
    Some(match kind {
        "ReplicaSet" => match template_hash
            .and_then(|h| name.strip_suffix(h))
            .and_then(|n| n.strip_suffix('-'))
        {
            Some(d) if !d.is_empty() => Workload::Deployment(d.to_string()),
            _ => Workload::ReplicaSet(name),
        },
        "StatefulSet" => Workload::StatefulSet(name),
        "DaemonSet" => Workload::DaemonSet(name),
        "Job" => match name.rsplit_once('-') {
            // The CronJob controller appends the scheduled time in minutes since the epoch:
            // eight digits or more for any date after 1970-07. Shorter suffixes are a user's.
            Some((cron, minute))
                if !cron.is_empty()
                    && minute.len() >= 8
                    && minute.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Workload::CronJob(cron.to_string(), name)
            }
            _ => Workload::Job(name),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedots_keys() {
        assert_eq!(dedot("app.kubernetes.io/name"), "app_kubernetes_io/name");
        assert_eq!(dedot("app"), "app");
    }

    #[test]
    fn workloads_from_owner_names() {
        assert_eq!(
            workload("ReplicaSet", "web-7d4b9c6f8", Some("7d4b9c6f8")),
            Some(Workload::Deployment("web".into()))
        );
        // A bare ReplicaSet (no template hash label) is not a Deployment.
        assert_eq!(
            workload("ReplicaSet", "web-7d4b9c6f8", None),
            Some(Workload::ReplicaSet("web-7d4b9c6f8".into()))
        );
        assert_eq!(
            workload("Job", "nightly-29012345", None),
            Some(Workload::CronJob(
                "nightly".into(),
                "nightly-29012345".into()
            ))
        );
        assert_eq!(
            workload("Job", "migrate-2", None),
            Some(Workload::Job("migrate-2".into()))
        );
        assert_eq!(
            workload("StatefulSet", "db", None),
            Some(Workload::StatefulSet("db".into()))
        );
        assert_eq!(workload("Node", "n1", None), None);
    }

    #[test]
    fn annotations_allow_list_and_controls() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"app.kubernetes.io/name": "web"},
                "annotations": {"team.example.com/owner": "a", "secret": "x",
                    "sluice.io/exclude-containers": "sidecar, proxy",
                    "sluice.io/parser-app": "json", "sluice.io/parser": "text",
                    "sluice.io/multiline": " java ", "sluice.io/multiline-sidecar": "none",
                    "sluice.io/dataset": " nginx "}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            "status": {"podIP": "10.0.0.1", "containerStatuses": [{"name": "app", "image": "nginx:1",
                "imageID": "", "ready": true, "restartCount": 0, "containerID": "containerd://abc"}]}
        }))
        .unwrap();
        let m = from_pod(&pod, &["team.example.com/*".to_string()]).unwrap();
        assert_eq!(
            m.labels,
            vec![("app_kubernetes_io/name".into(), "web".into())]
        );
        assert_eq!(
            m.annotations,
            vec![("team_example_com/owner".into(), "a".into())]
        );
        assert!(m.excludes("proxy") && !m.excludes("app"));
        assert_eq!(m.parser_for("app"), Some(Parser::Json));
        assert_eq!(m.parser_for("other"), Some(Parser::Text));
        assert_eq!(m.container("app").unwrap().id.as_deref(), Some("abc"));
        assert_eq!(m.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(m.multiline_for("app"), Some("java"));
        assert_eq!(m.multiline_for("sidecar"), Some("none"));
        assert_eq!(m.dataset.as_deref(), Some("nginx"));
    }
}
