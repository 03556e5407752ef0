//! AWS SigV4 request signing for Amazon OpenSearch Service (`es`) and OpenSearch Serverless
//! (`aoss`), with credentials from the standard AWS chain (environment, shared profile files, web
//! identity token = IRSA, ECS / EKS Pod Identity container credentials, IMDS).
//!
//! - this file: the `elasticsearch.auth.aws` setting, validated;
//! - [`credentials`]: the provider chain behind a cache that refreshes ahead of expiry and loads
//!   again when Elasticsearch refuses a signature;
//! - [`sign`]: a pure function that signs one built request (the exact body bytes it carries).
//!
//! Signing happens at send time, once per attempt, so a retried request carries a fresh date.
//! Nothing here prints a secret: `Credentials`' `Debug` is redacted, the headers that carry the
//! signature and the session token are marked sensitive, and errors never quote them.

mod credentials;
pub mod sign;

use std::time::SystemTime;

use serde::Deserialize;

use crate::settings::ConfigError;
pub use credentials::Lease;
use credentials::{ChainLoader, CredentialCache};

/// The signing name of the service behind the endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AwsService {
    /// Amazon OpenSearch Service (and the former Amazon Elasticsearch Service) domains.
    #[default]
    Es,
    /// Amazon OpenSearch Serverless collections.
    Aoss,
}

impl AwsService {
    pub fn signing_name(self) -> &'static str {
        match self {
            AwsService::Es => "es",
            AwsService::Aoss => "aoss",
        }
    }
}

/// Validated `elasticsearch.auth.aws`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAuth {
    /// `None`: from the AWS environment (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, IMDS).
    pub region: Option<String>,
    pub service: AwsService,
}

/// `elasticsearch.auth.aws` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAwsAuth {
    region: Option<String>,
    #[serde(default)]
    service: AwsService,
}

impl RawAwsAuth {
    pub fn validate(self) -> Result<AwsAuth, ConfigError> {
        if let Some(r) = &self.region {
            // Region names are lowercase letters, digits and dashes (us-east-1, us-gov-west-1);
            // anything else would only fail later, at every request, as a bad signature.
            let well_formed = !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !r.starts_with('-')
                && !r.ends_with('-');
            if !well_formed {
                return Err(ConfigError::Invalid {
                    key: "elasticsearch.auth.aws.region",
                    reason: format!(
                        "`{r}` is not an AWS region name (e.g. us-east-1); leave it out to take \
                         AWS_REGION or the profile's region"
                    ),
                });
            }
        }
        Ok(AwsAuth {
            region: self.region,
            service: self.service,
        })
    }
}

/// Signs requests for one configured service; shared by every request of the [`Service`].
///
/// [`Service`]: super::service::Service
#[derive(Debug)]
pub struct Signer {
    service: AwsService,
    credentials: CredentialCache,
}

impl Signer {
    pub fn new(cfg: &AwsAuth) -> Signer {
        Signer {
            service: cfg.service,
            credentials: CredentialCache::new(Box::new(ChainLoader::new(cfg.region.clone()))),
        }
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (with temporary
    /// credentials) and `authorization` to a built request. The returned lease is passed back to
    /// [`Signer::answered`] with the response's status.
    pub async fn sign(&self, req: &mut reqwest::Request) -> Result<Lease, String> {
        let lease = self
            .credentials
            .get()
            .await
            .map_err(|e| format!("cannot load AWS credentials: {e}"))?;
        sign::sign(
            req,
            lease.credentials(),
            lease.region(),
            self.service.signing_name(),
            SystemTime::now(),
        )?;
        Ok(lease)
    }

    /// Tells the cache how the server took a request signed under `lease`: a 401/403 may mean
    /// the credentials were rotated or revoked, so they are loaded again (paced).
    pub fn answered(&self, lease: &Lease, status: u16) {
        match status {
            401 | 403 => self.credentials.rejected(lease, status),
            // A 5xx says nothing about the credentials.
            500.. => {}
            _ => self.credentials.accepted(lease),
        }
    }
}
