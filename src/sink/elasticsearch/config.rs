//! The `elasticsearch:` configuration section: endpoints, index names, compression, batching,
//! retries, TLS, setup and lifecycle. Credentials (`auth:`) are validated in [`super::auth`],
//! index names in [`super::index`]. Imports nothing of the crate outside the sink but the
//! configuration vocabulary ([`crate::settings`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::auth::{Auth, RawAuth};
use super::index::IndexPattern;
use super::storage::IndexMode;
use crate::settings::{ByteSize, ConfigError, HumanDuration, bounded, invalid, nonzero_duration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawElasticsearch {
    endpoints: Vec<String>,
    /// Defaults by `compat` (see [`default_index`]).
    index: Option<String>,
    #[serde(default = "default_dead_letter_index")]
    dead_letter_index: String,
    #[serde(default)]
    compression: Compression,
    #[serde(default)]
    batch: RawBatch,
    #[serde(default = "default_max_in_flight")]
    max_in_flight: usize,
    #[serde(default = "default_request_timeout")]
    request_timeout: HumanDuration,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    setup: SetupMode,
    #[serde(default)]
    data_stream: bool,
    #[serde(default)]
    failure_store: bool,
    #[serde(default)]
    index_mode: IndexMode,
    #[serde(default)]
    lifecycle: RawLifecycle,
    #[serde(default)]
    compat: Compat,
}

/// The shape of the documents written: sluice's own (ECS field names), or the one the Fluentd
/// Kubernetes DaemonSet writes, so a cluster can switch agents under its saved searches
/// (`docs/migrating-from-fluentd.md`). Chosen once for the agent: the encoder takes one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    #[default]
    None,
    Fluentd,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    #[serde(default = "yes")]
    verify: bool,
}

impl Default for RawTls {
    fn default() -> Self {
        RawTls {
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            verify: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Whether the agent installs its index templates (and lifecycle policy) itself at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetupMode {
    /// At start, in the background; shipping does not wait for it beyond its first attempt.
    #[default]
    Auto,
    /// Only `sluice setup` installs them (agents without the privilege to manage templates).
    Off,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    delete_after: Option<HumanDuration>,
}

/// `logs-kubernetes-%Y.%m.%d`; with `compat: fluentd`, the daily indices of
/// fluent-plugin-elasticsearch's `logstash_format` (prefix `logstash`, `%Y.%m.%d`, UTC).
fn default_index(compat: Compat) -> &'static str {
    match compat {
        Compat::None => "logs-kubernetes-%Y.%m.%d",
        Compat::Fluentd => "logstash-%Y.%m.%d",
    }
}
fn default_dead_letter_index() -> String {
    "sluice-dead-letter-%Y.%m.%d".to_string()
}
fn default_max_in_flight() -> usize {
    2
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Request body compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    #[default]
    Gzip,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    #[serde(default = "default_batch_bytes")]
    max_bytes: ByteSize,
    #[serde(default = "default_batch_events")]
    max_events: usize,
    #[serde(default = "default_batch_timeout")]
    timeout: HumanDuration,
}

impl Default for RawBatch {
    fn default() -> Self {
        RawBatch {
            max_bytes: default_batch_bytes(),
            max_events: default_batch_events(),
            timeout: default_batch_timeout(),
        }
    }
}

fn default_batch_bytes() -> ByteSize {
    ByteSize(2 << 20)
}
fn default_batch_events() -> usize {
    10_000
}
fn default_batch_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    #[serde(default = "default_initial_backoff")]
    initial_backoff: HumanDuration,
    #[serde(default = "default_max_backoff")]
    max_backoff: HumanDuration,
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

fn default_initial_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Validated `elasticsearch:`.
#[derive(Debug, Clone)]
pub struct ElasticsearchConfig {
    pub endpoints: Vec<reqwest::Url>,
    pub index: IndexPattern,
    pub dead_letter_index: IndexPattern,
    pub compression: Compression,
    pub batch_max_bytes: usize,
    pub batch_max_events: usize,
    pub batch_timeout: Duration,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub auth: Auth,
    pub tls: TlsConfig,
    pub setup: SetupMode,
    /// Write into one data stream named by `index` (which then has no date in it).
    pub data_stream: bool,
    /// Ask the data stream to keep documents refused for their content in its failure store
    /// (Elasticsearch 9.1+ with the data-streams module) instead of the dead-letter index.
    pub failure_store: bool,
    /// The logs template's `index.mode` / `index.codec` (see `storage`).
    pub index_mode: IndexMode,
    /// Indices (or backing indices) older than this are deleted by ILM/ISM; `None`: keep.
    pub delete_after: Option<Duration>,
    /// The documents' shape.
    pub compat: Compat,
}

/// TLS for `https` endpoints. Verification is on unless switched off explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM bundle; when set, only these CAs are trusted (not the built-in roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for clusters that authenticate clients by certificate.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub verify: bool,
}

pub(crate) fn validate(es: RawElasticsearch) -> Result<ElasticsearchConfig, ConfigError> {
    if es.endpoints.is_empty() {
        return Err(invalid(
            "elasticsearch.endpoints",
            "needs at least one URL, e.g. http://127.0.0.1:9200",
        ));
    }
    let mut endpoints = Vec::new();
    for e in &es.endpoints {
        let url = reqwest::Url::parse(e).map_err(|err| {
            invalid(
                "elasticsearch.endpoints",
                format!("`{e}` is not a URL: {err}"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "elasticsearch.endpoints",
                format!("`{e}`: scheme must be http or https"),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "elasticsearch.endpoints",
                format!(
                    "`{}`: credentials in the URL are not allowed",
                    url.host_str().unwrap_or(e)
                ),
            ));
        }
        endpoints.push(url);
    }
    let index_text = es.index.as_deref().unwrap_or(default_index(es.compat));
    let index = IndexPattern::parse("elasticsearch.index", index_text)?;
    let dead_letter_index =
        IndexPattern::parse("elasticsearch.dead_letter_index", &es.dead_letter_index)?;
    if dead_letter_index
        .fields()
        .any(|f| *f == super::route::Field::Dataset)
    {
        return Err(invalid(
            "elasticsearch.dead_letter_index",
            "`{sluice.dataset}` is not available here: the dead-letter index is routed from the refused document's fields, and documents do not carry the dataset",
        ));
    }
    if index == dead_letter_index {
        return Err(invalid(
            "elasticsearch.dead_letter_index",
            "must differ from elasticsearch.index",
        ));
    }
    let batch_max_bytes = bounded(
        "elasticsearch.batch.max_bytes",
        es.batch.max_bytes.0,
        4 << 10,
        100 << 20,
    )?;
    if es.batch.max_events == 0 {
        return Err(invalid(
            "elasticsearch.batch.max_events",
            "must be at least 1",
        ));
    }
    nonzero_duration("elasticsearch.batch.timeout", es.batch.timeout.0)?;
    if es.max_in_flight == 0 || es.max_in_flight > 64 {
        return Err(invalid(
            "elasticsearch.max_in_flight",
            "must be between 1 and 64",
        ));
    }
    nonzero_duration("elasticsearch.request_timeout", es.request_timeout.0)?;
    nonzero_duration(
        "elasticsearch.retry.initial_backoff",
        es.retry.initial_backoff.0,
    )?;
    if es.retry.max_backoff.0 < es.retry.initial_backoff.0 {
        return Err(invalid(
            "elasticsearch.retry.max_backoff",
            "must not be smaller than initial_backoff",
        ));
    }

    let auth = es.auth.validate()?;
    let tls = validate_tls(es.tls)?;
    if es.data_stream && index.is_dated() {
        return Err(invalid(
            "elasticsearch.index",
            "with data_stream: true the index is the data stream's fixed name: no %Y, %m or %d (backing indices roll over instead)",
        ));
    }
    if es.failure_store && !es.data_stream {
        return Err(invalid(
            "elasticsearch.failure_store",
            "needs data_stream: true (a failure store belongs to a data stream)",
        ));
    }
    if es.compat == Compat::Fluentd && es.data_stream {
        return Err(invalid(
            "elasticsearch.compat",
            "fluentd writes daily indices as fluent-plugin-elasticsearch did (logstash-%Y.%m.%d); it cannot be combined with data_stream: true",
        ));
    }
    let delete_after = match es.lifecycle.delete_after {
        None => None,
        Some(d) if d.0 < Duration::from_secs(3600) => {
            return Err(invalid(
                "elasticsearch.lifecycle.delete_after",
                "must be at least 1h (ILM/ISM work in whole hours or days)",
            ));
        }
        Some(d) => Some(d.0),
    };
    Ok(ElasticsearchConfig {
        endpoints,
        index,
        dead_letter_index,
        compression: es.compression,
        batch_max_bytes,
        batch_max_events: es.batch.max_events,
        batch_timeout: es.batch.timeout.0,
        max_in_flight: es.max_in_flight,
        request_timeout: es.request_timeout.0,
        initial_backoff: es.retry.initial_backoff.0,
        max_backoff: es.retry.max_backoff.0,
        auth,
        tls,
        setup: es.setup,
        data_stream: es.data_stream,
        failure_store: es.failure_store,
        index_mode: es.index_mode,
        delete_after,
        compat: es.compat,
    })
}

fn validate_tls(t: RawTls) -> Result<TlsConfig, ConfigError> {
    let client_cert = match (t.client_cert_file, t.client_key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "elasticsearch.tls.client_cert_file",
                "client_cert_file and client_key_file go together",
            ));
        }
    };
    if !t.verify && t.ca_file.is_some() {
        return Err(invalid(
            "elasticsearch.tls.verify",
            "verify: false ignores ca_file; remove one of them",
        ));
    }
    Ok(TlsConfig {
        ca_file: t.ca_file,
        client_cert,
        verify: t.verify,
    })
}

#[cfg(test)]
mod tests {
    use super::super::auth::SecretSource;
    use super::*;

    /// The smallest valid section; tests append keys to it (two spaces in).
    const MINIMAL: &str = "elasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n";

    fn load(text: &str) -> Result<ElasticsearchConfig, ConfigError> {
        crate::settings::section("elasticsearch", text, validate)
    }

    fn rejects(text: &str, needle: &str) {
        crate::settings::expect_refused(load(text), needle);
    }

    #[test]
    fn validate_rejects_bad_endpoint() {
        rejects("elasticsearch:\n  endpoints: [\"ftp://x\"]\n", "scheme");
        rejects(
            "elasticsearch:\n  endpoints: []\n",
            "elasticsearch.endpoints",
        );
        rejects(
            "elasticsearch:\n  endpoints: [\"http://u:p@h:9200\"]\n",
            "credentials",
        );
    }

    #[test]
    fn validate_rejects_bad_index() {
        rejects(&format!("{MINIMAL}  index: Logs-%Y\n"), "not allowed");
        rejects(&format!("{MINIMAL}  index: logs-%H\n"), "%H");
        rejects(
            &format!("{MINIMAL}  dead_letter_index: logs-kubernetes-%Y.%m.%d\n"),
            "must differ",
        );
    }

    #[test]
    fn validate_rejects_bad_routing() {
        rejects(
            &format!("{MINIMAL}  index: \"logs-{{kubernetes.nodes}}-%Y\"\n"),
            "elasticsearch.index",
        );
        rejects(
            &format!("{MINIMAL}  index: \"logs-{{kubernetes.namespace|}}\"\n"),
            "the fallback after `|` is empty",
        );
        rejects(
            &format!("{MINIMAL}  dead_letter_index: \"dlq-{{kubernetes.nodes}}\"\n"),
            "elasticsearch.dead_letter_index",
        );
        rejects(
            &format!("{MINIMAL}  dead_letter_index: \"dlq-{{sluice.dataset|x}}\"\n"),
            "elasticsearch.dead_letter_index",
        );
    }

    #[test]
    fn routed_patterns_are_accepted() {
        let c = load(&format!(
            "{MINIMAL}  index: \"logs-{{kubernetes.namespace}}-{{sluice.dataset|default}}-%Y.%m.%d\"\n  dead_letter_index: \"dlq-{{kubernetes.namespace}}-%Y\"\n"
        ))
        .unwrap();
        assert!(c.index.is_routed() && c.dead_letter_index.is_routed());
        let c = load(&format!(
            "{MINIMAL}  data_stream: true\n  index: \"logs-{{sluice.dataset|generic}}-{{kubernetes.namespace}}\"\n"
        ))
        .unwrap();
        assert!(c.data_stream && c.index.is_routed());
    }

    #[test]
    fn validate_rejects_bad_compression() {
        rejects(&format!("{MINIMAL}  compression: zstd\n"), "zstd");
    }

    #[test]
    fn auth_and_tls_are_read() {
        let c = load(&format!(
            "{MINIMAL}  auth:\n    username: elastic\n    password_file: /run/secrets/pw\n  tls:\n    ca_file: /ca.pem\n  setup: off\n"
        ))
        .unwrap();
        assert_eq!(
            c.auth,
            Auth::Basic {
                username: "elastic".into(),
                password: SecretSource::File("/run/secrets/pw".into())
            }
        );
        assert!(c.tls.verify);
        assert_eq!(c.setup, SetupMode::Off);
        let c = load(&format!("{MINIMAL}  auth:\n    api_key: s3cr3t\n")).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug leaks the key");
        assert_eq!(load(MINIMAL).unwrap().setup, SetupMode::Auto);
    }

    #[test]
    fn validate_rejects_bad_auth() {
        rejects(
            &format!("{MINIMAL}  auth:\n    username: u\n"),
            "elasticsearch.auth.password",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    password: p\n"),
            "elasticsearch.auth.username",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    api_key: k\n    api_key_file: /k\n"),
            "not both",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    api_key: k\n    bearer_token: t\n"),
            "choose one method",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    bearer_token_file: token\n"),
            "absolute path",
        );
        rejects(&format!("{MINIMAL}  auth:\n    api_key: \"\"\n"), "empty");
        rejects(&format!("{MINIMAL}  auth:\n    token: t\n"), "token");
    }

    #[test]
    fn aws_auth_is_read_with_defaults() {
        use super::super::aws::{AwsAuth, AwsService};
        let aws = |yaml: &str| load(&format!("{MINIMAL}  auth:\n{yaml}")).unwrap().auth;
        assert_eq!(
            aws("    aws:\n      region: eu-west-1\n      service: aoss\n"),
            Auth::Aws(AwsAuth {
                region: Some("eu-west-1".into()),
                service: AwsService::Aoss
            })
        );
        let defaults = Auth::Aws(AwsAuth {
            region: None,
            service: AwsService::Es,
        });
        assert_eq!(aws("    aws: {}\n"), defaults);
        // A bare `aws:` (YAML null) still asks for SigV4, not for no authentication.
        assert_eq!(aws("    aws:\n"), defaults);
    }

    #[test]
    fn validate_rejects_bad_aws_auth() {
        rejects(
            &format!("{MINIMAL}  auth:\n    aws:\n      service: s3\n"),
            "s3",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    aws:\n      region: \"\"\n"),
            "elasticsearch.auth.aws.region",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    aws:\n      region: EU West 1\n"),
            "elasticsearch.auth.aws.region",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    aws:\n      role_arn: arn:aws:iam::1:role/x\n"),
            "role_arn",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    aws: {{}}\n    api_key: k\n"),
            "choose one method",
        );
        rejects(
            &format!("{MINIMAL}  auth:\n    username: u\n    password: p\n    aws:\n"),
            "choose one method: username+password, api_key, bearer_token or aws",
        );
    }

    #[test]
    fn validate_rejects_bad_tls() {
        rejects(
            &format!("{MINIMAL}  tls:\n    client_cert_file: /c.pem\n"),
            "go together",
        );
        rejects(
            &format!("{MINIMAL}  tls:\n    verify: false\n    ca_file: /ca.pem\n"),
            "elasticsearch.tls.verify",
        );
    }

    #[test]
    fn validate_rejects_unknown_index_mode() {
        rejects(&format!("{MINIMAL}  index_mode: tsdb\n"), "tsdb");
        assert_eq!(load(MINIMAL).unwrap().index_mode, IndexMode::Auto);
    }

    #[test]
    fn validate_rejects_failure_store_without_data_stream() {
        rejects(
            &format!("{MINIMAL}  failure_store: true\n"),
            "elasticsearch.failure_store",
        );
        rejects(
            &format!("{MINIMAL}  failure_store: sometimes\n"),
            "failure_store",
        );
    }

    #[test]
    fn validate_rejects_bad_setup_and_lifecycle() {
        rejects(&format!("{MINIMAL}  setup: sometimes\n"), "sometimes");
        rejects(&format!("{MINIMAL}  data_stream: true\n"), "data_stream");
        rejects(
            &format!("{MINIMAL}  lifecycle:\n    delete_after: 5m\n"),
            "elasticsearch.lifecycle.delete_after",
        );
        rejects(&format!("{MINIMAL}  lifecycle:\n    keep: 5d\n"), "keep");
    }

    #[test]
    fn validate_rejects_bad_compat() {
        rejects(&format!("{MINIMAL}  compat: logstash\n"), "logstash");
        rejects(
            &format!("{MINIMAL}  compat: fluentd\n  index: logs\n  data_stream: true\n"),
            "elasticsearch.compat",
        );
    }

    #[test]
    fn compat_fluentd_defaults_to_logstash_indices() {
        let c = load(&format!("{MINIMAL}  compat: fluentd\n")).unwrap();
        assert_eq!(c.compat, Compat::Fluentd);
        assert_eq!(c.index.as_str(), "logstash-%Y.%m.%d");
        let c = load(&format!("{MINIMAL}  compat: fluentd\n  index: k8s-%Y.%m\n")).unwrap();
        assert_eq!(c.index.as_str(), "k8s-%Y.%m");
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.compat, Compat::None);
        assert_eq!(c.index.as_str(), "logs-kubernetes-%Y.%m.%d");
    }
}
