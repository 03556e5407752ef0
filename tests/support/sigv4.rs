//! The SigV4-verifying proxy (`sigv4_proxy.py`: botocore checks every signature, moto's STS in
//! the same process issues IRSA credentials) as a child process of the test, and the agent
//! environment that points the AWS chain at it. Included with `#[path]` by tests/sigv4.rs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct SigV4Proxy {
    /// The agent's endpoint: `http://127.0.0.1:PORT`.
    pub url: String,
    /// moto's STS, for `AWS_ENDPOINT_URL_STS`.
    pub sts: String,
    child: Child,
    log: PathBuf,
}

/// A static key the proxy accepts: access key id, secret, optional session token.
pub struct Key<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
}

/// What the proxy checks against.
pub struct Options<'a> {
    pub region: &'a str,
    /// The signing name: `es` or `aoss`.
    pub service: &'a str,
    /// Static keys; keys moto's STS issued are always known.
    pub keys: &'a [Key<'a>],
    /// How old (or early) a signature may be (AWS: 5 minutes).
    pub max_skew: Duration,
    /// The first this many valid `_bulk` requests get a 503 instead of being forwarded.
    pub fail_bulks: usize,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            region: "eu-west-1",
            service: "es",
            keys: &[],
            max_skew: Duration::from_secs(300),
            fail_bulks: 0,
        }
    }
}

impl SigV4Proxy {
    /// Starts the proxy in front of `es`. Fails loudly if it cannot start.
    pub fn start(dir: &Path, es: &str, opts: &Options) -> SigV4Proxy {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = crate::support::script(&["scripts/moto", "python"]);
        let log = dir.join("sigv4-proxy.log");
        let mut cmd = Command::new(&python);
        cmd.arg(repo.join("tests/support/sigv4_proxy.py"))
            .args([
                "--es",
                es,
                "--region",
                opts.region,
                "--service",
                opts.service,
            ])
            .arg(format!("--max-skew={}", opts.max_skew.as_secs_f64()))
            .arg(format!("--fail-bulks={}", opts.fail_bulks));
        for k in opts.keys {
            let spec = match k.token {
                Some(t) => format!("{}:{}:{t}", k.id, k.secret),
                None => format!("{}:{}", k.id, k.secret),
            };
            cmd.arg(format!("--key={spec}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        // The first line says where it listens; EOF means it died (its log says why).
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addrs: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "the SigV4 proxy did not start (stdout {line:?}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        SigV4Proxy {
            url: addrs["proxy"].as_str().unwrap().to_string(),
            sts: addrs["sts"].as_str().unwrap().to_string(),
            child,
            log,
        }
    }

    /// `{"verified", "verified_paths": {...}, "gzipped", "failed_bulks", "forwarded", "rejected",
    /// "rejected_by_kind": {...}, "access_keys": [...]}`.
    pub fn stats(&self) -> Value {
        let body = reqwest::blocking::Client::new()
            .get(format!("{}/__sigv4/stats", self.url))
            .timeout(Duration::from_secs(10))
            .send()
            .and_then(|r| r.bytes())
            .unwrap_or_else(|e| panic!("SigV4 proxy stats: {e}; log:\n{}", self.log_text()));
        serde_json::from_slice(&body).unwrap()
    }

    pub fn count(&self, key: &str) -> u64 {
        self.stats()[key].as_u64().unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SigV4Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared credentials file of [`aws_env`] (absent until a test writes it).
pub fn credentials_file(dir: &Path) -> PathBuf {
    dir.join("aws-credentials")
}

/// The agent's AWS environment: nothing from the machine (no `~/.aws`, no IMDS, which would be
/// a request to 169.254.169.254), profile files in `dir` (the config file empty), plus `extra`.
pub fn aws_env(dir: &Path, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    // Present, so the SDK does not warn at every load that an overridden path is missing.
    std::fs::write(dir.join("aws-config"), "").unwrap();
    let mut env = vec![
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        (
            "AWS_CONFIG_FILE",
            dir.join("aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials_file(dir).display().to_string(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(e, _)| e != k);
        env.push((k, v.clone()));
    }
    env
}
