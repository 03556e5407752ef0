//! What the benchmark's pods and namespaces look like in the API server: the metadata a
//! production Deployment's pod typically carries (recommended `app.kubernetes.io/*` labels, a
//! team, a chart, annotations of which some are allow-listed, an owning ReplicaSet, an image, a
//! pod IP), so the fragment the agent renders into every event is of realistic size (about
//! 1.2 KiB, the bare probe). Pure: JSON objects only, no I/O. Values are derived from the
//! tree's names and container ids, so a tree always gets the same pods.

use serde_json::{Value, json};

use crate::tree::Container;

/// `spec.nodeName` of every pod, and the agent's `node_name`.
pub const NODE: &str = "bench-node";

/// A pod label whose value is fresh for every run set: no log path holds it, so a document that
/// carries it was enriched from the API server.
pub const MARKER_LABEL: &str = "bench.sluice.io/run-set";

/// The agent's `kubernetes.annotation_allowlist`.
pub const ANNOTATION_ALLOWLIST: &[&str] = &["team.example.com/owner", "app.example.com/*"];

/// `app.kubernetes.io/component` of the apps `sluice-loggen` names its containers after.
fn component(app: &str) -> &'static str {
    match app {
        "web" => "frontend",
        "gateway" => "ingress",
        "worker" | "indexer" => "worker",
        _ => "backend",
    }
}

fn team(namespace: &str) -> String {
    match namespace {
        "kube-system" | "monitoring" => "platform".to_string(),
        ns => format!("{ns}-team"),
    }
}

/// A release version that differs between pods but is fixed for a tree.
fn version(c: &Container) -> String {
    let b = c.container_id.as_bytes();
    format!("1.{}.{}", b[0] % 20, b[1] % 10)
}

/// `<deployment>-<pod-template-hash>-<suffix>` → (deployment, hash), as sluice-loggen names pods.
fn deployment_and_hash(pod: &str) -> Option<(&str, &str)> {
    let (rs, _suffix) = pod.rsplit_once('-')?;
    rs.rsplit_once('-')
}

pub fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {
            "team": team(name),
            "environment": "production",
        }},
    })
}

/// The pod as a Deployment's ReplicaSet would create it, bound to [`NODE`].
pub fn pod(c: &Container, marker: &str) -> Value {
    let app = c.container.as_str();
    let v = version(c);
    // Real pods carry more (a chart, managed-by, …): these make the ≈ 1.2 KiB.
    let mut labels = json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{}", c.namespace),
        "app.kubernetes.io/version": v,
        "app.kubernetes.io/component": component(app),
        "app.kubernetes.io/part-of": format!("{}-platform", c.namespace),
        "team": team(&c.namespace),
        MARKER_LABEL: marker,
    });
    let mut owners = json!([]);
    if let Some((deployment, hash)) = deployment_and_hash(&c.pod) {
        labels["pod-template-hash"] = json!(hash);
        owners = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deployment}-{hash}"),
            "uid": uuid_from(&c.container_id[8..40]), "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": c.pod, "namespace": c.namespace, "labels": labels,
            "annotations": {
                "team.example.com/owner": format!("{}@example.com", team(&c.namespace)),
                "app.example.com/git-commit": &c.container_id[..40],
                // Not allow-listed: present on real pods, not shipped.
                "team.example.com/runbook": format!("https://runbooks.example.com/{}/{app}", c.namespace),
                "kubectl.kubernetes.io/restartedAt": "2026-11-20T09:14:03Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "checksum/config": &c.container_id,
            },
            "ownerReferences": owners,
        },
        "spec": {
            "nodeName": NODE,
            "serviceAccountName": app,
            "containers": [{
                "name": app,
                "image": image(c),
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                "securityContext": {"runAsNonRoot": true, "runAsUser": 10001,
                                    "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false},
            }],
        },
    })
}

fn image(c: &Container) -> String {
    format!(
        "registry.example.com/{}/{}:{}",
        c.namespace,
        c.container,
        version(c)
    )
}

/// The status the kubelet would report for the running pod (a `status` subresource patch: the
/// API server ignores the status of a created pod). `index` spreads the pod IPs.
pub fn status(c: &Container, index: usize) -> Value {
    let ip = format!("10.244.{}.{}", (index / 250) % 256, index % 250 + 2);
    json!({"status": {
        "phase": "Running",
        "podIP": ip, "podIPs": [{"ip": ip}],
        "containerStatuses": [{
            "name": c.container,
            "image": image(c),
            "imageID": format!("registry.example.com/{}/{}@sha256:{}", c.namespace, c.container, c.container_id),
            "containerID": format!("containerd://{}", c.container_id),
            "ready": true, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-11-24T08:00:00Z"}},
        }],
    }})
}

/// 32 hex digits as a UUID.
fn uuid_from(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_and_hash_from_a_loggen_pod_name() {
        assert_eq!(
            deployment_and_hash("web-1a2b3c4d-0f3e2"),
            Some(("web", "1a2b3c4d"))
        );
        assert_eq!(deployment_and_hash("db"), None);
    }
}
