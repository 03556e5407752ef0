//! Integration tests against a real kube-apiserver (`scripts/kube-apiserver start`; the env
//! file's path in `KUBE_ENV_FILE`). The sync runs as the user `prometheus-dns-registration`,
//! whose only rights are the narrow Role the Terraform module creates: get + update on one
//! ConfigMap (tests/fixtures/role-rules.json, checked against main.tf by the module's check
//! script). The end-to-end tests also need moto (`MOTO_URL`).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use prometheus_dns_registration::config::{Config, KubeAccess, StaticTarget};
use prometheus_dns_registration::eks_token::ClusterAccess;
use prometheus_dns_registration::kube::{
    self as pkube, ApiStore, ConfigMapStore, KubeError, Snapshot, WriteOutcome,
};
use prometheus_dns_registration::prometheus_config as pc;
use prometheus_dns_registration::sync::{self, Desired};
use prometheus_dns_registration::targets;
use serde_norway::Value;

const GROUP: &str = "prometheus-dns-registration";
const CM: &str = "prometheus";
const RICH: &str = include_str!("fixtures/prometheus.yml");
const ALERTS: &str = "groups:\n- name: a\n  rules: []\n";

struct Cluster {
    env: KubeEnv,
    admin: kube::Client,
    ns: String,
}

impl Cluster {
    fn admin_cms(&self) -> Api<ConfigMap> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    async fn configmap(&self) -> ConfigMap {
        self.admin_cms()
            .get(CM)
            .await
            .expect("admin reads the ConfigMap")
    }

    /// Configuration for the DNS user's kubeconfig, on this test's namespace.
    fn config(&self, extra: &[(&str, &str)]) -> Config {
        let kubeconfig = self.env.dns_kubeconfig.display().to_string();
        let mut env = vec![
            ("PDR_HOSTED_ZONE_ID".to_string(), "ZUNUSED".to_string()),
            ("PDR_CONFIGMAP_NAMESPACE".to_string(), self.ns.clone()),
            ("PDR_CONFIGMAP_NAME".to_string(), CM.to_string()),
            ("PDR_KUBECONFIG".to_string(), kubeconfig),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::load(None, env).expect("valid test configuration")
    }
}

/// As admin: a fresh namespace, the ConfigMap with a rich prometheus.yml, and the narrow
/// Role + RoleBinding for the DNS user's group.
async fn setup() -> Cluster {
    install_crypto_provider();
    let env = kube_env();
    let admin = pkube::client(
        &KubeAccess::Kubeconfig {
            path: env.admin_kubeconfig.clone(),
            context: None,
        },
        None,
    )
    .await
    .expect("admin client");
    let ns = unique("pdr-");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("creating namespace {ns} at {}: {e}", env.url));

    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": CM, "labels": {"app": "prometheus"}, "annotations": {"owner": "monitoring-team"}},
        "data": {"prometheus.yml": RICH, "alerts.yml": ALERTS},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create ConfigMap");

    let rules = include_str!("fixtures/role-rules.json").replace("${configmap_name}", CM);
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": GROUP}, "rules": rules,
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("create Role");
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": GROUP},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": GROUP},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");
    Cluster { env, admin, ns }
}

fn desired(names: &[&str]) -> Desired {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let fixed = [StaticTarget {
        target: "prometheus.monitoring.svc:9090".into(),
        cluster_id: "C&C".into(),
    }];
    Desired {
        federation: targets::federation_static_configs(&fixed, &names, Some(9090)),
        probes: None,
    }
}

fn job<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["job_name"].as_str() == Some(name))
        .unwrap()
}

/// The document less the federation job's static_configs.
fn without_targets(text: &str) -> Value {
    let mut doc = pc::parse(text).unwrap();
    for j in doc["scrape_configs"].as_sequence_mut().unwrap() {
        if j["job_name"].as_str() == Some("federate") {
            j.as_mapping_mut().unwrap().remove("static_configs");
        }
    }
    doc
}

async fn dns_store(cfg: &Config) -> ApiStore {
    let client = pkube::client(&cfg.kube, None)
        .await
        .expect("client from the DNS user's kubeconfig");
    ApiStore::new(client, cfg.configmap.clone())
}

#[tokio::test]
async fn sync_replaces_only_the_targets_and_second_run_writes_nothing() {
    let c = setup().await;
    let cfg = c.config(&[]);
    let store = dns_store(&cfg).await;
    let before = c.configmap().await;
    let wanted = desired(&["a.prometheus.internal.", "b.eu.prometheus.internal."]);

    let out = sync::apply(&cfg, &store, &wanted, false)
        .await
        .expect("sync as the DNS user");
    assert!(out.changed && out.written, "{out:?}");
    assert_eq!(out.attempts, 1);

    let after = c.configmap().await;
    let data = after.data.clone().unwrap();
    let doc = pc::parse(&data["prometheus.yml"]).unwrap();
    assert_eq!(
        job(&doc, "federate")["static_configs"],
        targets::to_yaml(&wanted.federation)
    );
    let labels: Vec<_> = job(&doc, "federate")["static_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["labels"]["clusterID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(labels, ["C&C", "a", "b"]);
    // Everything else is as it was: other jobs, global, rule_files, unknown fields, the other
    // key, labels and annotations.
    assert_eq!(
        without_targets(&data["prometheus.yml"]),
        without_targets(RICH)
    );
    assert_eq!(
        job(&doc, "federate")["a_field_prometheus_added_later"]["keep"].as_str(),
        Some("me")
    );
    assert_eq!(data["alerts.yml"], ALERTS);
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // Second run: nothing to do, nothing written.
    let again = sync::apply(&cfg, &store, &wanted, false).await.unwrap();
    assert!(!again.changed && !again.written, "{again:?}");
    assert_eq!(
        c.configmap().await.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test]
async fn the_dns_user_may_touch_only_its_configmap() {
    let c = setup().await;
    let other: ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "other"}, "data": {"k": "v"}}),
    )
    .unwrap();
    c.admin_cms()
        .create(&PostParams::default(), &other)
        .await
        .unwrap();

    let cfg = c.config(&[("PDR_CONFIGMAP_NAME", "other")]);
    let store = dns_store(&cfg).await;
    let e = store.read().await.unwrap_err();
    assert!(matches!(e, KubeError::Forbidden { verb: "get", .. }), "{e}");
    assert!(e.to_string().contains("needs get and update"), "{e}");

    let client = pkube::client(&cfg.kube, None).await.unwrap();
    let list = Api::<ConfigMap>::namespaced(client, &c.ns)
        .list(&ListParams::default())
        .await;
    assert!(list.is_err(), "the DNS user must not list ConfigMaps");

    // A missing key is a clear error, not an empty document.
    let cfg = c.config(&[("PDR_CONFIGMAP_KEY", "prometheus.yaml")]);
    let e = dns_store(&cfg).await.read().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("has no key \"prometheus.yaml\" in data (keys: alerts.yml, prometheus.yml)"),
        "{e}"
    );
}

/// Changes the ConfigMap as admin between the sync's read and its write, once.
struct Interfering {
    inner: ApiStore,
    admin: Api<ConfigMap>,
    armed: AtomicBool,
}

impl ConfigMapStore for Interfering {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn read(&self) -> Result<Snapshot, KubeError> {
        self.inner.read().await
    }
    async fn write(&self, snapshot: &Snapshot, text: String) -> Result<WriteOutcome, KubeError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let mut cm = self.admin.get(CM).await.unwrap();
            let data = cm.data.get_or_insert_with(BTreeMap::new);
            let edited =
                data["prometheus.yml"].replace("scrape_interval: 30s", "scrape_interval: 45s");
            assert_ne!(edited, data["prometheus.yml"]);
            data.insert("prometheus.yml".into(), edited);
            self.admin
                .replace(CM, &PostParams::default(), &cm)
                .await
                .expect("admin's concurrent change");
        }
        self.inner.write(snapshot, text).await
    }
}

#[tokio::test]
async fn a_conflict_between_read_and_write_is_retried() {
    let c = setup().await;
    let cfg = c.config(&[]);
    let store = Interfering {
        inner: dns_store(&cfg).await,
        admin: c.admin_cms(),
        armed: AtomicBool::new(true),
    };
    let wanted = desired(&["c.prometheus.internal."]);

    let out = sync::apply(&cfg, &store, &wanted, false)
        .await
        .expect("sync despite a conflict");
    assert!(out.written);
    assert_eq!(
        out.attempts, 2,
        "first write conflicts, the second (after a fresh read) succeeds"
    );

    let doc = pc::parse(&c.configmap().await.data.unwrap()["prometheus.yml"]).unwrap();
    assert_eq!(
        doc["global"]["scrape_interval"].as_str(),
        Some("45s"),
        "the concurrent change is kept"
    );
    assert_eq!(
        job(&doc, "federate")["static_configs"],
        targets::to_yaml(&wanted.federation)
    );
}

/// The EKS way of building a client (endpoint + CA bundle + bearer token), against the real
/// API server's TLS.
#[tokio::test]
async fn endpoint_ca_and_bearer_token_reach_the_api_server() {
    let c = setup().await;
    let access = ClusterAccess {
        endpoint: c.env.url.clone(),
        ca_pem: std::fs::read(&c.env.ca_file).unwrap(),
    };
    let config = pkube::config_from_cluster_access(&access, c.env.dns_token.clone()).unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let store = ApiStore::new(client, c.config(&[]).configmap);
    let snapshot = store
        .read()
        .await
        .expect("DNS user reads its ConfigMap over TLS with the token");
    assert_eq!(snapshot.text, RICH);

    // A valid CA that did not sign the server's certificate must be refused.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.crt");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other-ca",
        ])
        .arg("-keyout")
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (to make a second CA)");
    assert!(status.success());
    let wrong = ClusterAccess {
        endpoint: c.env.url.clone(),
        ca_pem: std::fs::read(&other_ca).unwrap(),
    };
    let config = pkube::config_from_cluster_access(&wrong, c.env.dns_token.clone()).unwrap();
    let store = ApiStore::new(
        kube::Client::try_from(config).unwrap(),
        c.config(&[]).configmap,
    );
    let e = store.read().await.unwrap_err();
    assert!(
        format!("{e:?}").to_lowercase().contains("certificate"),
        "{e:?}"
    );
}

/// The whole path: Route53 in moto → the binary's `sync --once --dry-run`, then a real run,
/// then a run that finds nothing to do.
#[tokio::test]
async fn cli_dry_run_then_sync_against_moto_and_the_api_server() {
    let moto = moto_url();
    let c = setup().await;
    let sdk = moto_sdk().await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let zone = create_zone(&r53, "prometheus.internal.").await;
    add_records(
        &r53,
        &zone,
        &[
            ("alpha.prometheus.internal.".into(), "A"),
            ("beta.prometheus.internal.".into(), "A"),
            ("gamma.prometheus.internal.".into(), "CNAME"),
            ("_acme-challenge.alpha.prometheus.internal.".into(), "TXT"),
        ],
    )
    .await;

    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_prometheus-dns-registration"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("AWS_ENDPOINT_URL", &moto)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("PDR_HOSTED_ZONE_ID", &zone)
            .env("PDR_TARGET_PORT", "9090")
            .env("PDR_STATIC_TARGETS", "prometheus.monitoring.svc:9090=C&C")
            .env("PDR_CONFIGMAP_NAMESPACE", &c.ns)
            .env("PDR_CONFIGMAP_NAME", CM)
            .env("PDR_KUBECONFIG", &c.env.dns_kubeconfig)
            .output()
            .expect("run the binary");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "{args:?} failed: {stderr}\n{stdout}"
        );
        stdout
    };

    let rv = c.configmap().await.metadata.resource_version;
    let dry = run(&["sync", "--once", "--dry-run"]);
    println!("--- sync --once --dry-run ---\n{dry}");
    assert!(
        dry.contains(&format!(
            "dry run: ConfigMap {}/{CM} would change (4 federation targets)",
            c.ns
        )),
        "{dry}"
    );
    assert!(
        dry.contains("-    - gone.prometheus.internal:9090"),
        "{dry}"
    );
    assert!(
        dry.contains("+    - alpha.prometheus.internal:9090"),
        "{dry}"
    );
    assert!(dry.contains("+      clusterID: C&C"), "{dry}");
    assert_eq!(
        c.configmap().await.metadata.resource_version,
        rv,
        "a dry run writes nothing"
    );

    let real = run(&["sync", "--once"]);
    assert!(real.contains("updated ConfigMap"), "{real}");
    let doc = pc::parse(&c.configmap().await.data.unwrap()["prometheus.yml"]).unwrap();
    let got: Vec<_> = job(&doc, "federate")["static_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["targets"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "prometheus.monitoring.svc:9090",
            "alpha.prometheus.internal:9090",
            "beta.prometheus.internal:9090",
            "gamma.prometheus.internal:9090"
        ]
    );

    let again = run(&["sync", "--once"]);
    assert!(again.contains("is up to date"), "{again}");
}

/// The Lambda handler with a CloudTrail event, end to end.
#[tokio::test]
async fn lambda_handler_resyncs_on_a_cloudtrail_event() {
    let _ = moto_url();
    let c = setup().await;
    let sdk = moto_sdk().await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let zone = create_zone(&r53, "prometheus.internal.").await;
    add_records(&r53, &zone, &[("delta.prometheus.internal.".into(), "A")]).await;
    let mut cfg = c.config(&[]);
    cfg.targets.hosted_zone_id = zone.clone();

    let event = serde_json::json!({
        "version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.route53",
        "account": "123456789012", "time": "2026-11-24T16:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"eventName": "ChangeResourceRecordSets", "requestParameters": {"hostedZoneId": zone}}
    });
    let event = lambda_runtime::LambdaEvent::new(
        serde_json::from_value(event).unwrap(),
        Default::default(),
    );
    let out = prometheus_dns_registration::lambda::handle(&cfg, &sdk, event)
        .await
        .expect("handler");
    assert!(out.written && out.federation_targets == 1, "{out:?}");
    let doc = pc::parse(&c.configmap().await.data.unwrap()["prometheus.yml"]).unwrap();
    assert_eq!(
        job(&doc, "federate")["static_configs"][0]["targets"][0].as_str(),
        Some("delta.prometheus.internal")
    );
}
