//! The `kubernetes:` configuration section: whether to watch the API server, how to reach it,
//! and how metadata waits, lingers and which annotations it ships.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::{ConfigError, HumanDuration, invalid};

/// `on`: watch (fail the config when no credentials can be found); `off`: path metadata only;
/// `auto`: watch when in a cluster (`KUBERNETES_SERVICE_HOST`) or when a kubeconfig/URL is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Enabled {
    On,
    Off,
    #[default]
    Auto,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    #[serde(default)]
    enabled: Enabled,
    kubeconfig: Option<PathBuf>,
    url: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    metadata_wait: Option<HumanDuration>,
    deleted_pod_grace: Option<HumanDuration>,
    #[serde(default)]
    annotation_allowlist: Vec<String>,
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The pod's service account (`KUBERNETES_SERVICE_HOST`, the mounted token and CA).
    InCluster,
    Kubeconfig(PathBuf),
    Url {
        url: String,
        token_file: Option<PathBuf>,
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// `None`: no watch; events carry what the log path tells.
    pub source: Option<Source>,
    /// How long a new pod's file waits for the pod's watch event before shipping without it.
    pub metadata_wait: Duration,
    /// How long a deleted pod's metadata is kept for its last lines.
    pub deleted_pod_grace: Duration,
    /// Annotation keys (original spelling) shipped; `prefix*` matches a prefix.
    pub annotation_allowlist: Vec<String>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            source: None,
            metadata_wait: Duration::from_secs(2),
            deleted_pod_grace: Duration::from_secs(300),
            annotation_allowlist: Vec::new(),
        }
    }
}

/// Longest `metadata_wait`: the file's lines are held back that long, and a longer hold only
/// hides an API server problem the metric already reports.
const MAX_METADATA_WAIT: Duration = Duration::from_secs(60);

pub(crate) fn validate(
    raw: RawKubernetes,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KubernetesConfig, ConfigError> {
    let defaults = KubernetesConfig::default();
    if raw.kubeconfig.is_some() && raw.url.is_some() {
        return Err(invalid(
            "kubernetes.url",
            "set either kubernetes.kubeconfig or kubernetes.url, not both",
        ));
    }
    if raw.url.is_none() && (raw.token_file.is_some() || raw.ca_file.is_some()) {
        return Err(invalid(
            "kubernetes.token_file",
            "token_file and ca_file go with kubernetes.url",
        ));
    }
    if let Some(u) = &raw.url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(invalid(
            "kubernetes.url",
            format!("`{u}` must start with https:// or http://"),
        ));
    }
    let metadata_wait = raw.metadata_wait.map_or(defaults.metadata_wait, |d| d.0);
    if metadata_wait > MAX_METADATA_WAIT {
        return Err(invalid(
            "kubernetes.metadata_wait",
            "must be at most 60s (files wait that long before shipping)",
        ));
    }
    if let Some(a) = raw.annotation_allowlist.iter().find(|a| {
        let key = a.strip_suffix('*').unwrap_or(a);
        key.is_empty() || key.contains('*')
    }) {
        return Err(invalid(
            "kubernetes.annotation_allowlist",
            format!("`{a}` is not an annotation key (a trailing `*` matches a prefix)"),
        ));
    }
    let explicit = match (raw.kubeconfig, raw.url) {
        (Some(k), _) => Some(Source::Kubeconfig(k)),
        (None, Some(url)) => Some(Source::Url {
            url,
            token_file: raw.token_file,
            ca_file: raw.ca_file,
        }),
        (None, None) => None,
    };
    let in_cluster = env("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty());
    let source = match raw.enabled {
        Enabled::Off => None,
        Enabled::Auto => explicit.or(in_cluster.then_some(Source::InCluster)),
        Enabled::On => match explicit.or(in_cluster.then_some(Source::InCluster)) {
            Some(s) => Some(s),
            None => {
                return Err(invalid(
                    "kubernetes.enabled",
                    "`on` needs in-cluster credentials (KUBERNETES_SERVICE_HOST), kubernetes.kubeconfig or kubernetes.url",
                ));
            }
        },
    };
    Ok(KubernetesConfig {
        source,
        metadata_wait,
        deleted_pod_grace: raw
            .deleted_pod_grace
            .map_or(defaults.deleted_pod_grace, |d| d.0),
        annotation_allowlist: raw.annotation_allowlist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        extra: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KubernetesConfig, ConfigError> {
        crate::settings::section("kubernetes", &format!("kubernetes:\n{extra}"), |raw| {
            validate(raw, env)
        })
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn rejects(extra: &str, needle: &str) {
        crate::settings::expect_refused(load(extra, &no_env), needle);
    }

    #[test]
    fn defaults_and_auto_detection() {
        // No `kubernetes:` section in the file: the section's serde default.
        let c = validate(RawKubernetes::default(), &no_env).unwrap();
        assert_eq!(c.source, None);
        assert_eq!(c.metadata_wait, Duration::from_secs(2));
        assert_eq!(c.deleted_pod_grace, Duration::from_secs(300));
        let in_cluster = |k: &str| (k == "KUBERNETES_SERVICE_HOST").then(|| "10.0.0.1".to_string());
        let c = validate(RawKubernetes::default(), &in_cluster).unwrap();
        assert_eq!(c.source, Some(Source::InCluster));
        let c = load("  enabled: off\n", &in_cluster).unwrap();
        assert_eq!(c.source, None);
        let c = load("  url: https://127.0.0.1:6443\n  token_file: /t\n", &no_env).unwrap();
        assert!(matches!(c.source, Some(Source::Url { .. })));
    }

    #[test]
    fn validate_rejects_kubeconfig_and_url_together() {
        rejects("  kubeconfig: /k\n  url: https://x\n", "not both");
    }

    #[test]
    fn validate_rejects_token_file_without_url() {
        rejects("  token_file: /t\n", "go with kubernetes.url");
    }

    #[test]
    fn validate_rejects_url_without_scheme() {
        rejects("  url: 127.0.0.1:6443\n", "https://");
    }

    #[test]
    fn validate_rejects_long_metadata_wait() {
        rejects("  metadata_wait: 2m\n", "at most 60s");
    }

    #[test]
    fn validate_rejects_bad_allowlist_entry() {
        rejects("  annotation_allowlist: [\"a*b\"]\n", "annotation key");
        rejects("  annotation_allowlist: [\"\"]\n", "annotation key");
    }

    #[test]
    fn validate_rejects_on_without_credentials() {
        rejects("  enabled: on\n", "needs in-cluster credentials");
    }

    #[test]
    fn validate_rejects_unknown_enabled_value() {
        rejects("  enabled: maybe\n", "unknown variant");
    }
}
