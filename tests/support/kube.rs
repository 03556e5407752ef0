//! A real kube-apiserver for the Kubernetes metadata tests: started (idempotently) through
//! `scripts/kube-apiserver --instance NAME`, the RBAC of `deploy/kubernetes/rbac.yaml` applied as
//! admin, pods and namespaces created over the REST API, and a `PodLog` placed at the created
//! pod's real uid. The agent itself runs with the `sluice` service account's token only.
//! Included with `#[path]` by the tests that need it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Node, PodLog};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kube-apiserver")
}

/// Runs `scripts/kube-apiserver <cmd> --instance <instance>`; panics with its output on failure
/// (a test needing the API server it cannot start fails loudly).
pub fn run_script(cmd: &str, instance: &str, extra_env: &[(&str, &str)]) -> String {
    let out = Command::new(script())
        .args([cmd, "--instance", instance])
        .envs(extra_env.iter().copied())
        .output()
        .expect("run scripts/kube-apiserver");
    assert!(
        out.status.success(),
        "scripts/kube-apiserver {cmd} --instance {instance} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Kube {
    pub instance: String,
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
    http: reqwest::blocking::Client,
}

impl Kube {
    /// Starts (or reuses) the instance and applies the agent's RBAC as admin.
    pub fn start(instance: &str) -> Kube {
        Kube::start_with(instance, &[])
    }

    pub fn start_with(instance: &str, extra_env: &[(&str, &str)]) -> Kube {
        let out = run_script("start", instance, extra_env);
        let dir = PathBuf::from(out.lines().last().expect("instance dir").trim());
        let env = std::fs::read_to_string(dir.join("env"))
            .expect("instance env file")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>();
        let ca = std::fs::read(&env["KUBE_CA_FILE"]).expect("CA file");
        let http = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        let k = Kube {
            instance: instance.to_string(),
            dir,
            env,
            http,
        };
        k.apply_rbac();
        k
    }

    pub fn url(&self) -> &str {
        &self.env["KUBE_URL"]
    }

    /// The agent's token, as a file (the config's `token_file`).
    pub fn sluice_token_file(&self) -> PathBuf {
        let p = self.dir.join("sluice.token");
        std::fs::write(&p, &self.env["KUBE_SLUICE_TOKEN"]).unwrap();
        p
    }

    /// The `kubernetes:` config section for the agent: URL + the sluice token + CA.
    pub fn agent_config(&self, extra: &str) -> String {
        self.agent_config_via(self.url(), extra)
    }

    /// Like [`Kube::agent_config`], reaching the API server through `url` (a relay).
    pub fn agent_config_via(&self, url: &str, extra: &str) -> String {
        format!(
            "kubernetes:\n  enabled: on\n  url: {url}\n  token_file: {}\n  ca_file: {}\n{extra}",
            self.sluice_token_file().display(),
            self.env["KUBE_CA_FILE"],
        )
    }

    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url()))
            .bearer_auth(&self.env["KUBE_ADMIN_TOKEN"])
    }

    /// Server-side apply as admin (idempotent).
    pub fn apply(&self, path: &str, obj: &Value) -> Value {
        let r = self
            .admin(
                reqwest::Method::PATCH,
                &format!("{path}?fieldManager=sluice-tests&force=true"),
            )
            .header("Content-Type", "application/apply-patch+yaml")
            .body(obj.to_string())
            .send()
            .expect("apply request");
        let status = r.status();
        let body: Value = r
            .bytes()
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        assert!(status.is_success(), "apply {path}: {status} {body}");
        body
    }

    fn apply_rbac(&self) {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/rbac.yaml"),
        )
        .unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let obj: Value = serde::Deserialize::deserialize(doc).unwrap();
            let name = obj["metadata"]["name"].as_str().unwrap();
            let path = match obj["kind"].as_str().unwrap() {
                "ServiceAccount" => {
                    format!("/api/v1/namespaces/kube-system/serviceaccounts/{name}")
                }
                "ClusterRole" => format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"),
                "ClusterRoleBinding" => {
                    format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
                }
                other => panic!("unexpected kind {other} in rbac.yaml"),
            };
            self.apply(&path, &obj);
        }
    }

    pub fn namespace(&self, name: &str, labels: Value) {
        self.apply(
            &format!("/api/v1/namespaces/{name}"),
            &json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels}}),
        );
    }

    /// Creates (applies) a pod bound to `node` (unscheduled when empty); returns its uid. `metadata` is merged into the
    /// pod's metadata (labels, annotations, ownerReferences).
    pub fn pod(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
        containers: &[&str],
        metadata: Value,
    ) -> String {
        let mut md = json!({"name": name, "namespace": namespace});
        if let Value::Object(m) = metadata {
            for (k, v) in m {
                md[k] = v;
            }
        }
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": format!("registry.example/{c}:1.0")}))
            .collect();
        let mut spec = json!({"containers": containers});
        if !node.is_empty() {
            spec["nodeName"] = json!(node);
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec});
        let created = self.apply(&format!("/api/v1/namespaces/{namespace}/pods/{name}"), &pod);
        created["metadata"]["uid"]
            .as_str()
            .expect("created pod has a uid")
            .to_string()
    }

    /// Deletes a test namespace's pods (best effort), so the shared instance does not
    /// accumulate pods bound to the test node across runs. The namespace itself stays
    /// Terminating forever without a namespace controller, so it is left alone.
    pub fn delete_pods(&self, namespace: &str) {
        let _ = self
            .admin(
                reqwest::Method::DELETE,
                &format!("/api/v1/namespaces/{namespace}/pods?gracePeriodSeconds=0"),
            )
            .send();
    }

    /// How many pods the API server has bound to `node` (all namespaces), as admin.
    pub fn pods_on_node(&self, node: &str) -> usize {
        let r = self
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}"),
            )
            .send()
            .expect("list pods");
        assert!(r.status().is_success(), "list pods: {}", r.status());
        let list: Value = serde_json::from_slice(&r.bytes().expect("pod list")).expect("JSON");
        list["items"].as_array().expect("items").len()
    }

    /// Binds an unscheduled pod to a node (what the scheduler does).
    pub fn bind(&self, namespace: &str, name: &str, node: &str) {
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        let r = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/v1/namespaces/{namespace}/pods/{name}/binding"),
            )
            .header("Content-Type", "application/json")
            .body(binding.to_string())
            .send()
            .expect("binding request");
        assert!(r.status().is_success(), "bind pod: {}", r.status());
    }

    /// Deletes a pod at once (no kubelet would confirm a graceful delete).
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let r = self
            .admin(
                reqwest::Method::DELETE,
                &format!("/api/v1/namespaces/{namespace}/pods/{name}?gracePeriodSeconds=0"),
            )
            .send()
            .expect("delete request");
        assert!(r.status().is_success(), "delete pod: {}", r.status());
    }

    pub fn script(&self, cmd: &str) {
        run_script(cmd, &self.instance, &[]);
    }
}

/// A container log file at the kubelet's layout for a pod that exists in the API server: the
/// real file under `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` and its
/// `/var/log/containers` symlink.
pub fn add_pod_log(node: &Node, namespace: &str, pod: &str, uid: &str, container: &str) -> PodLog {
    let dir = node
        .root()
        .join(format!("var/log/pods/{namespace}_{pod}_{uid}/{container}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("0.log");
    std::fs::write(&path, b"").unwrap();
    let hex: String = uid.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let container_id = format!("{:0>64}", format!("{hex}{:x}", container.len()));
    let container_id = container_id[container_id.len() - 64..].to_string();
    let links = node.root().join("var/log/containers");
    std::fs::create_dir_all(&links).unwrap();
    let link = links.join(format!("{pod}_{namespace}_{container}-{container_id}.log"));
    std::os::unix::fs::symlink(&path, &link).unwrap();
    PodLog {
        namespace: namespace.into(),
        pod: pod.into(),
        uid: uid.into(),
        container: container.into(),
        container_id,
        path,
        link,
        docker: false,
    }
}

/// A TCP relay in front of the API server that accepts connections but forwards nothing until
/// [`Gate::release`]: the agent's TLS handshake and first list wait, the way they do on a slow
/// API server (a call that neither answers nor fails). Bytes pass untouched, so TLS still
/// verifies against the API server's certificate (issued for 127.0.0.1).
pub struct Gate {
    pub url: String,
    open: Arc<(Mutex<bool>, Condvar)>,
    accepted: Arc<AtomicUsize>,
}

impl Gate {
    /// Starts closed, relaying to the `https://host:port` of `upstream`.
    pub fn closed(upstream: &str) -> Gate {
        let upstream = upstream
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (gate, count) = (open.clone(), accepted.clone());
        // Accepts for the test's lifetime (the test process ends it); relays end with their
        // connections.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (gate, upstream) = (gate.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let (lock, cv) = &*gate;
                    drop(cv.wait_while(lock.lock().unwrap(), |open| !*open).unwrap());
                    if let Ok(server) = TcpStream::connect(&upstream) {
                        relay(client, server);
                    }
                });
            }
        });
        Gate {
            url,
            open,
            accepted,
        }
    }

    /// Connections accepted so far (held until release, relayed after).
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Relays every held connection, and all later ones, to the API server.
    pub fn release(&self) {
        let (lock, cv) = &*self.open;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // A failing test must not leave relay threads waiting forever.
        self.release();
    }
}

/// Copies bytes both ways until each side has finished sending.
fn relay(client: TcpStream, server: TcpStream) {
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut c_out, mut s_in) = (client, server);
    let _ = std::io::copy(&mut s_in, &mut c_out);
    let _ = c_out.shutdown(Shutdown::Write);
    let _ = up.join();
}
