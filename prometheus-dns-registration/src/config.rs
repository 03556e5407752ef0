//! Configuration: environment variables (`PDR_*`) over an optional YAML file, turned into one
//! validated [`Config`] before any I/O. It must not talk to AWS or Kubernetes.
//!
//! Every rejection names the key (file key and environment variable) and says what is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// Default suffix of the Prometheus records in the private hosted zone.
pub const DEFAULT_RECORD_SUFFIX: &str = ".prometheus.internal.";
/// Default name of the federation job in `prometheus.yml`.
pub const DEFAULT_FEDERATION_JOB: &str = "federate";
/// Default `match[]` selector used when the federation job has to be created.
pub const DEFAULT_FEDERATION_MATCH: &str = r#"{__name__=~".+"}"#;
/// Default name of the blackbox probe job.
pub const DEFAULT_PROBE_JOB: &str = "blackbox";
/// Default blackbox exporter module.
pub const DEFAULT_PROBE_MODULE: &str = "http_2xx";
/// Default ConfigMap namespace, name and key.
pub const DEFAULT_CONFIGMAP_NAMESPACE: &str = "monitoring";
pub const DEFAULT_CONFIGMAP_NAME: &str = "prometheus";
pub const DEFAULT_CONFIGMAP_KEY: &str = "prometheus.yml";
/// Default number of retries after a write conflict (resourceVersion changed).
pub const DEFAULT_CONFLICT_RETRIES: u32 = 5;
const MAX_CONFLICT_RETRIES: u32 = 20;

/// The environment variable naming the YAML configuration file.
pub const ENV_CONFIG_FILE: &str = "PDR_CONFIG_FILE";

/// Every environment variable this program reads, with the file key it overrides.
pub const ENV_KEYS: &[(&str, &str)] = &[
    (ENV_CONFIG_FILE, "(path of the YAML configuration file)"),
    ("PDR_HOSTED_ZONE_ID", "hosted_zone_id"),
    ("PDR_RECORD_SUFFIX", "record_suffix"),
    ("PDR_TARGET_PORT", "target_port"),
    ("PDR_STATIC_TARGETS", "static_targets"),
    ("PDR_FEDERATION_JOB", "federation.job_name"),
    ("PDR_FEDERATION_MATCH", "federation.match"),
    ("PDR_FEDERATION_SCHEME", "federation.scheme"),
    ("PDR_PROBE_HOSTED_ZONE_ID", "probes.hosted_zone_id"),
    ("PDR_PROBE_RECORD_SUFFIX", "probes.record_suffix"),
    ("PDR_PROBE_EXCLUDE", "probes.exclude"),
    ("PDR_PROBE_PATH", "probes.path"),
    ("PDR_PROBE_JOB", "probes.job_name"),
    ("PDR_PROBE_MODULE", "probes.module"),
    ("PDR_PROBE_EXPORTER_ADDRESS", "probes.exporter_address"),
    ("PDR_PROBE_SCHEME", "probes.scheme"),
    ("PDR_CONFIGMAP_NAMESPACE", "configmap.namespace"),
    ("PDR_CONFIGMAP_NAME", "configmap.name"),
    ("PDR_CONFIGMAP_KEY", "configmap.key"),
    ("PDR_EKS_CLUSTER_NAME", "kubernetes.eks_cluster_name"),
    ("PDR_STS_ENDPOINT", "kubernetes.sts_endpoint"),
    ("PDR_KUBECONFIG", "kubernetes.kubeconfig"),
    ("PDR_KUBE_CONTEXT", "kubernetes.context"),
    ("PDR_RELOAD_URL", "reload_url"),
    ("PDR_CONFLICT_RETRIES", "conflict_retries"),
];

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {source}")]
    ParseFile {
        path: PathBuf,
        source: serde_norway::Error,
    },
    #[error("unknown environment variable {0}; known: {known}", known = known_env())]
    UnknownEnv(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn known_env() -> String {
    ENV_KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    let env = ENV_KEYS
        .iter()
        .find(|(_, file)| *file == key)
        .map(|(e, _)| *e);
    let key = match env {
        Some(env) => format!("{key} ({env})"),
        None => key.to_string(),
    };
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the clusters' Prometheus records are.
    pub targets: RecordSource,
    /// Port appended to every discovered target (`host:port`); none → the scheme's default.
    pub target_port: Option<u16>,
    /// Targets that are always present, before the discovered ones (e.g. the C&C cluster).
    pub static_targets: Vec<StaticTarget>,
    pub federation: FederationJob,
    pub probes: Option<ProbeJob>,
    pub configmap: ConfigMapRef,
    pub kube: KubeAccess,
    pub reload_url: Option<Url>,
    pub conflict_retries: u32,
}

/// A hosted zone and the suffix that selects record names in it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSource {
    /// Bare zone id (`Z0123…`, without `/hostedzone/`).
    pub hosted_zone_id: String,
    /// Lower case, starts and ends with `.`.
    pub suffix: String,
}

/// A target that is always federated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTarget {
    pub target: String,
    pub cluster_id: String,
}

/// The federation job: its name and the settings used when it has to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationJob {
    pub job_name: String,
    pub match_selectors: Vec<String>,
    pub scheme: Scheme,
}

/// The optional blackbox uptime-probe job.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeJob {
    pub source: RecordSource,
    /// Lower-case fully qualified names (with trailing dot) that are never probed.
    pub exclude: BTreeSet<String>,
    /// Path appended to `scheme://name`, e.g. `/api/v4/system/ping`.
    pub path: String,
    pub job_name: String,
    pub module: String,
    /// `host:port` of the blackbox exporter.
    pub exporter_address: String,
    pub scheme: Scheme,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Which ConfigMap key holds `prometheus.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// How to reach the Kubernetes API.
#[derive(Debug, Clone, PartialEq)]
pub enum KubeAccess {
    /// `eks:DescribeCluster` + an aws-iam-authenticator token (the Lambda's way).
    Eks {
        cluster_name: String,
        sts_endpoint: Option<Url>,
    },
    /// A kubeconfig file (and optionally one of its contexts).
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    /// kube's inference: `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    Infer { context: Option<String> },
}

// ------------------------------------------------------------------------------ raw form

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hosted_zone_id: Option<String>,
    record_suffix: Option<String>,
    target_port: Option<u16>,
    static_targets: Option<Vec<RawStaticTarget>>,
    #[serde(default)]
    federation: RawFederation,
    probes: Option<RawProbes>,
    #[serde(default)]
    configmap: RawConfigMap,
    #[serde(default)]
    kubernetes: RawKube,
    reload_url: Option<String>,
    conflict_retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticTarget {
    target: String,
    cluster_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederation {
    job_name: Option<String>,
    #[serde(rename = "match")]
    match_selectors: Option<Vec<String>>,
    scheme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbes {
    hosted_zone_id: Option<String>,
    record_suffix: Option<String>,
    exclude: Option<Vec<String>>,
    path: Option<String>,
    job_name: Option<String>,
    module: Option<String>,
    exporter_address: Option<String>,
    scheme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfigMap {
    namespace: Option<String>,
    name: Option<String>,
    key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKube {
    eks_cluster_name: Option<String>,
    sts_endpoint: Option<String>,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
}

impl Config {
    /// Loads the configuration from the process environment (and the file it names).
    pub fn from_process_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(file, std::env::vars())
    }

    /// Loads the configuration: the YAML file (`file`, else `PDR_CONFIG_FILE`), then every
    /// `PDR_*` variable of `env` over it. Unknown `PDR_*` variables are rejected (typos).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("PDR_"))
            .collect();
        if let Some(unknown) = env.keys().find(|k| !ENV_KEYS.iter().any(|(e, _)| e == k)) {
            return Err(ConfigError::UnknownEnv(unknown.clone()));
        }
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(ENV_CONFIG_FILE).map(PathBuf::from));
        let mut raw = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                Self::raw_from_yaml(&text)
                    .map_err(|source| ConfigError::ParseFile { path, source })?
            }
            None => RawConfig::default(),
        };
        overlay_env(&mut raw, &env)?;
        validate(raw)
    }

    /// Parses and validates a YAML configuration document (no environment).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let raw = Self::raw_from_yaml(text).map_err(|source| ConfigError::ParseFile {
            path: PathBuf::from("<inline>"),
            source,
        })?;
        validate(raw)
    }

    fn raw_from_yaml(text: &str) -> Result<RawConfig, serde_norway::Error> {
        if text.trim().is_empty() {
            return Ok(RawConfig::default());
        }
        serde_norway::from_str(text)
    }
}

fn overlay_env(raw: &mut RawConfig, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let get = |k: &str| env.get(k).cloned();
    if let Some(v) = get("PDR_HOSTED_ZONE_ID") {
        raw.hosted_zone_id = Some(v);
    }
    if let Some(v) = get("PDR_RECORD_SUFFIX") {
        raw.record_suffix = Some(v);
    }
    if let Some(v) = get("PDR_TARGET_PORT") {
        raw.target_port = Some(v.trim().parse().map_err(|_| {
            invalid(
                "target_port",
                format!("{v:?} is not a port number (1-65535)"),
            )
        })?);
    }
    if let Some(v) = get("PDR_STATIC_TARGETS") {
        raw.static_targets = Some(parse_static_targets_env(&v)?);
    }
    if let Some(v) = get("PDR_FEDERATION_JOB") {
        raw.federation.job_name = Some(v);
    }
    if let Some(v) = get("PDR_FEDERATION_MATCH") {
        raw.federation.match_selectors = Some(parse_match_env(&v)?);
    }
    if let Some(v) = get("PDR_FEDERATION_SCHEME") {
        raw.federation.scheme = Some(v);
    }
    let probe_keys = [
        "PDR_PROBE_HOSTED_ZONE_ID",
        "PDR_PROBE_RECORD_SUFFIX",
        "PDR_PROBE_EXCLUDE",
        "PDR_PROBE_PATH",
        "PDR_PROBE_JOB",
        "PDR_PROBE_MODULE",
        "PDR_PROBE_EXPORTER_ADDRESS",
        "PDR_PROBE_SCHEME",
    ];
    if probe_keys.iter().any(|k| env.contains_key(*k)) {
        let p = raw.probes.get_or_insert_with(RawProbes::default);
        if let Some(v) = get("PDR_PROBE_HOSTED_ZONE_ID") {
            p.hosted_zone_id = Some(v);
        }
        if let Some(v) = get("PDR_PROBE_RECORD_SUFFIX") {
            p.record_suffix = Some(v);
        }
        if let Some(v) = get("PDR_PROBE_EXCLUDE") {
            p.exclude = Some(split_list(&v));
        }
        if let Some(v) = get("PDR_PROBE_PATH") {
            p.path = Some(v);
        }
        if let Some(v) = get("PDR_PROBE_JOB") {
            p.job_name = Some(v);
        }
        if let Some(v) = get("PDR_PROBE_MODULE") {
            p.module = Some(v);
        }
        if let Some(v) = get("PDR_PROBE_EXPORTER_ADDRESS") {
            p.exporter_address = Some(v);
        }
        if let Some(v) = get("PDR_PROBE_SCHEME") {
            p.scheme = Some(v);
        }
    }
    if let Some(v) = get("PDR_CONFIGMAP_NAMESPACE") {
        raw.configmap.namespace = Some(v);
    }
    if let Some(v) = get("PDR_CONFIGMAP_NAME") {
        raw.configmap.name = Some(v);
    }
    if let Some(v) = get("PDR_CONFIGMAP_KEY") {
        raw.configmap.key = Some(v);
    }
    if let Some(v) = get("PDR_EKS_CLUSTER_NAME") {
        raw.kubernetes.eks_cluster_name = Some(v);
    }
    if let Some(v) = get("PDR_STS_ENDPOINT") {
        raw.kubernetes.sts_endpoint = Some(v);
    }
    if let Some(v) = get("PDR_KUBECONFIG") {
        raw.kubernetes.kubeconfig = Some(PathBuf::from(v));
    }
    if let Some(v) = get("PDR_KUBE_CONTEXT") {
        raw.kubernetes.context = Some(v);
    }
    if let Some(v) = get("PDR_RELOAD_URL") {
        raw.reload_url = Some(v);
    }
    if let Some(v) = get("PDR_CONFLICT_RETRIES") {
        raw.conflict_retries =
            Some(v.trim().parse().map_err(|_| {
                invalid("conflict_retries", format!("{v:?} is not a whole number"))
            })?);
    }
    Ok(())
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `PDR_STATIC_TARGETS`: comma-separated `target=clusterID` pairs.
fn parse_static_targets_env(v: &str) -> Result<Vec<RawStaticTarget>, ConfigError> {
    split_list(v)
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((target, cluster_id)) => Ok(RawStaticTarget {
                target: target.trim().to_string(),
                cluster_id: cluster_id.trim().to_string(),
            }),
            None => Err(invalid(
                "static_targets",
                format!("{item:?} is not of the form target=clusterID (entries separated by ',')"),
            )),
        })
        .collect()
}

/// `PDR_FEDERATION_MATCH`: one selector, or a JSON array of selectors (selectors contain
/// commas, so no comma-separated form).
fn parse_match_env(v: &str) -> Result<Vec<String>, ConfigError> {
    let v = v.trim();
    if v.starts_with('[') {
        serde_json::from_str(v).map_err(|e| {
            invalid(
                "federation.match",
                format!("not a JSON array of strings: {e}"),
            )
        })
    } else {
        Ok(vec![v.to_string()])
    }
}

// ----------------------------------------------------------------------------- validate

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let hosted_zone_id = zone_id(
        "hosted_zone_id",
        raw.hosted_zone_id
            .as_deref()
            .ok_or_else(|| invalid("hosted_zone_id", "is required"))?,
    )?;
    let suffix = record_suffix(
        "record_suffix",
        raw.record_suffix
            .as_deref()
            .unwrap_or(DEFAULT_RECORD_SUFFIX),
    )?;
    if raw.target_port == Some(0) {
        return Err(invalid("target_port", "0 is not a port number (1-65535)"));
    }

    let static_targets = raw
        .static_targets
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let target = t.target.trim();
            if target.is_empty() || target.contains(char::is_whitespace) || target.contains("://") {
                return Err(invalid(
                    "static_targets",
                    format!(
                        "target {:?} must be host[:port] without scheme or spaces",
                        t.target
                    ),
                ));
            }
            if t.cluster_id.trim().is_empty() {
                return Err(invalid(
                    "static_targets",
                    format!("target {target:?} has an empty cluster_id"),
                ));
            }
            Ok(StaticTarget {
                target: target.to_string(),
                cluster_id: t.cluster_id.trim().to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let federation = FederationJob {
        job_name: job_name(
            "federation.job_name",
            raw.federation
                .job_name
                .as_deref()
                .unwrap_or(DEFAULT_FEDERATION_JOB),
        )?,
        match_selectors: {
            let m = raw
                .federation
                .match_selectors
                .unwrap_or_else(|| vec![DEFAULT_FEDERATION_MATCH.to_string()]);
            if m.is_empty() || m.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid(
                    "federation.match",
                    "needs at least one non-empty selector",
                ));
            }
            m
        },
        scheme: scheme(
            "federation.scheme",
            raw.federation.scheme.as_deref().unwrap_or("http"),
        )?,
    };

    let probes = raw
        .probes
        .map(|p| validate_probes(p, &federation.job_name))
        .transpose()?;

    let configmap = ConfigMapRef {
        namespace: dns_label(
            "configmap.namespace",
            raw.configmap
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_CONFIGMAP_NAMESPACE),
        )?,
        name: dns_subdomain(
            "configmap.name",
            raw.configmap
                .name
                .as_deref()
                .unwrap_or(DEFAULT_CONFIGMAP_NAME),
        )?,
        key: configmap_key(
            raw.configmap
                .key
                .as_deref()
                .unwrap_or(DEFAULT_CONFIGMAP_KEY),
        )?,
    };

    let kube = validate_kube(raw.kubernetes)?;

    let reload_url = raw
        .reload_url
        .as_deref()
        .map(|u| http_url("reload_url", u))
        .transpose()?;
    let conflict_retries = raw.conflict_retries.unwrap_or(DEFAULT_CONFLICT_RETRIES);
    if conflict_retries > MAX_CONFLICT_RETRIES {
        return Err(invalid(
            "conflict_retries",
            format!("must be at most {MAX_CONFLICT_RETRIES}"),
        ));
    }

    Ok(Config {
        targets: RecordSource {
            hosted_zone_id,
            suffix,
        },
        target_port: raw.target_port,
        static_targets,
        federation,
        probes,
        configmap,
        kube,
        reload_url,
        conflict_retries,
    })
}

fn validate_probes(p: RawProbes, federation_job: &str) -> Result<ProbeJob, ConfigError> {
    let hosted_zone_id = zone_id(
        "probes.hosted_zone_id",
        p.hosted_zone_id.as_deref().ok_or_else(|| {
            invalid(
                "probes.hosted_zone_id",
                "is required when probes are configured",
            )
        })?,
    )?;
    let suffix = record_suffix(
        "probes.record_suffix",
        p.record_suffix.as_deref().ok_or_else(|| {
            invalid(
                "probes.record_suffix",
                "is required when probes are configured",
            )
        })?,
    )?;
    let exclude = p
        .exclude
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let n = n.trim().to_ascii_lowercase();
            if n.is_empty() {
                return Err(invalid("probes.exclude", "contains an empty name"));
            }
            Ok(if n.ends_with('.') { n } else { format!("{n}.") })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    let path = p.path.unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(invalid(
            "probes.path",
            format!("{path:?} must start with '/' and have no spaces"),
        ));
    }
    let job_name = job_name(
        "probes.job_name",
        p.job_name.as_deref().unwrap_or(DEFAULT_PROBE_JOB),
    )?;
    if job_name == federation_job {
        return Err(invalid(
            "probes.job_name",
            format!("must differ from the federation job {federation_job:?}"),
        ));
    }
    let module = p.module.unwrap_or_else(|| DEFAULT_PROBE_MODULE.to_string());
    if module.trim().is_empty() {
        return Err(invalid("probes.module", "must not be empty"));
    }
    let exporter_address = p.exporter_address.ok_or_else(|| {
        invalid(
            "probes.exporter_address",
            "is required when probes are configured (host:port of the blackbox exporter)",
        )
    })?;
    if exporter_address.trim().is_empty()
        || exporter_address.contains(char::is_whitespace)
        || exporter_address.contains("://")
    {
        return Err(invalid(
            "probes.exporter_address",
            format!("{exporter_address:?} must be host:port"),
        ));
    }
    Ok(ProbeJob {
        source: RecordSource {
            hosted_zone_id,
            suffix,
        },
        exclude,
        path,
        job_name,
        module: module.trim().to_string(),
        exporter_address,
        scheme: scheme("probes.scheme", p.scheme.as_deref().unwrap_or("https"))?,
    })
}

fn validate_kube(k: RawKube) -> Result<KubeAccess, ConfigError> {
    match (k.eks_cluster_name, k.kubeconfig) {
        (Some(_), Some(_)) => Err(invalid(
            "kubernetes.eks_cluster_name",
            "set either an EKS cluster name or a kubeconfig (kubernetes.kubeconfig / PDR_KUBECONFIG), not both",
        )),
        (Some(name), None) => {
            let ok = !name.is_empty()
                && name.len() <= 100
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(invalid(
                    "kubernetes.eks_cluster_name",
                    format!(
                        "{name:?} is not an EKS cluster name (1-100 of A-Z a-z 0-9 - _, starting alphanumeric)"
                    ),
                ));
            }
            if k.context.is_some() {
                return Err(invalid(
                    "kubernetes.context",
                    "only applies to a kubeconfig, not to EKS access",
                ));
            }
            let sts_endpoint = k
                .sts_endpoint
                .as_deref()
                .map(|u| http_url("kubernetes.sts_endpoint", u))
                .transpose()?;
            Ok(KubeAccess::Eks {
                cluster_name: name,
                sts_endpoint,
            })
        }
        (None, kubeconfig) => {
            if k.sts_endpoint.is_some() {
                return Err(invalid(
                    "kubernetes.sts_endpoint",
                    "only applies with kubernetes.eks_cluster_name",
                ));
            }
            Ok(match kubeconfig {
                Some(path) => KubeAccess::Kubeconfig {
                    path,
                    context: k.context,
                },
                None => KubeAccess::Infer { context: k.context },
            })
        }
    }
}

fn zone_id(key: &str, v: &str) -> Result<String, ConfigError> {
    let id = v.trim().trim_start_matches("/hostedzone/");
    if id.is_empty()
        || id.len() > 32
        || !id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(invalid(
            key,
            format!("{v:?} is not a Route53 hosted zone id (e.g. Z0123456789ABCDEFGHIJ)"),
        ));
    }
    Ok(id.to_string())
}

/// A suffix must start with `.` (so `.prometheus.internal.` never matches
/// `xprometheus.internal.`); a missing trailing dot is added (Route53 names are absolute).
fn record_suffix(key: &str, v: &str) -> Result<String, ConfigError> {
    let s = v.trim().to_ascii_lowercase();
    let s = if s.ends_with('.') { s } else { format!("{s}.") };
    let labels_ok = s.len() > 2
        && s[1..s.len() - 1].split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !s.starts_with('.') || !labels_ok {
        return Err(invalid(
            key,
            format!("{v:?} must be a DNS suffix starting with '.', e.g. {DEFAULT_RECORD_SUFFIX:?}"),
        ));
    }
    Ok(s)
}

fn job_name(key: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(v.to_string())
}

fn scheme(key: &str, v: &str) -> Result<Scheme, ConfigError> {
    match v.trim() {
        "http" => Ok(Scheme::Http),
        "https" => Ok(Scheme::Https),
        other => Err(invalid(
            key,
            format!("{other:?} is not a scheme; allowed: http, https"),
        )),
    }
}

fn dns_label(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if !ok {
        return Err(invalid(
            key,
            format!("{v:?} is not a DNS-1123 label (a-z 0-9 -, at most 63)"),
        ));
    }
    Ok(v.to_string())
}

fn dns_subdomain(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !ok {
        return Err(invalid(
            key,
            format!("{v:?} is not a DNS-1123 subdomain (a-z 0-9 - ., at most 253)"),
        ));
    }
    Ok(v.to_string())
}

fn configmap_key(v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v != "."
        && v != ".."
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(invalid(
            "configmap.key",
            format!("{v:?} is not a ConfigMap key (A-Z a-z 0-9 - _ .)"),
        ));
    }
    Ok(v.to_string())
}

fn http_url(key: &str, v: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(v.trim()).map_err(|e| invalid(key, format!("{v:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            key,
            format!("{v:?} must be an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(None, env(pairs))
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        load_env(pairs).expect_err("must be rejected").to_string()
    }

    #[test]
    fn minimal_env_gives_defaults() {
        let c = load_env(&[("PDR_HOSTED_ZONE_ID", "/hostedzone/Z123ABC")]).unwrap();
        assert_eq!(c.targets.hosted_zone_id, "Z123ABC");
        assert_eq!(c.targets.suffix, ".prometheus.internal.");
        assert_eq!(c.federation.job_name, "federate");
        assert_eq!(
            c.federation.match_selectors,
            vec![DEFAULT_FEDERATION_MATCH.to_string()]
        );
        assert_eq!(
            c.configmap,
            ConfigMapRef {
                namespace: "monitoring".into(),
                name: "prometheus".into(),
                key: "prometheus.yml".into()
            }
        );
        assert_eq!(c.kube, KubeAccess::Infer { context: None });
        assert!(c.probes.is_none());
        assert_eq!(c.conflict_retries, 5);
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            r#"
hosted_zone_id: ZFILE
record_suffix: .prom.example.
target_port: 9090
static_targets:
  - { target: "prometheus.monitoring.svc:9090", cluster_id: "C&C" }
federation: { job_name: fed, match: ['{job="prometheus"}', '{__name__=~"job:.*"}'] }
probes:
  hosted_zone_id: ZINST
  record_suffix: .installations.example.com
  exclude: [www.installations.example.com]
  path: /api/v4/system/ping
  exporter_address: blackbox:9115
configmap: { namespace: mon, name: prom-server, key: prometheus.yaml }
kubernetes: { eks_cluster_name: cnc }
reload_url: http://prometheus.mon:9090/-/reload
"#,
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[("PDR_HOSTED_ZONE_ID", "ZENV"), ("HOME", "/x")]),
        )
        .unwrap();
        assert_eq!(c.targets.hosted_zone_id, "ZENV");
        assert_eq!(c.targets.suffix, ".prom.example.");
        assert_eq!(c.target_port, Some(9090));
        assert_eq!(
            c.static_targets,
            vec![StaticTarget {
                target: "prometheus.monitoring.svc:9090".into(),
                cluster_id: "C&C".into()
            }]
        );
        assert_eq!(c.federation.match_selectors.len(), 2);
        let p = c.probes.unwrap();
        assert_eq!(p.source.suffix, ".installations.example.com.");
        assert!(p.exclude.contains("www.installations.example.com."));
        assert_eq!(p.scheme, Scheme::Https);
        assert_eq!(
            c.kube,
            KubeAccess::Eks {
                cluster_name: "cnc".into(),
                sts_endpoint: None
            }
        );
        assert_eq!(c.configmap.key, "prometheus.yaml");
    }

    #[test]
    fn env_lists_are_parsed() {
        let c = load_env(&[
            ("PDR_HOSTED_ZONE_ID", "Z1"),
            ("PDR_STATIC_TARGETS", "a:9090=C&C, b:9090=other"),
            ("PDR_FEDERATION_MATCH", r#"["{a=\"1\",b=\"2\"}", "up"]"#),
        ])
        .unwrap();
        assert_eq!(c.static_targets.len(), 2);
        assert_eq!(c.static_targets[0].cluster_id, "C&C");
        assert_eq!(
            c.federation.match_selectors,
            vec![r#"{a="1",b="2"}"#.to_string(), "up".into()]
        );
    }

    #[test]
    fn validate_rejects_missing_zone() {
        assert!(err(&[]).contains("hosted_zone_id (PDR_HOSTED_ZONE_ID): is required"));
    }

    #[test]
    fn validate_rejects_bad_zone_id() {
        assert!(err(&[("PDR_HOSTED_ZONE_ID", "zone-1")]).contains("not a Route53 hosted zone id"));
    }

    #[test]
    fn validate_rejects_unknown_env() {
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_HOSTED_ZONE", "Z1")])
                .contains("unknown environment variable PDR_HOSTED_ZONE")
        );
    }

    #[test]
    fn validate_rejects_unknown_file_key() {
        let e = Config::from_yaml("hosted_zone_id: Z1\nzone: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `zone`"), "{e}");
    }

    #[test]
    fn validate_rejects_suffix_without_leading_dot() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_RECORD_SUFFIX", "prometheus.internal.")
            ])
            .contains("must be a DNS suffix starting with '.'")
        );
    }

    #[test]
    fn validate_rejects_bad_port() {
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_TARGET_PORT", "99999")])
                .contains("target_port (PDR_TARGET_PORT)")
        );
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_TARGET_PORT", "0")]).contains("not a port")
        );
    }

    #[test]
    fn validate_rejects_bad_static_target() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_STATIC_TARGETS", "a:9090")
            ])
            .contains("target=clusterID")
        );
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_STATIC_TARGETS", "http://a:9090=x")
            ])
            .contains("without scheme")
        );
    }

    #[test]
    fn validate_rejects_bad_match() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_FEDERATION_MATCH", "[1]")
            ])
            .contains("federation.match")
        );
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_FEDERATION_MATCH", "[]")])
                .contains("at least one")
        );
    }

    #[test]
    fn validate_rejects_bad_scheme() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_FEDERATION_SCHEME", "ftp")
            ])
            .contains("allowed: http, https")
        );
    }

    #[test]
    fn validate_rejects_incomplete_probes() {
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_PROBE_PATH", "/x")])
                .contains("probes.hosted_zone_id")
        );
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_PROBE_HOSTED_ZONE_ID", "Z2"),
                ("PDR_PROBE_RECORD_SUFFIX", ".inst.example."),
            ])
            .contains("probes.exporter_address")
        );
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_PROBE_HOSTED_ZONE_ID", "Z2"),
                ("PDR_PROBE_RECORD_SUFFIX", ".inst.example."),
                ("PDR_PROBE_EXPORTER_ADDRESS", "bb:9115"),
                ("PDR_PROBE_PATH", "api"),
            ])
            .contains("must start with '/'")
        );
    }

    #[test]
    fn validate_rejects_probe_job_equal_to_federation_job() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_PROBE_HOSTED_ZONE_ID", "Z2"),
                ("PDR_PROBE_RECORD_SUFFIX", ".inst.example."),
                ("PDR_PROBE_EXPORTER_ADDRESS", "bb:9115"),
                ("PDR_PROBE_JOB", "federate"),
            ])
            .contains("must differ")
        );
    }

    #[test]
    fn validate_rejects_bad_configmap_ref() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_CONFIGMAP_NAMESPACE", "Mon")
            ])
            .contains("DNS-1123 label")
        );
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_CONFIGMAP_NAME", "a_b")])
                .contains("DNS-1123 subdomain")
        );
        assert!(
            err(&[("PDR_HOSTED_ZONE_ID", "Z1"), ("PDR_CONFIGMAP_KEY", "a/b")])
                .contains("ConfigMap key")
        );
    }

    #[test]
    fn validate_rejects_eks_and_kubeconfig_together() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_EKS_CLUSTER_NAME", "c"),
                ("PDR_KUBECONFIG", "/k")
            ])
            .contains("not both")
        );
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_EKS_CLUSTER_NAME", "bad name")
            ])
            .contains("EKS cluster name")
        );
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_STS_ENDPOINT", "http://x")
            ])
            .contains("only applies with")
        );
    }

    #[test]
    fn validate_rejects_bad_reload_url() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_RELOAD_URL", "prometheus:9090")
            ])
            .contains("reload_url (PDR_RELOAD_URL)")
        );
    }

    #[test]
    fn validate_rejects_too_many_retries() {
        assert!(
            err(&[
                ("PDR_HOSTED_ZONE_ID", "Z1"),
                ("PDR_CONFLICT_RETRIES", "100")
            ])
            .contains("at most 20")
        );
    }
}
