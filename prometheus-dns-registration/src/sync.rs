//! One resync: list the zones → wanted static_configs → read the ConfigMap → edit → write when
//! something changed (conditional on the resourceVersion read, retried on conflict) →
//! optionally ask Prometheus to reload.
//!
//! Every run recomputes everything from Route53, so running it twice, or after a missed
//! event, is harmless. Errors are returned, never turned into a process exit.

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::config::Config;
use crate::kube::{ApiStore, ConfigMapStore, KubeError, WriteOutcome};
use crate::prometheus_config::{self as pc, EditError, JobChange};
use crate::route53::{self, NameFilter, Route53Error};
use crate::targets::{self, StaticConfig};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Route53(#[from] Route53Error),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("ConfigMap {configmap}: {source}")]
    Edit {
        configmap: String,
        source: EditError,
    },
    #[error(
        "ConfigMap {configmap} kept changing under us: {attempts} write attempts ended in a conflict"
    )]
    ConflictRetriesExhausted { configmap: String, attempts: u32 },
    #[error("Prometheus reload {url}: {message}")]
    Reload { url: String, message: String },
}

/// The wanted `static_configs` of the managed jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub federation: Vec<StaticConfig>,
    pub probes: Option<Vec<StaticConfig>>,
}

/// Lists the zones and builds the wanted targets.
pub async fn desired(
    cfg: &Config,
    route53: &aws_sdk_route53::Client,
) -> Result<Desired, SyncError> {
    let no_exclusions = Default::default();
    let records = route53::list_records(route53, &cfg.targets.hosted_zone_id).await?;
    let names = route53::select_names(
        &records,
        &NameFilter {
            suffix: &cfg.targets.suffix,
            exclude: &no_exclusions,
        },
    );
    tracing::info!(zone = %cfg.targets.hosted_zone_id, records = records.len(), selected = names.len(), "federation targets listed");
    if names.is_empty() {
        tracing::warn!(zone = %cfg.targets.hosted_zone_id, suffix = %cfg.targets.suffix, "no record matches: only static targets will be federated");
    }
    let federation =
        targets::federation_static_configs(&cfg.static_targets, &names, cfg.target_port);

    let probes = match &cfg.probes {
        None => None,
        Some(probe) => {
            let records = route53::list_records(route53, &probe.source.hosted_zone_id).await?;
            let names = route53::select_names(
                &records,
                &NameFilter {
                    suffix: &probe.source.suffix,
                    exclude: &probe.exclude,
                },
            );
            tracing::info!(zone = %probe.source.hosted_zone_id, records = records.len(), selected = names.len(), "probe targets listed");
            Some(targets::probe_static_configs(&names, probe))
        }
    };
    Ok(Desired { federation, probes })
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub configmap: String,
    pub federation_targets: usize,
    pub probe_targets: Option<usize>,
    /// The document differs from the wanted one.
    pub changed: bool,
    /// The ConfigMap was updated (never in a dry run).
    pub written: bool,
    pub dry_run: bool,
    /// Read-edit-write rounds (more than one after a conflict).
    pub attempts: u32,
    pub reloaded: bool,
    /// Unified diff of the rendered document (empty when unchanged).
    #[serde(skip)]
    pub diff: String,
}

/// The document before and after the edit.
#[derive(Debug)]
pub struct Edited {
    pub old: serde_norway::Value,
    pub new: serde_norway::Value,
    pub federation: JobChange,
    pub probes: Option<JobChange>,
}

/// Pure: applies the wanted targets to the text of `prometheus.yml`.
pub fn edit(cfg: &Config, text: &str, desired: &Desired) -> Result<Edited, EditError> {
    let old = pc::parse(text)?;
    let mut new = old.clone();
    let federation = pc::set_static_configs(
        &mut new,
        &cfg.federation.job_name,
        targets::to_yaml(&desired.federation),
        || pc::federation_job_template(&cfg.federation),
    )?;
    let probes = match (&cfg.probes, &desired.probes) {
        (Some(probe), Some(wanted)) => Some(pc::set_static_configs(
            &mut new,
            &probe.job_name,
            targets::to_yaml(wanted),
            || pc::probe_job_template(probe),
        )?),
        _ => None,
    };
    Ok(Edited {
        old,
        new,
        federation,
        probes,
    })
}

/// Read → edit → write-if-changed, retrying from a fresh read after a conflict.
pub async fn apply<S: ConfigMapStore>(
    cfg: &Config,
    store: &S,
    desired: &Desired,
    dry_run: bool,
) -> Result<Outcome, SyncError> {
    let configmap = store.describe();
    let edit_err = |source| SyncError::Edit {
        configmap: configmap.clone(),
        source,
    };
    let max_attempts = cfg.conflict_retries + 1;
    let mut outcome = Outcome {
        configmap: configmap.clone(),
        federation_targets: desired.federation.len(),
        probe_targets: desired.probes.as_ref().map(Vec::len),
        changed: false,
        written: false,
        dry_run,
        attempts: 0,
        reloaded: false,
        diff: String::new(),
    };
    for attempt in 1..=max_attempts {
        outcome.attempts = attempt;
        let snapshot = store.read().await?;
        let edited = edit(cfg, &snapshot.text, desired).map_err(edit_err)?;
        if edited.new == edited.old {
            tracing::info!(%configmap, resource_version = %snapshot.resource_version, "targets already up to date; nothing written");
            return Ok(outcome);
        }
        outcome.changed = true;
        let old_text = pc::render(&edited.old).map_err(edit_err)?;
        let new_text = pc::render(&edited.new).map_err(edit_err)?;
        outcome.diff = pc::unified_diff(
            &old_text,
            &new_text,
            &format!("{configmap}[{}]", cfg.configmap.key),
        );
        if dry_run {
            return Ok(outcome);
        }
        match store.write(&snapshot, new_text).await? {
            WriteOutcome::Written { resource_version } => {
                tracing::info!(%configmap, %resource_version, federation = ?edited.federation, probes = ?edited.probes, attempt, "ConfigMap updated");
                outcome.written = true;
                return Ok(outcome);
            }
            WriteOutcome::Conflict => {
                tracing::warn!(%configmap, attempt, max_attempts, "ConfigMap changed since it was read; reading it again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
    Err(SyncError::ConflictRetriesExhausted {
        configmap,
        attempts: max_attempts,
    })
}

/// `POST /-/reload` (Prometheus needs `--web.enable-lifecycle`).
pub async fn reload(url: &Url) -> Result<(), SyncError> {
    let err = |message: String| SyncError::Reload {
        url: url.to_string(),
        message,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let response = client
        .post(url.clone())
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(err(format!("HTTP {status}: {}", body.trim())));
    }
    Ok(())
}

/// One full resync with real AWS and Kubernetes clients.
pub async fn run_once(
    cfg: &Config,
    sdk: &aws_config::SdkConfig,
    dry_run: bool,
) -> Result<Outcome, SyncError> {
    let route53 = aws_sdk_route53::Client::new(sdk);
    let desired = desired(cfg, &route53).await?;
    let client = crate::kube::client(&cfg.kube, Some(sdk)).await?;
    let store = ApiStore::new(client, cfg.configmap.clone());
    let mut outcome = apply(cfg, &store, &desired, dry_run).await?;
    if let (true, Some(url)) = (outcome.written, &cfg.reload_url) {
        reload(url).await?;
        outcome.reloaded = true;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::Snapshot;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::sync::Mutex;

    /// An in-memory store that can be told to fail the next writes with a conflict.
    struct MemStore {
        text: Mutex<(String, u64)>,
        conflicts: Mutex<u32>,
        writes: Mutex<u32>,
    }

    impl ConfigMapStore for MemStore {
        fn describe(&self) -> String {
            "mem/prometheus".into()
        }
        async fn read(&self) -> Result<Snapshot, KubeError> {
            let (text, rv) = self.text.lock().unwrap().clone();
            Ok(Snapshot {
                configmap: ConfigMap::default(),
                text,
                resource_version: rv.to_string(),
            })
        }
        async fn write(
            &self,
            snapshot: &Snapshot,
            text: String,
        ) -> Result<WriteOutcome, KubeError> {
            let mut conflicts = self.conflicts.lock().unwrap();
            if *conflicts > 0 {
                *conflicts -= 1;
                return Ok(WriteOutcome::Conflict);
            }
            let mut cur = self.text.lock().unwrap();
            assert_eq!(snapshot.resource_version, cur.1.to_string());
            *cur = (text, cur.1 + 1);
            *self.writes.lock().unwrap() += 1;
            Ok(WriteOutcome::Written {
                resource_version: cur.1.to_string(),
            })
        }
    }

    fn cfg() -> Config {
        Config::load(None, [("PDR_HOSTED_ZONE_ID".to_string(), "Z1".to_string())]).unwrap()
    }

    fn desired(names: &[&str]) -> Desired {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Desired {
            federation: targets::federation_static_configs(&[], &names, None),
            probes: None,
        }
    }

    fn store(text: &str, conflicts: u32) -> MemStore {
        MemStore {
            text: Mutex::new((text.into(), 1)),
            conflicts: Mutex::new(conflicts),
            writes: Mutex::new(0),
        }
    }

    #[tokio::test]
    async fn writes_once_then_nothing() {
        let s = store("global: {scrape_interval: 15s}\n", 0);
        let d = desired(&["a.prometheus.internal."]);
        let first = apply(&cfg(), &s, &d, false).await.unwrap();
        assert!(first.changed && first.written);
        let second = apply(&cfg(), &s, &d, false).await.unwrap();
        assert!(!second.changed && !second.written);
        assert_eq!(*s.writes.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn dry_run_writes_nothing_and_shows_the_diff() {
        let s = store("scrape_configs: []\n", 0);
        let out = apply(&cfg(), &s, &desired(&["a.prometheus.internal."]), true)
            .await
            .unwrap();
        assert!(out.changed && !out.written);
        assert!(out.diff.contains("+  - targets:"), "{}", out.diff);
        assert_eq!(*s.writes.lock().unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn conflict_is_retried() {
        let s = store("scrape_configs: []\n", 2);
        let out = apply(&cfg(), &s, &desired(&["a.prometheus.internal."]), false)
            .await
            .unwrap();
        assert!(out.written);
        assert_eq!(out.attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn endless_conflicts_are_an_error() {
        let s = store("scrape_configs: []\n", 100);
        let e = apply(&cfg(), &s, &desired(&["a.prometheus.internal."]), false)
            .await
            .unwrap_err();
        assert!(
            matches!(e, SyncError::ConflictRetriesExhausted { attempts: 6, .. }),
            "{e}"
        );
    }

    /// A one-shot HTTP server on 127.0.0.1 answering with `status_line` and `body`.
    async fn one_shot_http(status_line: &'static str, body: &'static str) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            assert!(
                buf[..n].starts_with(b"POST /-/reload "),
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
            let reply = format!(
                "HTTP/1.1 {status_line}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
        });
        Url::parse(&format!("http://{addr}/-/reload")).unwrap()
    }

    #[tokio::test]
    async fn reload_posts_and_reports_failures() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        reload(&one_shot_http("200 OK", "").await).await.unwrap();
        let e = reload(&one_shot_http("403 Forbidden", "Lifecycle API is not enabled.").await)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("HTTP 403 Forbidden: Lifecycle API is not enabled."),
            "{e}"
        );
    }
}
