//! The metadata cache the watchers fill and the reader thread reads: pods of this node by uid
//! and by namespace/name, namespace labels, and a generation counter that moves on every change
//! so the reader re-renders only when something changed. Deleted pods stay for a grace period
//! so their last lines (read after the delete) are still enriched.
//!
//! The reader never waits on it: every access is a short lock, and the watchers only hold the
//! write lock to swap entries.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::meta::PodMeta;

/// One pod as the reader sees it.
#[derive(Debug, Clone)]
pub struct Found {
    pub pod: Arc<PodMeta>,
    pub namespace_labels: Labels,
    /// The namespace's `sluice.io/rate-limit` annotation, as written.
    pub namespace_rate_limit: Option<Arc<str>>,
    /// Changes whenever the pod or its namespace's labels change.
    pub version: u64,
}

#[derive(Debug)]
struct PodEntry {
    pod: Arc<PodMeta>,
    version: u64,
    deleted_at: Option<Instant>,
}

/// De-dotted `key = value` pairs.
pub type Labels = Arc<Vec<(String, String)>>;

#[derive(Debug)]
struct NamespaceEntry {
    labels: Labels,
    rate_limit: Option<Arc<str>>,
    version: u64,
    /// Deleted: dropped once none of its pods is left in the store.
    deleted: bool,
}

#[derive(Debug, Default)]
struct Inner {
    pods: HashMap<String, PodEntry>,
    by_name: HashMap<(String, String), String>,
    namespaces: HashMap<String, NamespaceEntry>,
}

#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Inner>,
    generation: AtomicU64,
    /// The pod watch has listed at least once: a pod not in the store is then not merely late.
    pods_synced: AtomicBool,
    /// A pod list or watch call failed before the first list completed.
    pods_failed_unsynced: AtomicBool,
}

impl Store {
    pub fn new() -> Arc<Store> {
        Arc::new(Store::default())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn pods_synced(&self) -> bool {
        self.pods_synced.load(Ordering::Acquire)
    }

    /// The first pod list is under way and nothing has failed yet: a pod missing from the store
    /// may simply not be listed yet (a node's list can take seconds on a loaded API server).
    pub fn first_pod_list_pending(&self) -> bool {
        !self.pods_synced() && !self.pods_failed_unsynced.load(Ordering::Acquire)
    }

    /// A pod list or watch call failed. Before the first list has completed, files stop waiting
    /// for it (they wait `metadata_wait` only).
    pub fn pod_watch_failed(&self) {
        if !self.pods_synced() {
            self.pods_failed_unsynced.store(true, Ordering::Release);
        }
    }

    pub fn set_pods_synced(&self) {
        self.pods_synced.store(true, Ordering::Release);
        self.bump();
    }

    fn bump(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic while holding the lock leaves maps that are still consistent entry by entry.
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A pod was added or changed. Unchanged metadata (status churn we do not ship) keeps its
    /// version, so the reader does not re-render.
    pub fn apply_pod(&self, pod: PodMeta) {
        let mut inner = self.write();
        if let Some(e) = inner.pods.get_mut(&pod.uid)
            && *e.pod == pod
            && e.deleted_at.is_none()
        {
            return;
        }
        let version = self.bump();
        let key = (pod.namespace.clone(), pod.name.clone());
        let uid = pod.uid.clone();
        inner.pods.insert(
            uid.clone(),
            PodEntry {
                pod: Arc::new(pod),
                version,
                deleted_at: None,
            },
        );
        inner.by_name.insert(key, uid);
    }

    /// A pod was deleted: keep it until `forget_deleted` drops it after the grace period.
    pub fn delete_pod(&self, uid: &str, now: Instant) {
        if let Some(e) = self.write().pods.get_mut(uid) {
            e.deleted_at.get_or_insert(now);
        }
    }

    /// After a re-list: pods not in it were deleted while the watch was away.
    pub fn retain_listed(&self, listed: &HashSet<String>, now: Instant) {
        let mut inner = self.write();
        for (uid, e) in inner.pods.iter_mut() {
            if !listed.contains(uid) {
                e.deleted_at.get_or_insert(now);
            }
        }
    }

    /// Drops pods deleted longer than `grace` ago. Returns how many remain.
    pub fn forget_deleted(&self, grace: Duration, now: Instant) -> usize {
        let mut inner = self.write();
        let Inner {
            pods,
            by_name,
            namespaces,
        } = &mut *inner;
        pods.retain(|_, e| {
            e.deleted_at
                .is_none_or(|t| now.saturating_duration_since(t) < grace)
        });
        by_name.retain(|_, uid| pods.contains_key(uid));
        if namespaces.values().any(|n| n.deleted) {
            let used: HashSet<&str> = pods.values().map(|e| e.pod.namespace.as_str()).collect();
            namespaces.retain(|name, n| !n.deleted || used.contains(name.as_str()));
        }
        pods.len()
    }

    pub fn apply_namespace(&self, name: &str, labels: Vec<(String, String)>) {
        self.apply_namespace_with_budget(name, labels, None);
    }

    /// A namespace was added or changed: its labels and its `sluice.io/rate-limit` annotation.
    pub fn apply_namespace_with_budget(
        &self,
        name: &str,
        labels: Vec<(String, String)>,
        rate_limit: Option<Arc<str>>,
    ) {
        let mut inner = self.write();
        if let Some(n) = inner.namespaces.get_mut(name)
            && *n.labels == labels
            && n.rate_limit == rate_limit
        {
            n.deleted = false;
            return;
        }
        let version = self.bump();
        inner.namespaces.insert(
            name.to_string(),
            NamespaceEntry {
                labels: Arc::new(labels),
                rate_limit,
                version,
                deleted: false,
            },
        );
    }

    /// A namespace was deleted: its labels stay while its pods' metadata does (their grace
    /// period), then go, so namespaces that come and go do not pile up.
    pub fn delete_namespace(&self, name: &str) {
        if let Some(n) = self.write().namespaces.get_mut(name) {
            n.deleted = true;
        }
    }

    /// By uid (the `/var/log/pods` path has it) else by namespace and name.
    pub fn find(&self, uid: Option<&str>, namespace: &str, name: &str) -> Option<Found> {
        let inner = self.read();
        let entry = match uid {
            Some(uid) => inner.pods.get(uid),
            None => inner
                .by_name
                .get(&(namespace.to_string(), name.to_string()))
                .and_then(|uid| inner.pods.get(uid)),
        }?;
        let (namespace_labels, namespace_rate_limit, ns_version) =
            inner.namespaces.get(&entry.pod.namespace).map_or_else(
                || (Arc::new(Vec::new()), None, 0),
                |n| (n.labels.clone(), n.rate_limit.clone(), n.version),
            );
        Some(Found {
            pod: entry.pod.clone(),
            namespace_labels,
            namespace_rate_limit,
            version: entry.version.max(ns_version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, name: &str) -> PodMeta {
        PodMeta {
            namespace: "ns".into(),
            name: name.into(),
            uid: uid.into(),
            ..PodMeta::default()
        }
    }

    #[test]
    fn the_first_list_is_pending_until_it_completes_or_a_call_fails() {
        let s = Store::new();
        assert!(s.first_pod_list_pending());
        s.set_pods_synced();
        assert!(!s.first_pod_list_pending());
        // A failure after the first list changes nothing: files then wait `metadata_wait`.
        s.pod_watch_failed();
        assert!(!s.first_pod_list_pending() && s.pods_synced());

        let failed = Store::new();
        failed.pod_watch_failed();
        assert!(!failed.first_pod_list_pending());
        failed.set_pods_synced();
        assert!(!failed.first_pod_list_pending());
    }

    #[test]
    fn deleted_pods_stay_for_the_grace_period() {
        let s = Store::new();
        let t0 = Instant::now();
        s.apply_pod(pod("u1", "a"));
        s.delete_pod("u1", t0);
        s.forget_deleted(Duration::from_secs(300), t0 + Duration::from_secs(299));
        assert!(s.find(Some("u1"), "", "").is_some());
        s.forget_deleted(Duration::from_secs(300), t0 + Duration::from_secs(301));
        assert!(s.find(Some("u1"), "", "").is_none());
        assert!(s.find(None, "ns", "a").is_none());
    }

    #[test]
    fn versions_move_only_on_real_changes() {
        let s = Store::new();
        s.apply_pod(pod("u1", "a"));
        let v1 = s.find(None, "ns", "a").unwrap().version;
        s.apply_pod(pod("u1", "a"));
        assert_eq!(s.find(None, "ns", "a").unwrap().version, v1);
        s.apply_namespace("ns", vec![("team".into(), "x".into())]);
        let f = s.find(Some("u1"), "", "").unwrap();
        assert!(f.version > v1);
        assert_eq!(f.namespace_labels.len(), 1);
        // The namespace's budget annotation is a change too.
        s.apply_namespace_with_budget("ns", vec![("team".into(), "x".into())], Some("1MiB".into()));
        let g = s.find(Some("u1"), "", "").unwrap();
        assert!(g.version > f.version);
        assert_eq!(g.namespace_rate_limit.as_deref(), Some("1MiB"));
    }

    #[test]
    fn a_deleted_namespace_goes_with_its_last_pod() {
        let s = Store::new();
        let t0 = Instant::now();
        s.apply_namespace("ns", vec![("team".into(), "x".into())]);
        s.apply_namespace("other", vec![("team".into(), "y".into())]);
        s.apply_pod(pod("u1", "a"));
        s.delete_namespace("ns");
        s.delete_namespace("other");
        s.forget_deleted(Duration::from_secs(60), t0);
        // Still used by a pod: kept.
        assert_eq!(
            s.find(Some("u1"), "", "").unwrap().namespace_labels.len(),
            1
        );
        assert_eq!(s.read().namespaces.len(), 1);
        s.delete_pod("u1", t0);
        s.forget_deleted(Duration::ZERO, t0);
        assert!(s.read().namespaces.is_empty());
    }

    #[test]
    fn relist_marks_missing_pods_deleted() {
        let s = Store::new();
        let t0 = Instant::now();
        s.apply_pod(pod("u1", "a"));
        s.apply_pod(pod("u2", "b"));
        s.retain_listed(&HashSet::from(["u2".to_string()]), t0);
        assert_eq!(s.forget_deleted(Duration::ZERO, t0), 1);
        assert!(s.find(Some("u2"), "", "").is_some());
    }
}
