//! `--kube`: a real kube-apiserver (`scripts/kube-apiserver`, instance `bench` by default) holding
//! one pod per log file of the tree, bound to the agent's node, so the agent enriches every event
//! with API metadata as in production. Setup happens once per run set, before any timing: the
//! agent's RBAC (`deploy/kubernetes/rbac.yaml`) as admin, the namespaces, the pods (created with
//! bounded concurrency, then their status), and the tree's pod directories renamed to the uids the
//! API server assigned. The agent itself uses the `sluice` service account's token; its initial
//! list of the node's pods is part of every measured run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::Value;

use crate::Args;
use crate::endpoint::Marker;
use crate::podspec;
use crate::tree::{self, Container};

/// A running instance of `scripts/kube-apiserver` and an admin client for it.
pub struct ApiServer {
    script: PathBuf,
    instance: String,
    dir: PathBuf,
    env: HashMap<String, String>,
    /// Whether this run set started it (and so stops it at the end).
    started_here: bool,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// How long the set-up took, reported with the results.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Setup {
    pub pods: usize,
    pub start_secs: f64,
    pub cleanup_secs: f64,
    pub create_secs: f64,
    pub relabel_secs: f64,
}

impl ApiServer {
    /// Starts the instance (or reuses a running one) and applies the agent's RBAC.
    pub fn start(script: &Path, instance: &str) -> anyhow::Result<ApiServer> {
        let running = Command::new(script)
            .args(["status", "--instance", instance])
            .output()
            .with_context(|| format!("run {}", script.display()))?
            .status
            .success();
        let out = run_script(script, "start", instance)?;
        let dir = PathBuf::from(out.lines().last().context("no instance dir")?.trim());
        let env: HashMap<String, String> = std::fs::read_to_string(dir.join("env"))?
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ca = std::fs::read(env.get("KUBE_CA_FILE").context("no KUBE_CA_FILE")?)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .timeout(Duration::from_secs(300))
            .build()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let api = ApiServer {
            script: script.to_path_buf(),
            instance: instance.to_string(),
            dir,
            env,
            started_here: !running,
            http,
            rt,
        };
        api.apply_rbac()?;
        Ok(api)
    }

    fn var(&self, key: &str) -> anyhow::Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{key} missing from the instance's env file"))
    }

    /// The agent's `kubernetes:` section: the sluice service account's token, the CA.
    pub fn agent_config(&self, metadata_wait: Option<&str>) -> anyhow::Result<String> {
        let token_file = self.dir.join("bench-agent.token");
        std::fs::write(&token_file, self.var("KUBE_SLUICE_TOKEN")?)?;
        let allow: Vec<String> = podspec::ANNOTATION_ALLOWLIST
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let mut section = format!(
            "kubernetes:\n  enabled: on\n  url: {}\n  token_file: {}\n  ca_file: {}\n  annotation_allowlist: [{}]\n",
            self.var("KUBE_URL")?,
            token_file.display(),
            self.var("KUBE_CA_FILE")?,
            allow.join(", ")
        );
        if let Some(wait) = metadata_wait {
            section.push_str(&format!("  metadata_wait: {wait}\n"));
        }
        Ok(section)
    }

    /// The API server's and etcd's pids, to account their CPU during a run.
    pub fn pids(&self) -> Vec<u32> {
        ["kube-apiserver.pid", "etcd.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    /// Replaces whatever pods the node had with one pod per container of the tree (labelled
    /// with `marker`), and renames the tree's pod directories to their uids.
    pub fn setup(
        &self,
        containers: &mut [Container],
        marker: &str,
        concurrency: usize,
        started: Instant,
    ) -> anyhow::Result<Setup> {
        let start_secs = started.elapsed().as_secs_f64();
        let t = Instant::now();
        self.delete_node_pods()?;
        let cleanup_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut namespaces: Vec<&str> = containers.iter().map(|c| c.namespace.as_str()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        for ns in namespaces {
            self.rt.block_on(
                self.apply(&format!("/api/v1/namespaces/{ns}"), &podspec::namespace(ns)),
            )?;
        }
        let uids: Vec<String> = self.rt.block_on(
            futures::stream::iter(containers.iter().enumerate())
                .map(|(i, c)| self.create_pod(c, i, marker))
                .buffered(concurrency.max(1))
                .try_collect(),
        )?;
        let create_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (c, uid) in containers.iter_mut().zip(&uids) {
            tree::set_pod_uid(c, uid)?;
        }
        Ok(Setup {
            pods: containers.len(),
            start_secs,
            cleanup_secs,
            create_secs,
            relabel_secs: t.elapsed().as_secs_f64(),
        })
    }

    /// Creates one pod, then reports it running; returns its uid.
    async fn create_pod(
        &self,
        c: &Container,
        index: usize,
        marker: &str,
    ) -> anyhow::Result<String> {
        let ns = &c.namespace;
        let created = self
            .send(
                Method::POST,
                &format!("/api/v1/namespaces/{ns}/pods"),
                None,
                Some(("application/json", &podspec::pod(c, marker))),
            )
            .await?;
        self.send(
            Method::PATCH,
            &format!("/api/v1/namespaces/{ns}/pods/{}/status", c.pod),
            None,
            Some(("application/merge-patch+json", &podspec::status(c, index))),
        )
        .await?;
        Ok(created["metadata"]["uid"]
            .as_str()
            .context("created pod has no uid")?
            .to_string())
    }

    /// Deletes every pod bound to the node (left by an earlier run set), namespace by namespace.
    pub fn delete_node_pods(&self) -> anyhow::Result<()> {
        let selector = format!("fieldSelector=spec.nodeName%3D{}", podspec::NODE);
        self.rt.block_on(async {
            // Names only: the full objects of 10,000 pods are tens of MiB.
            let list = self
                .send(
                    Method::GET,
                    &format!("/api/v1/pods?{selector}"),
                    Some(METADATA_ONLY),
                    None,
                )
                .await?;
            let mut namespaces: Vec<&str> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["metadata"]["namespace"].as_str())
                .collect();
            namespaces.sort_unstable();
            namespaces.dedup();
            for ns in namespaces {
                let path = format!("/api/v1/namespaces/{ns}/pods?{selector}&gracePeriodSeconds=0");
                self.send(Method::DELETE, &path, None, None).await?;
            }
            Ok(())
        })
    }

    /// Deletes the node's pods and stops the instance if this run set started it.
    pub fn finish(self, keep: bool) -> anyhow::Result<()> {
        self.delete_node_pods()?;
        if self.started_here && !keep {
            run_script(&self.script, "stop", &self.instance)?;
        }
        Ok(())
    }

    fn apply_rbac(&self) -> anyhow::Result<()> {
        let rbac = self
            .script
            .parent()
            .and_then(Path::parent)
            .context("script outside a repository")?
            .join("deploy/kubernetes/rbac.yaml");
        let text =
            std::fs::read_to_string(&rbac).with_context(|| format!("read {}", rbac.display()))?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let obj: Value = serde::Deserialize::deserialize(doc)?;
            let name = obj["metadata"]["name"].as_str().context("unnamed object")?;
            let path = match obj["kind"].as_str() {
                Some("ServiceAccount") => {
                    format!("/api/v1/namespaces/kube-system/serviceaccounts/{name}")
                }
                Some("ClusterRole") => {
                    format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
                }
                Some("ClusterRoleBinding") => {
                    format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
                }
                other => bail!("unexpected kind {other:?} in {}", rbac.display()),
            };
            self.rt.block_on(self.apply(&path, &obj))?;
        }
        Ok(())
    }

    /// Server-side apply as admin (idempotent).
    async fn apply(&self, path: &str, obj: &Value) -> anyhow::Result<Value> {
        self.send(
            Method::PATCH,
            &format!("{path}?fieldManager=sluice-bench&force=true"),
            None,
            Some(("application/apply-patch+yaml", obj)),
        )
        .await
    }

    /// One admin request (`body`: content type and object); 429 and 5xx (an API server busy
    /// with thousands of creates) and connection errors are retried a few times with a growing
    /// pause.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<(&str, &Value)>,
    ) -> anyhow::Result<Value> {
        const ATTEMPTS: u32 = 6;
        let url = format!("{}{path}", self.var("KUBE_URL")?);
        let token = self.var("KUBE_ADMIN_TOKEN")?;
        let mut pause = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
            if let Some(accept) = accept {
                req = req.header("accept", accept);
            }
            if let Some((content_type, obj)) = body {
                req = req
                    .header("content-type", content_type)
                    .body(obj.to_string());
            }
            let why = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    return Ok(serde_json::from_slice(&r.bytes().await?)?);
                }
                Ok(r)
                    if attempt < ATTEMPTS
                        && (r.status() == 429 || r.status().is_server_error()) =>
                {
                    r.status().to_string()
                }
                Ok(r) => {
                    let status = r.status();
                    bail!(
                        "{method} {path}: {status} {}",
                        r.text().await.unwrap_or_default()
                    );
                }
                Err(e) if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout()) => e.to_string(),
                Err(e) => return Err(e).with_context(|| format!("{method} {path}")),
            };
            eprintln!("kube: {method} {path}: {why}; retrying in {pause:?}");
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
}

/// Asks a list for object metadata only.
const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

fn run_script(script: &Path, cmd: &str, instance: &str) -> anyhow::Result<String> {
    let out = Command::new(script)
        .args([cmd, "--instance", instance])
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} {cmd} --instance {instance} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A value for [`podspec::MARKER_LABEL`] that no earlier run set used.
pub fn fresh_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("rs-{:x}-{}", nanos & 0xffff_ffff_ffff, std::process::id())
}

/// The API server side of a run set: the instance, the pods made for the tree, and the marker
/// label value they carry.
pub struct RunSet {
    pub api: ApiServer,
    pub marker: String,
    pub setup: Setup,
}

impl RunSet {
    /// Starts the API server and creates the tree's pods: all before any timing.
    pub fn prepare(args: &Args, root: &Path) -> anyhow::Result<RunSet> {
        let started = Instant::now();
        let api = ApiServer::start(&args.kube_script, &args.kube_instance)?;
        let mut containers = tree::containers(root)?;
        let marker = fresh_marker();
        match api.setup(&mut containers, &marker, args.kube_concurrency, started) {
            Ok(setup) => Ok(RunSet { api, marker, setup }),
            Err(e) => {
                // Leave no half-made pod set, nor an API server this run set started.
                if let Err(cleanup) = api.finish(false) {
                    eprintln!("kube: clean-up after a failed set-up: {cleanup:#}");
                }
                Err(e)
            }
        }
    }

    /// What the counting endpoint looks for in the documents it samples.
    pub fn endpoint_marker(&self) -> Marker {
        Marker {
            key: sluice::kubernetes::meta::dedot(podspec::MARKER_LABEL),
            value: self.marker.clone(),
        }
    }
}
