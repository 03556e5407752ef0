//! A file's route: its own index pattern, with `elasticsearch.index`'s field references filled
//! from what the path and the API server tell about its pod. Resolved once, at the file's first
//! rendering, and then kept for the whole file: a label that changes later does not move the
//! file's lines (a re-rendering keeps the route). Never per event; no I/O.

use crate::config::Config;
use crate::kubernetes::{PodRef, meta::Workload, store::Found};
use crate::sink::elasticsearch::IndexPattern;
use crate::sink::elasticsearch::encode::NodeFields;
use crate::sink::elasticsearch::route::{Field, Lookup};

/// `elasticsearch.index` when it holds field references.
#[derive(Debug, Clone)]
pub(super) struct Routing {
    pattern: IndexPattern,
    data_stream: bool,
}

impl Routing {
    /// `None` when the index has no field references (the encoder's pattern serves every file).
    pub(super) fn new(cfg: &Config) -> Option<Routing> {
        let es = &cfg.elasticsearch;
        es.index.is_routed().then(|| Routing {
            pattern: es.index.clone(),
            data_stream: es.data_stream,
        })
    }

    /// The file's pattern from its values; the dates stay for the encoder.
    pub(super) fn resolve(
        &self,
        pod: Option<&PodRef>,
        found: Option<&Found>,
        node: &NodeFields,
    ) -> IndexPattern {
        self.pattern
            .resolve(&FileValues { pod, found, node }, self.data_stream)
    }
}

/// One file's values: the path's (namespace, pod, container), the API server's (labels,
/// namespace labels, workload, dataset), the node's (cluster).
struct FileValues<'a> {
    pod: Option<&'a PodRef>,
    found: Option<&'a Found>,
    node: &'a NodeFields,
}

impl Lookup for FileValues<'_> {
    fn value(&self, field: &Field) -> Option<&str> {
        let meta = self.found.map(|f| &*f.pod);
        let find = |pairs: &'_ [(String, String)], key: &str| -> Option<usize> {
            pairs.iter().position(|(k, _)| k == key)
        };
        match field {
            Field::Namespace => self.pod.map(|p| p.namespace.as_str()),
            Field::PodName => self.pod.map(|p| p.pod_name.as_str()),
            Field::ContainerName => self.pod.map(|p| p.container_name.as_str()),
            Field::Label(k) => {
                let labels = &meta?.labels;
                find(labels, k).map(|i| labels[i].1.as_str())
            }
            Field::NamespaceLabel(k) => {
                let labels = &self.found?.namespace_labels;
                find(labels, k).map(|i| labels[i].1.as_str())
            }
            Field::Workload(kind) => workload(meta?.workload.as_ref()?, kind),
            Field::ClusterName => self.node.cluster_name.as_deref(),
            Field::Dataset => meta?.dataset.as_deref(),
        }
    }
}

/// The workload's name when it is of `kind` (a CronJob's pod has both a cronjob and a job).
fn workload<'a>(w: &'a Workload, kind: &str) -> Option<&'a str> {
    match (w, kind) {
        (Workload::Deployment(n), "deployment")
        | (Workload::ReplicaSet(n), "replicaset")
        | (Workload::StatefulSet(n), "statefulset")
        | (Workload::DaemonSet(n), "daemonset")
        | (Workload::Job(n), "job")
        | (Workload::CronJob(n, _), "cronjob")
        | (Workload::CronJob(_, n), "job") => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kubernetes::meta::PodMeta;

    fn pod_ref() -> PodRef {
        PodRef {
            namespace: "team-a".into(),
            pod_name: "web-1".into(),
            pod_uid: Some("u1".into()),
            container_name: "app".into(),
            container_id: None,
        }
    }

    fn found(dataset: Option<&str>) -> Found {
        Found {
            pod: Arc::new(PodMeta {
                namespace: "team-a".into(),
                name: "web-1".into(),
                uid: "u1".into(),
                labels: vec![("app_kubernetes_io/name".into(), "Web".into())],
                workload: Some(Workload::CronJob(
                    "nightly".into(),
                    "nightly-29012345".into(),
                )),
                dataset: dataset.map(String::from),
                ..PodMeta::default()
            }),
            namespace_labels: Arc::new(vec![("tenant".into(), "acme".into())]),
            namespace_rate_limit: None,
            version: 1,
        }
    }

    fn routing(pattern: &str, data_stream: bool) -> Routing {
        Routing {
            pattern: IndexPattern::parse("elasticsearch.index", pattern).unwrap(),
            data_stream,
        }
    }

    const NODE: fn() -> NodeFields = || NodeFields {
        node_name: "n1".into(),
        cluster_name: Some("EU-1".into()),
        fluentd: None,
    };

    #[test]
    fn values_come_from_path_api_and_node() {
        let r = routing(
            "{kubernetes.namespace}.{kubernetes.pod.name}.{kubernetes.container.name}.{kubernetes.labels.app.kubernetes.io/name}.{kubernetes.namespace_labels.tenant}.{kubernetes.cronjob.name}.{kubernetes.job.name}.{orchestrator.cluster.name}.{sluice.dataset}",
            false,
        );
        let f = found(Some("nginx"));
        let p = r.resolve(Some(&pod_ref()), Some(&f), &NODE());
        assert_eq!(
            p.render((2026, 1, 2)),
            "team-a.web-1.app.web.acme.nightly.nightly-29012345.eu-1.nginx"
        );
    }

    #[test]
    fn without_api_metadata_the_path_still_routes() {
        let r = routing(
            "logs-{kubernetes.namespace}-{sluice.dataset|default}-{kubernetes.labels.x}",
            false,
        );
        let p = r.resolve(Some(&pod_ref()), None, &NODE());
        assert_eq!(p.render((2026, 1, 2)), "logs-team-a-default-unknown");
        let p = r.resolve(None, None, &NODE());
        assert_eq!(p.render((2026, 1, 2)), "logs-unknown-default-unknown");
    }

    #[test]
    fn data_stream_mode_follows_type_dataset_namespace() {
        let r = routing("logs-{sluice.dataset|generic}-{kubernetes.namespace}", true);
        let f = found(Some("web-x"));
        let p = r.resolve(Some(&pod_ref()), Some(&f), &NODE());
        assert_eq!(p.render((0, 0, 0)), "logs-web_x-team_a");
    }

    #[test]
    fn routing_is_off_without_references() {
        let cfg = |index: &str| {
            crate::config::Config::from_yaml(
                &format!("state_dir: /s\nnode_name: n\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n  index: \"{index}\"\n"),
                &|_| None,
            )
            .unwrap()
        };
        assert!(Routing::new(&cfg("logs-%Y")).is_none());
        assert!(Routing::new(&cfg("logs-{kubernetes.namespace}-%Y")).is_some());
    }
}
