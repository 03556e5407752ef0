//! Helpers shared by the integration tests: where moto and the kube-apiserver are, and SDK /
//! client set-up. A test that needs one of them and cannot find it panics with a message
//! saying how to start it; it never passes silently.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

pub const HOW_TO_RUN: &str = "run prometheus-dns-registration/scripts/test, or start the servers yourself: \
     `scripts/moto start` (then `set -a; . <dir>/env; set +a`, which sets MOTO_URL) and \
     `scripts/kube-apiserver start` (then export KUBE_ENV_FILE=<dir>/env)";

/// moto's URL from `MOTO_URL`; panics with instructions when it is missing or does not answer.
pub fn moto_url() -> String {
    install_crypto_provider();
    let url = std::env::var("MOTO_URL").unwrap_or_else(|_| {
        panic!("MOTO_URL is not set: this test needs moto's server mode; {HOW_TO_RUN}")
    });
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let sock: std::net::SocketAddr = addr
        .parse()
        .unwrap_or_else(|_| panic!("MOTO_URL={url} is not http://IP:PORT"));
    std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("moto at MOTO_URL={url} does not answer ({e}); {HOW_TO_RUN}"));
    url
}

pub fn test_credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "moto-test")
}

/// An SDK configuration pointing every service at moto, with dummy credentials.
pub async fn moto_sdk() -> SdkConfig {
    let url = moto_url();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(test_credentials())
        .load()
        .await
}

/// A name unique within this test process and across runs against the same server.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a private hosted zone and returns its bare id.
pub async fn create_zone(r53: &aws_sdk_route53::Client, name: &str) -> String {
    use aws_sdk_route53::types::{HostedZoneConfig, Vpc, VpcRegion};
    let out = r53
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique("ref-"))
        .hosted_zone_config(
            HostedZoneConfig::builder()
                .private_zone(true)
                .comment("test")
                .build(),
        )
        .vpc(
            Vpc::builder()
                .vpc_id("vpc-12345678")
                .vpc_region(VpcRegion::UsEast1)
                .build(),
        )
        .send()
        .await
        .expect("route53:CreateHostedZone on moto");
    let id = out.hosted_zone().expect("zone in answer").id();
    id.trim_start_matches("/hostedzone/").to_string()
}

/// UPSERTs records (name, type) in batches of at most 500 changes.
pub async fn add_records(r53: &aws_sdk_route53::Client, zone_id: &str, records: &[(String, &str)]) {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    for chunk in records.chunks(500) {
        let changes = chunk
            .iter()
            .map(|(name, rtype)| {
                let (rtype, value) = match *rtype {
                    "A" => (RrType::A, "10.0.0.1".to_string()),
                    "AAAA" => (RrType::Aaaa, "fd00::1".to_string()),
                    "CNAME" => (RrType::Cname, "elsewhere.example.".to_string()),
                    "TXT" => (RrType::Txt, "\"hello\"".to_string()),
                    other => panic!("unsupported type {other}"),
                };
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(
                        ResourceRecordSet::builder()
                            .name(name)
                            .r#type(rtype)
                            .ttl(60)
                            .resource_records(
                                ResourceRecord::builder().value(value).build().unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        r53.change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(changes))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("route53:ChangeResourceRecordSets on moto");
    }
}

/// The kube-apiserver instance's env file, parsed.
pub struct KubeEnv {
    pub url: String,
    pub ca_file: PathBuf,
    pub admin_token: String,
    pub dns_token: String,
    pub admin_kubeconfig: PathBuf,
    pub dns_kubeconfig: PathBuf,
}

pub fn kube_env() -> KubeEnv {
    let path = std::env::var("KUBE_ENV_FILE").unwrap_or_else(|_| {
        panic!("KUBE_ENV_FILE is not set: this test needs a real kube-apiserver; {HOW_TO_RUN}")
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read KUBE_ENV_FILE={path}: {e}; {HOW_TO_RUN}"));
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{path} has no {k}"))
    };
    let dir = PathBuf::from(&path)
        .parent()
        .expect("env file has a directory")
        .to_path_buf();
    KubeEnv {
        url: get("KUBE_URL"),
        ca_file: PathBuf::from(get("KUBE_CA_FILE")),
        admin_token: get("KUBE_ADMIN_TOKEN"),
        dns_token: get("KUBE_DNS_TOKEN"),
        admin_kubeconfig: dir.join("admin.kubeconfig"),
        dns_kubeconfig: dir.join("dns-registration.kubeconfig"),
    }
}

pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
