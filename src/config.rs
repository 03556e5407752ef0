//! Configuration: the YAML file is read once, `${VAR}` references are expanded, each section is
//! handed to the stage that owns it, and the results are put together into one validated
//! [`Config`], a plain value (hot reload builds another and compares:
//! [`Config::restart_only_changes`]). Nothing after this
//! module sees a raw or invalid value.
//!
//! Every unknown key and every bad value is an error that names the key and says what is allowed.
//!
//! Where each section lives (raw type, defaults, validation and its `validate_rejects_*` tests):
//! - top-level keys (`node_name`, `state_dir`, `shutdown_timeout`, `checkpoint_interval`): here;
//! - `input:`: [`crate::tail::config`];
//! - `parse:`: [`crate::parse::config`];
//! - `elasticsearch:`: [`crate::sink::elasticsearch::config`], with `auth:` in
//!   [`crate::sink::elasticsearch::auth`], `auth.aws:` in [`crate::sink::elasticsearch::aws`] and
//!   index names in [`crate::sink::elasticsearch::index`];
//! - `telemetry:`: [`crate::telemetry::config`];
//! - `kubernetes:`: [`crate::kubernetes::config`].
//!
//! The shared vocabulary (durations, sizes, `${VAR}` expansion, [`ConfigError`], range checks)
//! is [`crate::settings`], a leaf. Sections import it, never this module; only this module
//! knows all sections. The section types are re-exported here so that `config::X` names every
//! type a [`Config`] holds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::settings::{HumanDuration, expand_env, invalid, nonzero_duration};
use crate::{kubernetes, parse, sink, tail, telemetry};

pub use crate::kubernetes::config::KubernetesConfig;
pub use crate::parse::config::{FormatChoice, ParseConfig};
pub use crate::settings::ConfigError;
pub use crate::sink::elasticsearch::IndexPattern;
pub use crate::sink::elasticsearch::config::{
    Compression, ElasticsearchConfig, SetupMode, TlsConfig,
};
pub use crate::tail::config::{InputConfig, ReadFrom};
pub use crate::telemetry::config::TelemetryConfig;

/// The file as written: top-level keys here, each section as its stage reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// This node's name (`host.name`, `kubernetes.node.name`). Default: `$NODE_NAME`, else the hostname.
    node_name: Option<String>,
    #[serde(default)]
    cluster_name: Option<String>,
    state_dir: PathBuf,
    #[serde(default)]
    input: tail::config::RawInput,
    #[serde(default)]
    parse: parse::config::RawParse,
    elasticsearch: sink::elasticsearch::config::RawElasticsearch,
    #[serde(default)]
    telemetry: telemetry::config::RawTelemetry,
    #[serde(default)]
    kubernetes: kubernetes::config::RawKubernetes,
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

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    pub cluster_name: Option<String>,
    pub state_dir: PathBuf,
    pub input: InputConfig,
    pub parse: ParseConfig,
    pub elasticsearch: ElasticsearchConfig,
    pub telemetry: TelemetryConfig,
    pub kubernetes: KubernetesConfig,
    pub shutdown_timeout: Duration,
    pub checkpoint_interval: Duration,
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

    /// Validates the top-level keys, then each section in file order (which decides the error
    /// reported when a file has several).
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
        let input = tail::config::validate(raw.input)?;
        let parse = parse::config::validate(raw.parse)?;
        let elasticsearch = sink::elasticsearch::config::validate(raw.elasticsearch)?;
        let telemetry = telemetry::config::validate(raw.telemetry)?;
        nonzero_duration("checkpoint_interval", raw.checkpoint_interval.0)?;
        let kubernetes = kubernetes::config::validate(raw.kubernetes, env)?;

        Ok(Config {
            node_name,
            cluster_name: raw.cluster_name.filter(|c| !c.is_empty()),
            state_dir: raw.state_dir,
            input,
            parse,
            elasticsearch,
            telemetry,
            kubernetes,
            shutdown_timeout: raw.shutdown_timeout.0,
            checkpoint_interval: raw.checkpoint_interval.0,
        })
    }
}

impl Config {
    /// The settings that differ between `self` (running) and `new` but cannot change while the
    /// agent runs, by key: a reload that changes any of them is refused as a whole. They are
    /// read once at start: the state directory (checkpoint, decompressed copies), the telemetry
    /// listener and the stall rule, the node's identity (rendered into every open file's
    /// documents), the checkpointer's interval, the number of concurrent bulk requests (the
    /// sink's permits and the batch pool are sized by it) and the Kubernetes watches.
    pub fn restart_only_changes(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |key: &'static str, changed: bool| {
            if changed {
                keys.push(key);
            }
        };
        check("node_name", self.node_name != new.node_name);
        check("cluster_name", self.cluster_name != new.cluster_name);
        check("state_dir", self.state_dir != new.state_dir);
        check(
            "checkpoint_interval",
            self.checkpoint_interval != new.checkpoint_interval,
        );
        check(
            "telemetry.listen",
            self.telemetry.listen != new.telemetry.listen,
        );
        check(
            "telemetry.stall_timeout",
            self.telemetry.stall_timeout != new.telemetry.stall_timeout,
        );
        check(
            "elasticsearch.max_in_flight",
            self.elasticsearch.max_in_flight != new.elasticsearch.max_in_flight,
        );
        // The document shape is every file's rendered context and the templates' mappings.
        check(
            "elasticsearch.compat",
            self.elasticsearch.compat != new.elasticsearch.compat,
        );
        // `/tap` is routed (or not) when the telemetry server starts.
        check("telemetry.tap", self.telemetry.tap != new.telemetry.tap);
        let (k, n) = (&self.kubernetes, &new.kubernetes);
        check(
            "kubernetes (enabled, kubeconfig, url, token_file, ca_file)",
            k.source != n.source,
        );
        check(
            "kubernetes.metadata_wait",
            k.metadata_wait != n.metadata_wait,
        );
        check(
            "kubernetes.deleted_pod_grace",
            k.deleted_pod_grace != n.deleted_pod_grace,
        );
        check(
            "kubernetes.annotation_allowlist",
            k.annotation_allowlist != n.annotation_allowlist,
        );
        keys
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
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
        crate::settings::expect_refused(load(text), needle);
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
        assert_eq!(c.telemetry.listen, Some("127.0.0.1:9890".parse().unwrap()));
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
    fn env_references_in_comments_are_not_expanded() {
        // As in the reference configuration: commented-out keys naming unset variables.
        let c = load(&format!(
            "{MINIMAL}  # api_key: ${{ES_API_KEY}}\n# state_dir: ${{NOPE}}\n"
        ))
        .unwrap();
        assert_eq!(c.node_name, "n1");
    }

    #[test]
    fn validate_rejects_unknown_key() {
        rejects(&format!("{MINIMAL}bogus: 1\n"), "bogus");
        rejects(&format!("{MINIMAL}input:\n  includes: []\n"), "includes");
    }

    #[test]
    fn restart_only_changes_name_each_key_and_nothing_else() {
        let old = load(MINIMAL).unwrap();
        let live = load(&format!(
            "{MINIMAL}  index: other-%Y\n  batch:\n    max_events: 7\nparse:\n  format: cri\ninput:\n  exclude: [\"/x/*\"]\nshutdown_timeout: 3s\n"
        ))
        .unwrap();
        assert!(old.restart_only_changes(&live).is_empty());
        let restart = load(
            "state_dir: /tmp/other\nnode_name: n2\ncluster_name: c\ncheckpoint_interval: 5s\n\
             elasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n  max_in_flight: 9\n\
             telemetry:\n  listen: off\n  stall_timeout: 1m\n\
             kubernetes:\n  enabled: off\n  metadata_wait: 9s\n",
        )
        .unwrap();
        let keys = old.restart_only_changes(&restart);
        for key in [
            "node_name",
            "cluster_name",
            "state_dir",
            "checkpoint_interval",
            "telemetry.listen",
            "telemetry.stall_timeout",
            "elasticsearch.max_in_flight",
            "kubernetes.metadata_wait",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
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
}
