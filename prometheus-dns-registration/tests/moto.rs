//! Integration tests against moto's server mode (Route53, STS, EKS). They need `MOTO_URL`
//! (`scripts/moto start`); without it they fail with a message saying how to start it.

mod common;

use common::*;
use prometheus_dns_registration::config::Config;
use prometheus_dns_registration::route53::{self, NameFilter};
use prometheus_dns_registration::{eks_token, kube, sync};

/// Route53 pages at 300 record sets: a zone with 700+ must be read across three pages.
#[tokio::test]
async fn route53_lists_every_page() {
    let sdk = moto_sdk().await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let zone = create_zone(&r53, "prometheus.internal.").await;
    let mut records: Vec<(String, &str)> = (0..700)
        .map(|i| (format!("c{i:04}.prometheus.internal."), "A"))
        .collect();
    records.extend((0..20).map(|i| (format!("c{i:04}.prometheus.internal."), "AAAA")));
    records.extend((0..5).map(|i| (format!("note{i}.prometheus.internal."), "TXT")));
    records.push(("_acme-challenge.c0001.prometheus.internal.".into(), "CNAME"));
    records.push(("alias.prometheus.internal.".into(), "CNAME"));
    add_records(&r53, &zone, &records).await;

    // One plain call sees only the first page: this is what the Go service did.
    let first = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    assert!(first.is_truncated(), "moto must page this zone");
    assert_eq!(first.resource_record_sets().len(), 300);

    let all = route53::list_records(&r53, &zone).await.unwrap();
    // 727 created + SOA + NS of the apex.
    assert_eq!(
        all.len(),
        records.len() + 2,
        "every record set of every page"
    );
    let none = Default::default();
    let names = route53::select_names(
        &all,
        &NameFilter {
            suffix: ".prometheus.internal.",
            exclude: &none,
        },
    );
    assert_eq!(
        names.len(),
        701,
        "700 clusters + the CNAME alias; no TXT, no _acme-challenge, A+AAAA once"
    );
    assert!(
        names.contains(&"c0699.prometheus.internal.".to_string()),
        "a name from the last page"
    );
    assert!(names.contains(&"alias.prometheus.internal.".to_string()));
}

#[tokio::test]
async fn listing_a_missing_zone_is_a_clear_error() {
    let sdk = moto_sdk().await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let e = route53::list_records(&r53, "ZNOSUCHZONE0")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("ZNOSUCHZONE0"), "{e}");
}

/// Both zones through `sync::desired`, configured the way the Lambda is (environment).
#[tokio::test]
async fn desired_targets_from_both_zones() {
    let sdk = moto_sdk().await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let prom = create_zone(&r53, "prometheus.internal.").await;
    add_records(
        &r53,
        &prom,
        &[
            ("zeta.prometheus.internal.".into(), "A"),
            ("alpha.prometheus.internal.".into(), "A"),
            ("beta.eu.prometheus.internal.".into(), "CNAME"),
        ],
    )
    .await;
    let inst = create_zone(&r53, "installations.example.").await;
    add_records(
        &r53,
        &inst,
        &[
            ("shop.installations.example.".into(), "A"),
            ("www.installations.example.".into(), "A"),
            ("_dmarc.installations.example.".into(), "TXT"),
            (
                "_acme-challenge.shop.installations.example.".into(),
                "CNAME",
            ),
            ("blog.installations.example.".into(), "CNAME"),
        ],
    )
    .await;

    let env = [
        ("PDR_HOSTED_ZONE_ID", prom.as_str()),
        ("PDR_TARGET_PORT", "9090"),
        ("PDR_STATIC_TARGETS", "prometheus.monitoring.svc:9090=C&C"),
        ("PDR_PROBE_HOSTED_ZONE_ID", inst.as_str()),
        ("PDR_PROBE_RECORD_SUFFIX", ".installations.example."),
        ("PDR_PROBE_EXCLUDE", "www.installations.example"),
        ("PDR_PROBE_PATH", "/api/v4/system/ping"),
        (
            "PDR_PROBE_EXPORTER_ADDRESS",
            "blackbox-exporter.monitoring:9115",
        ),
    ];
    let cfg = Config::load(
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let d = sync::desired(&cfg, &r53).await.unwrap();

    let fed: Vec<(String, String)> = d
        .federation
        .iter()
        .map(|s| (s.targets[0].clone(), s.labels["clusterID"].clone()))
        .collect();
    assert_eq!(
        fed,
        vec![
            (
                "prometheus.monitoring.svc:9090".to_string(),
                "C&C".to_string()
            ),
            ("alpha.prometheus.internal:9090".into(), "alpha".into()),
            ("beta.eu.prometheus.internal:9090".into(), "beta".into()),
            ("zeta.prometheus.internal:9090".into(), "zeta".into()),
        ]
    );
    let probes: Vec<String> = d
        .probes
        .unwrap()
        .iter()
        .map(|s| s.targets[0].clone())
        .collect();
    assert_eq!(
        probes,
        vec![
            "https://blog.installations.example/api/v4/system/ping".to_string(),
            "https://shop.installations.example/api/v4/system/ping".to_string(),
        ]
    );
}

/// `eks:DescribeCluster` on a cluster created in moto. moto's CA data is random base64, not a
/// certificate, so building a client from it must fail with a clear error (never trust it).
#[tokio::test]
async fn eks_describe_cluster() {
    let sdk = moto_sdk().await;
    let eks = aws_sdk_eks::Client::new(&sdk);
    let name = unique("cnc-");
    eks.create_cluster()
        .name(&name)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("eks:CreateCluster on moto");

    let access = eks_token::describe_cluster(&eks, &name).await.unwrap();
    assert!(
        access.endpoint.starts_with("https://"),
        "{}",
        access.endpoint
    );
    assert!(!access.ca_pem.is_empty());
    let e = kube::config_from_cluster_access(&access, "token".into()).unwrap_err();
    assert!(
        e.to_string().contains("not a PEM certificate bundle"),
        "{e}"
    );

    let missing = eks_token::describe_cluster(&eks, "no-such-cluster")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("eks:DescribeCluster no-such-cluster"),
        "{missing}"
    );
}

/// The token's presigned URL, replayed against moto's STS the way the EKS authenticator
/// replays it against STS. moto routes requests by their Authorization header only, so the
/// replay carries the presigned query's credential scope and signature in that header.
#[tokio::test]
async fn eks_token_replays_against_sts() {
    let url = moto_url();
    let sdk = moto_sdk().await;
    let sts_base = url::Url::parse(&format!("{url}/")).unwrap();
    let token = eks_token::token(&sdk, "cnc", Some(&sts_base))
        .await
        .unwrap();

    let encoded = token.strip_prefix("k8s-aws-v1.").expect("token prefix");
    use base64::Engine;
    let presigned = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let parsed = url::Url::parse(&presigned).unwrap();
    let q = |k: &str| {
        parsed
            .query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(q("X-Amz-Expires"), "60");
    assert_eq!(q("X-Amz-SignedHeaders"), "host;x-k8s-aws-id");
    assert!(
        q("X-Amz-Credential").starts_with("testing/")
            && q("X-Amz-Credential").ends_with("/us-east-1/sts/aws4_request")
    );

    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={}",
        q("X-Amz-Credential"),
        q("X-Amz-SignedHeaders"),
        q("X-Amz-Signature")
    );
    let response = reqwest::Client::new()
        .get(&presigned)
        .header("x-k8s-aws-id", "cnc")
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.text().await.unwrap();
    assert!(
        body.contains("<GetCallerIdentityResult>") && body.contains("<Arn>arn:aws:"),
        "{body}"
    );

    // And the SDK's own GetCallerIdentity, used to log the ARN the access entry must map.
    let arn = eks_token::caller_arn(&aws_sdk_sts::Client::new(&sdk))
        .await
        .unwrap();
    assert!(arn.starts_with("arn:aws:"), "{arn}");
}
