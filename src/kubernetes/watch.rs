//! The watches that fill the store: this node's pods (field selector `spec.nodeName`) and all
//! namespaces (for their labels). List once, then watch; never a GET per pod. Errors back off
//! (kube's default: 0.8 s doubling to 30 s, with jitter) and the watch resumes; after an API
//! server restart the stale resourceVersion is refused (410) and the watcher re-lists, which
//! also reveals pods deleted meanwhile.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch as signal;

use super::config::{KubernetesConfig, Source};
use super::meta;
use super::store::Store;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("in-cluster credentials: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("client: {0}")]
    Client(#[from] kube::Error),
}

/// Builds the API client from the configured source. Nothing is contacted yet.
pub async fn client(source: &Source) -> Result<Client, ClientError> {
    let config = match source {
        Source::InCluster => kube::Config::incluster()?,
        Source::Kubeconfig(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        Source::Url {
            url,
            token_file,
            ca_file,
        } => {
            // The same shape as a kubeconfig, so kube re-reads the token file as it rotates.
            let mut cluster = serde_json::json!({"server": url});
            if let Some(ca) = ca_file {
                cluster["certificate-authority"] = ca.to_string_lossy().into();
            }
            let mut user = serde_json::json!({});
            if let Some(t) = token_file {
                user["tokenFile"] = t.to_string_lossy().into();
            }
            let doc = serde_json::json!({
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            });
            let kc = kube::config::Kubeconfig::from_yaml(&doc.to_string())?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
    };
    Ok(Client::try_from(config)?)
}

/// Runs the pod watch until `stop` turns true.
pub async fn watch_pods(
    client: Client,
    node_name: String,
    cfg: KubernetesConfig,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    mut stop: signal::Receiver<bool>,
) {
    let api: Api<Pod> = Api::all(client);
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let mut stream = watcher::watcher(api, wc).default_backoff().boxed();
    let mut listing: Option<HashSet<String>> = None;
    let mut sweep = tokio::time::interval(
        Duration::from_secs(5).min(cfg.deleted_pod_grace.max(Duration::from_millis(100))),
    );
    loop {
        let item = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = sweep.tick() => {
                let n = store.forget_deleted(cfg.deleted_pod_grace, Instant::now());
                metrics.kube_pods_cached.set(n as i64);
                continue;
            }
            item = stream.next() => item,
        };
        let Some(item) = item else {
            // The watcher stream is endless; an end would be a kube bug. Say so and stop.
            tracing::error!("pod watch ended unexpectedly");
            return;
        };
        match item {
            Ok(Event::Init) => {
                listing = Some(HashSet::new());
            }
            Ok(Event::InitApply(pod)) => {
                if let Some(m) = meta::from_pod(&pod, &cfg.annotation_allowlist) {
                    if let Some(l) = &mut listing {
                        l.insert(m.uid.clone());
                    }
                    store.apply_pod(m);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(l) = listing.take() {
                    store.retain_listed(&l, Instant::now());
                    tracing::info!(pods = l.len(), node = %node_name, "pod metadata listed");
                }
                store.set_pods_synced();
                // Counted once the list is complete: kube emits `Init` before each list
                // attempt, so a failing list would otherwise count as a restart too.
                metrics
                    .kube_watch_restarts
                    .get_or_create(&resource("pods"))
                    .inc();
            }
            Ok(Event::Apply(pod)) => {
                if let Some(m) = meta::from_pod(&pod, &cfg.annotation_allowlist) {
                    store.apply_pod(m);
                }
            }
            Ok(Event::Delete(pod)) => {
                if let Some(uid) = &pod.metadata.uid {
                    store.delete_pod(uid, Instant::now());
                }
            }
            Err(e) => {
                metrics
                    .kube_watch_errors
                    .get_or_create(&resource("pods"))
                    .inc();
                store.pod_watch_failed();
                tracing::warn!(error = %e, "pod watch failed; retrying with backoff");
            }
        }
    }
}

/// Runs the namespace watch (labels and the `sluice.io/rate-limit` annotation) until `stop` turns true.
pub async fn watch_namespaces(
    client: Client,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    mut stop: signal::Receiver<bool>,
) {
    let api: Api<Namespace> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        let item = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            item = stream.next() => item,
        };
        let Some(item) = item else {
            tracing::error!("namespace watch ended unexpectedly");
            return;
        };
        match item {
            Ok(Event::Apply(ns)) | Ok(Event::InitApply(ns)) => {
                let labels = ns
                    .metadata
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| (meta::dedot(k), v.clone()))
                    .collect();
                // The one namespace annotation kept: the read budget cluster admins set.
                let rate_limit = ns
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(meta::RATE_LIMIT))
                    .map(|v| Arc::from(v.trim()));
                if let Some(name) = &ns.metadata.name {
                    store.apply_namespace_with_budget(name, labels, rate_limit);
                }
            }
            Ok(Event::Delete(ns)) => {
                if let Some(name) = &ns.metadata.name {
                    store.delete_namespace(name);
                }
            }
            Ok(Event::Init) => {}
            Ok(Event::InitDone) => {
                metrics
                    .kube_watch_restarts
                    .get_or_create(&resource("namespaces"))
                    .inc();
            }
            Err(e) => {
                metrics
                    .kube_watch_errors
                    .get_or_create(&resource("namespaces"))
                    .inc();
                tracing::warn!(error = %e, "namespace watch failed; retrying with backoff");
            }
        }
    }
}

fn resource(name: &'static str) -> crate::telemetry::metrics::Resource {
    crate::telemetry::metrics::Resource { resource: name }
}
