//! The `input:` configuration section: which files to tail, where to start them, how much to
//! read at a time and how many rotated files to keep open. Imports nothing of the crate but the
//! configuration vocabulary ([`crate::settings`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::{ByteSize, ConfigError, HumanDuration, bounded, invalid, nonzero_duration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
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
    #[serde(default)]
    fairness: Fairness,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

/// What reading is fair between when Elasticsearch is the bottleneck (`input.fairness`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fairness {
    /// Tenants: each namespace gets an equal share, however many pods it runs (default: a
    /// namespace is one installation, and its pod count must not buy it a bigger share).
    #[default]
    Namespace,
    Pod,
    Container,
    /// Every file with data gets a few chunks per round, in no fixed order (the scheduler of
    /// versions before fairness; kept for comparison).
    Off,
}

/// The unit a read budget (`input.rate_limit`, the `sluice.io/rate-limit` annotations) is kept for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetKey {
    #[default]
    Namespace,
    Pod,
    Container,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    #[serde(default)]
    key: BudgetKey,
    bytes_per_second: ByteSize,
    #[serde(default)]
    burst: Option<ByteSize>,
}

/// A validated `input.rate_limit`: every key may read `bytes_per_second` on average, and up to
/// `burst` bytes at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub key: BudgetKey,
    pub bytes_per_second: u64,
    pub burst: u64,
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
            fairness: Fairness::default(),
            rate_limit: None,
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

/// Validated `input:`.
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
    pub fairness: Fairness,
    /// The configured read budget per key; `None`: only annotations set budgets (per namespace).
    pub rate_limit: Option<RateLimit>,
}

pub(crate) fn validate(input: RawInput) -> Result<InputConfig, ConfigError> {
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
        glob::Pattern::new(&full).map_err(|e| invalid("input.include", format!("`{p}`: {e}")))?;
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
    let rate_limit = input.rate_limit.map(rate_limit).transpose()?;
    Ok(InputConfig {
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
        fairness: input.fairness,
        rate_limit,
    })
}

/// The smallest budget: below it a file would read a few lines per second at best.
pub const MIN_RATE: u64 = 1 << 10;

fn rate_limit(raw: RawRateLimit) -> Result<RateLimit, ConfigError> {
    let rate = raw.bytes_per_second.0;
    if rate < MIN_RATE {
        return Err(invalid(
            "input.rate_limit.bytes_per_second",
            format!("{} is below the minimum of 1KiB", bytesize::ByteSize(rate)),
        ));
    }
    // One second's worth by default: a pod that was quiet may write a second's budget at once.
    let burst = raw.burst.map_or(rate, |b| b.0);
    if burst < MIN_RATE {
        return Err(invalid(
            "input.rate_limit.burst",
            format!("{} is below the minimum of 1KiB", bytesize::ByteSize(burst)),
        ));
    }
    Ok(RateLimit {
        key: raw.key,
        bytes_per_second: rate,
        burst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(yaml: &str, needle: &str) {
        crate::settings::expect_refused(crate::settings::section("input", yaml, validate), needle);
    }

    #[test]
    fn root_prefixes_patterns() {
        let c = crate::settings::section(
            "input",
            "input:\n  root: /tmp/node\n  exclude: [\"/var/log/containers/skip*\"]\n",
            validate,
        )
        .unwrap();
        assert_eq!(
            c.include,
            vec!["/tmp/node/var/log/containers/*.log".to_string()]
        );
        assert!(c.exclude[0].matches("/tmp/node/var/log/containers/skip_me.log"));
    }

    #[test]
    fn validate_rejects_bad_size() {
        rejects("input:\n  max_line_bytes: lots\n", "not a size");
        rejects("input:\n  max_line_bytes: 10\n", "input.max_line_bytes");
    }

    #[test]
    fn validate_rejects_zero_rotated_bound() {
        rejects(
            "input:\n  max_rotated_files: 0\n",
            "input.max_rotated_files",
        );
        rejects("input:\n  ignore_older: 0s\n", "input.ignore_older");
    }

    #[test]
    fn validate_rejects_relative_include() {
        rejects("input:\n  include: [\"logs/*.log\"]\n", "input.include");
    }

    #[test]
    fn rate_limit_defaults_and_burst() {
        let c = crate::settings::section(
            "input",
            "input:\n  rate_limit:\n    bytes_per_second: 2MiB\n",
            validate,
        )
        .unwrap();
        assert_eq!(c.fairness, Fairness::Namespace);
        let r = c.rate_limit.unwrap();
        assert_eq!(
            (r.key, r.bytes_per_second, r.burst),
            (BudgetKey::Namespace, 2 << 20, 2 << 20)
        );
    }

    #[test]
    fn validate_rejects_bad_rate_limit() {
        rejects(
            "input:\n  rate_limit:\n    bytes_per_second: 10\n",
            "input.rate_limit.bytes_per_second",
        );
        rejects(
            "input:\n  rate_limit:\n    bytes_per_second: 1MiB\n    burst: 0\n",
            "input.rate_limit.burst",
        );
        rejects(
            "input:\n  rate_limit:\n    burst: 1MiB\n",
            "bytes_per_second",
        );
        rejects(
            "input:\n  rate_limit:\n    key: node\n    bytes_per_second: 1MiB\n",
            "node",
        );
    }

    #[test]
    fn validate_rejects_bad_fairness() {
        rejects("input:\n  fairness: tenant\n", "tenant");
    }

    #[test]
    fn validate_rejects_bad_read_from() {
        rejects("input:\n  read_from: middle\n", "middle");
    }
}
