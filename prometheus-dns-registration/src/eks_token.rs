//! EKS access without `aws eks get-token` or an exec plugin: `eks:DescribeCluster` for the
//! endpoint and CA, and a bearer token in the aws-iam-authenticator format.
//!
//! The token is `k8s-aws-v1.` + base64url (no padding) of a presigned STS
//! `GetCallerIdentity` URL that signs the header `x-k8s-aws-id: <cluster name>` and expires in
//! 60 s. The EKS API server replays that URL against STS to learn who is calling; it never
//! sees our keys. This module must not talk to Kubernetes.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use url::Url;

/// Prefix of an aws-iam-authenticator token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// Header that binds the token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid (aws-iam-authenticator uses 60 s; EKS rejects more
/// than 15 minutes).
pub const PRESIGN_EXPIRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EksError {
    #[error("no AWS region configured (set AWS_REGION)")]
    NoRegion,
    #[error("no AWS credentials provider configured")]
    NoCredentialsProvider,
    #[error("cannot load AWS credentials: {0}")]
    Credentials(String),
    #[error("cannot presign the STS GetCallerIdentity request: {0}")]
    Sign(String),
    #[error("eks:DescribeCluster {cluster}: {message}")]
    Describe { cluster: String, message: String },
    #[error(
        "eks:DescribeCluster {cluster}: the answer has no {what} (is the cluster still being created?)"
    )]
    Incomplete { cluster: String, what: &'static str },
    #[error("eks:DescribeCluster {cluster}: certificateAuthority.data is not base64: {source}")]
    BadCa {
        cluster: String,
        source: base64::DecodeError,
    },
}

/// The regional STS endpoint the token is presigned for.
pub fn sts_base_url(region: &str) -> Url {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    // The format string always yields a valid absolute URL for a region name.
    Url::parse(&format!("https://sts.{region}.{domain}/"))
        .unwrap_or_else(|_| Url::parse("https://sts.amazonaws.com/").expect("static URL"))
}

/// Presigns `GET <sts>?Action=GetCallerIdentity&Version=2011-06-15` with the cluster header
/// signed and a 60 s expiry.
pub fn presign_get_caller_identity(
    credentials: &Credentials,
    region: &str,
    cluster_name: &str,
    sts: &Url,
    now: SystemTime,
) -> Result<String, EksError> {
    let mut url = sts.clone();
    url.query_pairs_mut()
        .clear()
        .append_pair("Action", "GetCallerIdentity")
        .append_pair("Version", "2011-06-15");

    let identity: Identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRY);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| EksError::Sign(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        [(CLUSTER_ID_HEADER, cluster_name)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| EksError::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| EksError::Sign(e.to_string()))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .body(())
        .map_err(|e| EksError::Sign(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// `k8s-aws-v1.` + base64url without padding of the presigned URL.
pub fn token_from_presigned_url(url: &str) -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

/// A fresh bearer token for `cluster_name`, signed with the SDK's credentials.
pub async fn token(
    sdk: &aws_config::SdkConfig,
    cluster_name: &str,
    sts: Option<&Url>,
) -> Result<String, EksError> {
    let region = sdk.region().ok_or(EksError::NoRegion)?.to_string();
    let provider = sdk
        .credentials_provider()
        .ok_or(EksError::NoCredentialsProvider)?;
    let credentials = provider.provide_credentials().await.map_err(|e| {
        EksError::Credentials(aws_sdk_eks::error::DisplayErrorContext(&e).to_string())
    })?;
    let sts = sts.cloned().unwrap_or_else(|| sts_base_url(&region));
    let url =
        presign_get_caller_identity(&credentials, &region, cluster_name, &sts, SystemTime::now())?;
    Ok(token_from_presigned_url(&url))
}

/// `sts:GetCallerIdentity` (needs no permission): the ARN the EKS access entry must map.
pub async fn caller_arn(sts: &aws_sdk_sts::Client) -> Result<String, EksError> {
    let out = sts.get_caller_identity().send().await.map_err(|e| {
        EksError::Credentials(aws_sdk_sts::error::DisplayErrorContext(&e).to_string())
    })?;
    Ok(out.arn().unwrap_or("-").to_string())
}

/// What the Kubernetes client needs from `eks:DescribeCluster`.
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    /// `https://…eks.amazonaws.com`
    pub endpoint: String,
    /// The cluster CA bundle, PEM (decoded from `certificateAuthority.data`).
    pub ca_pem: Vec<u8>,
}

/// `eks:DescribeCluster`: the API endpoint and CA of `cluster_name`.
pub async fn describe_cluster(
    client: &aws_sdk_eks::Client,
    cluster_name: &str,
) -> Result<ClusterAccess, EksError> {
    let out = client
        .describe_cluster()
        .name(cluster_name)
        .send()
        .await
        .map_err(|e| EksError::Describe {
            cluster: cluster_name.to_string(),
            message: aws_sdk_eks::error::DisplayErrorContext(&e).to_string(),
        })?;
    let incomplete = |what| EksError::Incomplete {
        cluster: cluster_name.to_string(),
        what,
    };
    let cluster = out.cluster().ok_or_else(|| incomplete("cluster"))?;
    let endpoint = cluster
        .endpoint()
        .ok_or_else(|| incomplete("endpoint"))?
        .to_string();
    let ca = cluster
        .certificate_authority()
        .and_then(|c| c.data())
        .ok_or_else(|| incomplete("certificateAuthority.data"))?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca.trim())
        .map_err(|source| EksError::BadCa {
            cluster: cluster_name.to_string(),
            source,
        })?;
    Ok(ClusterAccess { endpoint, ca_pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(String::from),
            None,
            "test",
        )
    }

    fn query(url: &str) -> Vec<(String, String)> {
        Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
        q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn presigned_url_has_what_eks_checks() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let url = presign_get_caller_identity(
            &creds(Some("SESSION")),
            "eu-west-1",
            "cnc",
            &sts_base_url("eu-west-1"),
            now,
        )
        .unwrap();
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        let q = query(&url);
        assert_eq!(param(&q, "Action"), Some("GetCallerIdentity"));
        assert_eq!(param(&q, "Version"), Some("2011-06-15"));
        assert_eq!(param(&q, "X-Amz-Algorithm"), Some("AWS4-HMAC-SHA256"));
        assert_eq!(param(&q, "X-Amz-Expires"), Some("60"));
        assert_eq!(param(&q, "X-Amz-Date"), Some("20231114T221320Z"));
        assert_eq!(param(&q, "X-Amz-SignedHeaders"), Some("host;x-k8s-aws-id"));
        assert_eq!(
            param(&q, "X-Amz-Credential"),
            Some("AKIDEXAMPLE/20231114/eu-west-1/sts/aws4_request")
        );
        assert_eq!(param(&q, "X-Amz-Security-Token"), Some("SESSION"));
        assert_eq!(param(&q, "X-Amz-Signature").map(str::len), Some(64));
    }

    #[test]
    fn token_is_base64url_without_padding() {
        let url = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60";
        let token = token_from_presigned_url(url);
        let body = token.strip_prefix("k8s-aws-v1.").unwrap();
        assert!(!body.contains('=') && !body.contains('+') && !body.contains('/'));
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap();
        assert_eq!(decoded, url.as_bytes());
    }

    #[test]
    fn signature_depends_on_the_cluster() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let sts = sts_base_url("us-east-1");
        let a = presign_get_caller_identity(&creds(None), "us-east-1", "a", &sts, now).unwrap();
        let b = presign_get_caller_identity(&creds(None), "us-east-1", "b", &sts, now).unwrap();
        assert_ne!(
            param(&query(&a), "X-Amz-Signature"),
            param(&query(&b), "X-Amz-Signature")
        );
    }

    #[test]
    fn china_regions_use_their_domain() {
        assert_eq!(
            sts_base_url("cn-north-1").as_str(),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
    }
}
