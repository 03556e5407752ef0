//! Configuration: the YAML file is read once, `${VAR}` references are expanded, and the result is
//! turned into one validated [`Config`]. Nothing after this module sees a raw or invalid value.
//!
//! Every unknown key and every bad value is an error that names the key and says what is allowed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::parse::multiline;
use crate::sink::elasticsearch::auth::{Auth, Secret, SecretSource};
use crate::sink::elasticsearch::aws::RawAwsAuth;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "config: environment variable `{0}` is not set and has no default (write ${{{0}:-default}})"
    )]
    MissingEnv(String),
    #[error("config: unterminated `${{` reference")]
    UnterminatedEnv,
    #[error("config: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("config: `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Wrapper that deserializes a human duration such as `250ms` or `1m 30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a duration ({e}); write e.g. 500ms, 5s, 2m"
                ))
            })
    }
}

/// Wrapper that deserializes a byte size such as `4MiB` or `512KiB` (or a plain number of bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s
                .parse::<bytesize::ByteSize>()
                .map(|b| ByteSize(b.as_u64()))
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "`{s}` is not a size ({e}); write e.g. 512KiB, 4MiB"
                    ))
                }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw file shape. Defaults live here; validation happens in `Config::from_raw`.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// This node's name (`host.name`, `kubernetes.node.name`). Default: `$NODE_NAME`, else the hostname.
    node_name: Option<String>,
    #[serde(default)]
    cluster_name: Option<String>,
    state_dir: PathBuf,
    #[serde(default)]
    input: RawInput,
    #[serde(default)]
    parse: RawParse,
    elasticsearch: RawElasticsearch,
    #[serde(default)]
    telemetry: RawTelemetry,
    #[serde(default)]
    kubernetes: crate::kubernetes::config::RawKubernetes,
    #[serde(default = "default_shutdown_timeout")]
    shutdown_timeout: HumanDuration,
    #[serde(default = "default_checkpoint_interval")]
    checkpoint_interval: HumanDuration,
}

fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(25))
}
fn default_checkpoint_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    #[serde(default = "default_root")]
    root: PathBuf,
    #[serde(default = "default_include")]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    read_from: ReadFrom,
    #[serde(default = "default_max_line_bytes")]
    max_line_bytes: ByteSize,
    #[serde(default = "default_scan_interval")]
    scan_interval: HumanDuration,
    #[serde(default = "default_poll_interval")]
    poll_interval: HumanDuration,
    #[serde(default = "default_read_chunk")]
    read_chunk_bytes: ByteSize,
    #[serde(default)]
    ignore_older: Option<HumanDuration>,
    #[serde(default = "default_max_rotated_files")]
    max_rotated_files: usize,
}

impl Default for RawInput {
    fn default() -> Self {
        RawInput {
            root: default_root(),
            include: default_include(),
            exclude: Vec::new(),
            read_from: ReadFrom::default(),
            max_line_bytes: default_max_line_bytes(),
            scan_interval: default_scan_interval(),
            poll_interval: default_poll_interval(),
            read_chunk_bytes: default_read_chunk(),
            ignore_older: None,
            max_rotated_files: default_max_rotated_files(),
        }
    }
}

fn default_root() -> PathBuf {
    PathBuf::from("/")
}
fn default_include() -> Vec<String> {
    vec!["/var/log/containers/*.log".to_string()]
}
fn default_max_line_bytes() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_scan_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_read_chunk() -> ByteSize {
    ByteSize(256 << 10)
}
fn default_max_rotated_files() -> usize {
    128
}

/// Where to start a file that has no checkpoint yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// From the first byte (default: nothing written before the agent started is lost).
    #[default]
    Head,
    /// From the end, for files present at the agent's first start; files created later are
    /// always read from the head.
    Tail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParse {
    #[serde(default)]
    format: FormatChoice,
    #[serde(default = "default_max_event_bytes")]
    max_event_bytes: ByteSize,
    #[serde(default)]
    json: RawJson,
    #[serde(default)]
    multiline: Option<RawMultiline>,
}

impl Default for RawParse {
    fn default() -> Self {
        RawParse {
            format: FormatChoice::default(),
            max_event_bytes: default_max_event_bytes(),
            json: RawJson::default(),
            multiline: None,
        }
    }
}

fn default_max_event_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

/// The container log format: detected per file from its first line, or forced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    #[default]
    Auto,
    Cri,
    Docker,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJson {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_json_target")]
    target: String,
}

impl Default for RawJson {
    fn default() -> Self {
        RawJson {
            enabled: true,
            target: default_json_target(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_json_target() -> String {
    "json".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultiline {
    #[serde(flatten)]
    rules: multiline::Config,
    #[serde(default = "default_multiline_timeout")]
    timeout: HumanDuration,
}

fn default_multiline_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawElasticsearch {
    endpoints: Vec<String>,
    #[serde(default = "default_index")]
    index: String,
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
    lifecycle: RawLifecycle,
}

/// Credentials: at most one method; each secret inline (e.g. `${ES_PASSWORD}`) or as a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    api_key: Option<Secret>,
    api_key_file: Option<PathBuf>,
    bearer_token: Option<Secret>,
    bearer_token_file: Option<PathBuf>,
    /// `Some(None)`: the key is there with no settings (`aws:` or `aws: {}`), which still means
    /// SigV4; a plain `Option` would read a bare `aws:` as "no auth".
    #[serde(default, deserialize_with = "present")]
    aws: Option<Option<RawAwsAuth>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
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

fn default_index() -> String {
    "logs-kubernetes-%Y.%m.%d".to_string()
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    #[serde(default = "default_listen")]
    listen: Option<String>,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        RawTelemetry {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> Option<String> {
    Some("127.0.0.1:9890".to_string())
}

// ---------------------------------------------------------------------------------------------
// Validated configuration.
// ---------------------------------------------------------------------------------------------

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    pub cluster_name: Option<String>,
    pub state_dir: PathBuf,
    pub input: InputConfig,
    pub parse: ParseConfig,
    pub elasticsearch: ElasticsearchConfig,
    /// Address of the `/metrics` and `/healthz` endpoint; `None` switches it off.
    pub telemetry_listen: Option<SocketAddr>,
    pub kubernetes: crate::kubernetes::config::KubernetesConfig,
    pub shutdown_timeout: Duration,
    pub checkpoint_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct InputConfig {
    /// Prefix joined to every include/exclude pattern (`/` on a node; a temp dir in tests).
    pub root: PathBuf,
    /// Absolute glob patterns, already prefixed with `root`.
    pub include: Vec<String>,
    pub exclude: Vec<glob::Pattern>,
    pub read_from: ReadFrom,
    pub max_line_bytes: usize,
    pub scan_interval: Duration,
    pub poll_interval: Duration,
    pub read_chunk_bytes: usize,
    /// Files not modified for this long are not picked up (unless the checkpoint knows them).
    pub ignore_older: Option<Duration>,
    /// Rotated or deleted files kept open to be read to their end; beyond it the oldest is
    /// closed with a warning and its unread bytes are counted as lost.
    pub max_rotated_files: usize,
}

#[derive(Debug, Clone)]
pub struct ParseConfig {
    pub format: FormatChoice,
    pub max_event_bytes: usize,
    /// Object under which JSON application log fields go; `None` when JSON parsing is off.
    pub json_target: Option<String>,
    pub multiline: Option<(multiline::Config, Duration)>,
}

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
    /// Indices (or backing indices) older than this are deleted by ILM/ISM; `None`: keep.
    pub delete_after: Option<Duration>,
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

/// An index name with `%Y`, `%m` and `%d` taken from the event's own timestamp (UTC), never
/// from the clock at send time, so that a replay lands in the same index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPattern {
    pattern: String,
}

impl IndexPattern {
    pub fn parse(key: &'static str, s: &str) -> Result<Self, ConfigError> {
        if s.is_empty() {
            return Err(invalid(key, "must not be empty"));
        }
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('Y' | 'm' | 'd' | '%') => {}
                    other => {
                        return Err(invalid(
                            key,
                            format!(
                                "`%{}` is not supported; use %Y, %m, %d or %%",
                                other.map(String::from).unwrap_or_default()
                            ),
                        ));
                    }
                }
            } else if c.is_ascii_uppercase()
                || matches!(
                    c,
                    '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
                )
            {
                return Err(invalid(
                    key,
                    format!(
                        "`{s}` is not a valid index name: `{c}` is not allowed (lowercase, no \\ / * ? \" < > | space , # :)"
                    ),
                ));
            }
        }
        if s.starts_with(['-', '_', '+']) {
            return Err(invalid(key, "an index name may not start with -, _ or +"));
        }
        Ok(IndexPattern {
            pattern: s.to_string(),
        })
    }

    /// Whether the name depends on the date at all.
    pub fn is_dated(&self) -> bool {
        self.pattern.contains("%Y") || self.pattern.contains("%m") || self.pattern.contains("%d")
    }

    /// Renders the index name for a UTC date.
    pub fn render(&self, (year, month, day): (i32, u32, u32)) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 4);
        let mut chars = self.pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&format!("{year:04}")),
                Some('m') => out.push_str(&format!("{month:02}")),
                Some('d') => out.push_str(&format!("{day:02}")),
                Some('%') => out.push('%'),
                // Validated in `parse`: no other character follows a `%`.
                _ => {}
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl Config {
    /// Reads, expands and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text, &|name| std::env::var(name).ok())
    }

    /// Parses configuration text; `env` resolves `${VAR}` references (injected for tests).
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let expanded = expand_env(text, env)?;
        let raw: RawConfig = serde_norway::from_str(&expanded)?;
        Config::from_raw(raw, env)
    }

    fn from_raw(
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let node_name = match raw.node_name {
            Some(n) if n.trim().is_empty() => {
                return Err(invalid("node_name", "must not be empty"));
            }
            Some(n) => n,
            None => env("NODE_NAME")
                .filter(|n| !n.is_empty())
                .unwrap_or_else(hostname),
        };
        if raw.state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "must not be empty"));
        }

        let input = raw.input;
        if !input.root.is_absolute() {
            return Err(invalid(
                "input.root",
                format!("`{}` must be an absolute path", input.root.display()),
            ));
        }
        if input.include.is_empty() {
            return Err(invalid("input.include", "needs at least one glob pattern"));
        }
        let prefix = |p: &str| -> String {
            let rel = p.trim_start_matches('/');
            input.root.join(rel).to_string_lossy().into_owned()
        };
        let mut include = Vec::new();
        for p in &input.include {
            if !p.starts_with('/') {
                return Err(invalid(
                    "input.include",
                    format!("`{p}` must be an absolute pattern (it is joined to input.root)"),
                ));
            }
            let full = prefix(p);
            glob::Pattern::new(&full)
                .map_err(|e| invalid("input.include", format!("`{p}`: {e}")))?;
            include.push(full);
        }
        let mut exclude = Vec::new();
        for p in &input.exclude {
            let full = if p.starts_with('/') {
                prefix(p)
            } else {
                p.clone()
            };
            exclude.push(
                glob::Pattern::new(&full)
                    .map_err(|e| invalid("input.exclude", format!("`{p}`: {e}")))?,
            );
        }
        let max_line_bytes = bounded(
            "input.max_line_bytes",
            input.max_line_bytes.0,
            1 << 10,
            64 << 20,
        )?;
        let read_chunk_bytes = bounded(
            "input.read_chunk_bytes",
            input.read_chunk_bytes.0,
            4 << 10,
            16 << 20,
        )?;
        nonzero_duration("input.scan_interval", input.scan_interval.0)?;
        if let Some(d) = input.ignore_older {
            nonzero_duration("input.ignore_older", d.0)?;
        }
        if input.max_rotated_files == 0 {
            return Err(invalid("input.max_rotated_files", "must be at least 1"));
        }
        nonzero_duration("input.poll_interval", input.poll_interval.0)?;

        let parse = raw.parse;
        let max_event_bytes = bounded(
            "parse.max_event_bytes",
            parse.max_event_bytes.0,
            1 << 10,
            64 << 20,
        )?;
        let json_target = if parse.json.enabled {
            let t = parse.json.target;
            if t.is_empty() || t.contains('.') || t.starts_with('_') || t.starts_with('@') {
                return Err(invalid(
                    "parse.json.target",
                    format!("`{t}` must be a plain field name (no dots, not starting with _ or @)"),
                ));
            }
            if matches!(
                t.as_str(),
                "message"
                    | "log"
                    | "kubernetes"
                    | "container"
                    | "host"
                    | "agent"
                    | "event"
                    | "orchestrator"
            ) {
                return Err(invalid(
                    "parse.json.target",
                    format!("`{t}` is a field sluice writes itself; choose another name"),
                ));
            }
            Some(t)
        } else {
            None
        };
        let multiline = match parse.multiline {
            None => None,
            Some(m) => {
                multiline::Rules::new(&m.rules)
                    .map_err(|e| invalid("parse.multiline", e.to_string()))?;
                nonzero_duration("parse.multiline.timeout", m.timeout.0)?;
                Some((m.rules, m.timeout.0))
            }
        };

        let es = raw.elasticsearch;
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
        let index = IndexPattern::parse("elasticsearch.index", &es.index)?;
        let dead_letter_index =
            IndexPattern::parse("elasticsearch.dead_letter_index", &es.dead_letter_index)?;
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

        let auth = validate_auth(es.auth)?;
        let tls = validate_tls(es.tls)?;
        if es.data_stream && index.is_dated() {
            return Err(invalid(
                "elasticsearch.index",
                "with data_stream: true the index is the data stream's fixed name: no %Y, %m or %d (backing indices roll over instead)",
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

        let telemetry_listen = match raw.telemetry.listen {
            None => None,
            Some(s) if s.is_empty() || s == "off" => None,
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|e| {
                invalid("telemetry.listen", format!("`{s}` is not host:port ({e})"))
            })?),
        };
        nonzero_duration("checkpoint_interval", raw.checkpoint_interval.0)?;
        let kubernetes = crate::kubernetes::config::validate(raw.kubernetes, env)?;

        Ok(Config {
            node_name,
            cluster_name: raw.cluster_name.filter(|c| !c.is_empty()),
            state_dir: raw.state_dir,
            input: InputConfig {
                root: input.root,
                include,
                exclude,
                read_from: input.read_from,
                max_line_bytes,
                scan_interval: input.scan_interval.0,
                poll_interval: input.poll_interval.0,
                read_chunk_bytes,
                ignore_older: input.ignore_older.map(|d| d.0),
                max_rotated_files: input.max_rotated_files,
            },
            parse: ParseConfig {
                format: parse.format,
                max_event_bytes,
                json_target,
                multiline,
            },
            elasticsearch: ElasticsearchConfig {
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
                delete_after,
            },
            telemetry_listen,
            kubernetes,
            shutdown_timeout: raw.shutdown_timeout.0,
            checkpoint_interval: raw.checkpoint_interval.0,
        })
    }
}

fn secret_source(
    key: &'static str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
) -> Result<Option<SecretSource>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, "give the value or the `_file`, not both")),
        (Some(s), None) if s.is_empty() => Err(invalid(key, "must not be empty")),
        (Some(s), None) => Ok(Some(SecretSource::Inline(s))),
        (None, Some(p)) if p.is_relative() => Err(invalid(
            key,
            format!("`{}` must be an absolute path", p.display()),
        )),
        (None, Some(p)) => Ok(Some(SecretSource::File(p))),
        (None, None) => Ok(None),
    }
}

fn validate_auth(a: RawAuth) -> Result<Auth, ConfigError> {
    let password = secret_source("elasticsearch.auth.password", a.password, a.password_file)?;
    let api_key = secret_source("elasticsearch.auth.api_key", a.api_key, a.api_key_file)?;
    let bearer = secret_source(
        "elasticsearch.auth.bearer_token",
        a.bearer_token,
        a.bearer_token_file,
    )?;
    let basic = match (a.username, password) {
        (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
        (Some(_), Some(_)) => {
            return Err(invalid("elasticsearch.auth.username", "must not be empty"));
        }
        (Some(_), None) => {
            return Err(invalid(
                "elasticsearch.auth.password",
                "basic auth needs a password (or password_file) with the username",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "elasticsearch.auth.username",
                "basic auth needs a username with the password",
            ));
        }
        (None, None) => None,
    };
    let aws = a
        .aws
        .map(|raw| raw.unwrap_or_default().validate())
        .transpose()?;
    let methods = usize::from(basic.is_some())
        + usize::from(api_key.is_some())
        + usize::from(bearer.is_some())
        + usize::from(aws.is_some());
    if methods > 1 {
        return Err(invalid(
            "elasticsearch.auth",
            "choose one method: username+password, api_key, bearer_token or aws",
        ));
    }
    Ok(match (basic, api_key, bearer, aws) {
        (Some((username, password)), _, _, _) => Auth::Basic { username, password },
        (_, Some(k), _, _) => Auth::ApiKey(k),
        (_, _, Some(t), _) => Auth::Bearer(t),
        (_, _, _, Some(a)) => Auth::Aws(a),
        _ => Auth::None,
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

fn bounded(key: &'static str, v: u64, min: u64, max: u64) -> Result<usize, ConfigError> {
    if v < min || v > max {
        return Err(invalid(
            key,
            format!(
                "{} is out of range ({} to {})",
                bytesize::ByteSize(v),
                bytesize::ByteSize(min),
                bytesize::ByteSize(max)
            ),
        ));
    }
    usize::try_from(v).map_err(|_| invalid(key, "too large for this platform"))
}

fn nonzero_duration(key: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Comment lines are expanded too,
/// so an unset variable in a comment is still an error only if referenced with `${`.
fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(ConfigError::UnterminatedEnv)?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match env(name)
                .filter(|v| !v.is_empty())
                .or(default.map(str::to_string))
            {
                Some(v) => out.push_str(&v),
                None => return Err(ConfigError::MissingEnv(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const MINIMAL: &str = "state_dir: /tmp/s\nnode_name: n1\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n";

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(text, &no_env)
    }

    fn rejects(text: &str, needle: &str) {
        let err = load(text)
            .expect_err("config should be refused")
            .to_string();
        assert!(
            err.contains(needle),
            "error `{err}` should mention `{needle}`"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.node_name, "n1");
        assert_eq!(
            c.input.include,
            vec!["/var/log/containers/*.log".to_string()]
        );
        assert_eq!(c.elasticsearch.index.as_str(), "logs-kubernetes-%Y.%m.%d");
        assert_eq!(c.elasticsearch.compression, Compression::Gzip);
        assert_eq!(c.parse.json_target.as_deref(), Some("json"));
        assert_eq!(c.telemetry_listen, Some("127.0.0.1:9890".parse().unwrap()));
    }

    #[test]
    fn root_prefixes_patterns() {
        let c = load(&format!(
            "{MINIMAL}input:\n  root: /tmp/node\n  exclude: [\"/var/log/containers/skip*\"]\n"
        ))
        .unwrap();
        assert_eq!(
            c.input.include,
            vec!["/tmp/node/var/log/containers/*.log".to_string()]
        );
        assert!(c.input.exclude[0].matches("/tmp/node/var/log/containers/skip_me.log"));
    }

    #[test]
    fn env_references_expand() {
        let env = |n: &str| (n == "ES").then(|| "http://10.0.0.1:9200".to_string());
        let c = Config::from_yaml(
            "state_dir: /s\nnode_name: ${NODE:-fallback}\nelasticsearch:\n  endpoints: [\"${ES}\"]\n",
            &env,
        )
        .unwrap();
        assert_eq!(c.node_name, "fallback");
        assert_eq!(
            c.elasticsearch.endpoints[0].as_str(),
            "http://10.0.0.1:9200/"
        );
    }

    #[test]
    fn validate_rejects_missing_env() {
        rejects("state_dir: ${NOPE}\n", "NOPE");
    }

    #[test]
    fn validate_rejects_unknown_key() {
        rejects(&format!("{MINIMAL}bogus: 1\n"), "bogus");
        rejects(&format!("{MINIMAL}input:\n  includes: []\n"), "includes");
    }

    #[test]
    fn validate_rejects_bad_duration() {
        rejects(
            &format!("{MINIMAL}shutdown_timeout: soon\n"),
            "not a duration",
        );
        rejects(
            &format!("{MINIMAL}checkpoint_interval: 0s\n"),
            "checkpoint_interval",
        );
    }

    #[test]
    fn validate_rejects_bad_size() {
        rejects(
            &format!("{MINIMAL}input:\n  max_line_bytes: lots\n"),
            "not a size",
        );
        rejects(
            &format!("{MINIMAL}input:\n  max_line_bytes: 10\n"),
            "input.max_line_bytes",
        );
    }

    #[test]
    fn validate_rejects_zero_rotated_bound() {
        rejects(
            &format!("{MINIMAL}input:\n  max_rotated_files: 0\n"),
            "input.max_rotated_files",
        );
        rejects(
            &format!("{MINIMAL}input:\n  ignore_older: 0s\n"),
            "input.ignore_older",
        );
    }

    #[test]
    fn validate_rejects_relative_include() {
        rejects(
            &format!("{MINIMAL}input:\n  include: [\"logs/*.log\"]\n"),
            "input.include",
        );
    }

    #[test]
    fn validate_rejects_bad_endpoint() {
        rejects(
            "state_dir: /s\nelasticsearch:\n  endpoints: [\"ftp://x\"]\n",
            "scheme",
        );
        rejects(
            "state_dir: /s\nelasticsearch:\n  endpoints: []\n",
            "elasticsearch.endpoints",
        );
        rejects(
            "state_dir: /s\nelasticsearch:\n  endpoints: [\"http://u:p@h:9200\"]\n",
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
    fn validate_rejects_bad_enum() {
        rejects(&format!("{MINIMAL}  compression: zstd\n"), "zstd");
        rejects(&format!("{MINIMAL}input:\n  read_from: middle\n"), "middle");
    }

    #[test]
    fn validate_rejects_bad_json_target() {
        rejects(
            &format!("{MINIMAL}parse:\n  json:\n    target: a.b\n"),
            "parse.json.target",
        );
        rejects(
            &format!("{MINIMAL}parse:\n  json:\n    target: kubernetes\n"),
            "parse.json.target",
        );
    }

    #[test]
    fn validate_rejects_bad_listen() {
        rejects(
            &format!("{MINIMAL}telemetry:\n  listen: nowhere\n"),
            "telemetry.listen",
        );
    }

    #[test]
    fn auth_and_tls_are_read() {
        let c = load(&format!(
            "{MINIMAL}  auth:\n    username: elastic\n    password_file: /run/secrets/pw\n  tls:\n    ca_file: /ca.pem\n  setup: off\n"
        ))
        .unwrap();
        assert_eq!(
            c.elasticsearch.auth,
            Auth::Basic {
                username: "elastic".into(),
                password: SecretSource::File("/run/secrets/pw".into())
            }
        );
        assert!(c.elasticsearch.tls.verify);
        assert_eq!(c.elasticsearch.setup, SetupMode::Off);
        let c = load(&format!("{MINIMAL}  auth:\n    api_key: s3cr3t\n")).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug leaks the key");
        assert_eq!(load(MINIMAL).unwrap().elasticsearch.setup, SetupMode::Auto);
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
        use crate::sink::elasticsearch::aws::{AwsAuth, AwsService};
        let aws = |yaml: &str| {
            load(&format!("{MINIMAL}  auth:\n{yaml}"))
                .unwrap()
                .elasticsearch
                .auth
        };
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
    fn index_pattern_renders_event_date() {
        let p = IndexPattern::parse("k", "logs-%Y.%m.%d").unwrap();
        assert_eq!(p.render((2026, 3, 7)), "logs-2026.03.07");
        assert!(p.is_dated());
        assert!(!IndexPattern::parse("k", "logs").unwrap().is_dated());
    }
}
