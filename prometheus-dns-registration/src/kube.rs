//! Kubernetes: a client (EKS endpoint + token, a kubeconfig, or in-cluster) and the ConfigMap
//! read / conditional write behind [`ConfigMapStore`].
//!
//! Writes are a full `update` (PUT) carrying the `resourceVersion` that was read, so a
//! concurrent change is a [`WriteOutcome::Conflict`], never a lost update. Only the `get` and
//! `update` verbs are used, so RBAC can be narrowed to one ConfigMap by `resourceNames`. This
//! module does not know what `prometheus.yml` contains.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{ConfigMapRef, KubeAccess};
use crate::eks_token::{self, ClusterAccess, EksError};

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(transparent)]
    Eks(#[from] EksError),
    #[error("EKS access needs an AWS configuration")]
    NoAwsConfig,
    #[error("EKS endpoint {0:?} is not a URL")]
    BadEndpoint(String),
    #[error("the cluster CA is not a PEM certificate bundle: {0}")]
    BadCa(String),
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
    #[error("ConfigMap {0} not found")]
    NotFound(String),
    #[error(
        "forbidden to {verb} ConfigMap {configmap}: {message} (the identity needs get and update on it)"
    )]
    Forbidden {
        verb: &'static str,
        configmap: String,
        message: String,
    },
    #[error("ConfigMap {configmap} has no key {key:?} in data (keys: {keys})")]
    MissingKey {
        configmap: String,
        key: String,
        keys: String,
    },
    #[error("ConfigMap {0} has no resourceVersion")]
    NoResourceVersion(String),
    #[error("{verb} ConfigMap {configmap}: {source}")]
    Api {
        verb: &'static str,
        configmap: String,
        source: kube::Error,
    },
}

/// Builds a client for the configured access method.
pub async fn client(
    access: &KubeAccess,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<kube::Client, KubeError> {
    let config = match access {
        KubeAccess::Eks {
            cluster_name,
            sts_endpoint,
        } => {
            let sdk = sdk.ok_or(KubeError::NoAwsConfig)?;
            let eks = aws_sdk_eks::Client::new(sdk);
            let cluster = eks_token::describe_cluster(&eks, cluster_name).await?;
            let token = eks_token::token(sdk, cluster_name, sts_endpoint.as_ref()).await?;
            // The ARN the cluster's access entry has to map; logged because a missing entry
            // only shows up as "Unauthorized" from the API server.
            match eks_token::caller_arn(&aws_sdk_sts::Client::new(sdk)).await {
                Ok(arn) => {
                    tracing::info!(cluster = %cluster_name, endpoint = %cluster.endpoint, %arn, "EKS access")
                }
                Err(e) => tracing::warn!(error = %e, "sts:GetCallerIdentity failed"),
            }
            config_from_cluster_access(&cluster, token)?
        }
        KubeAccess::Kubeconfig { path, context } => {
            from_kubeconfig_file(path, context.clone()).await?
        }
        KubeAccess::Infer { context: None } => kube::Config::infer().await.map_err(|e| {
            KubeError::Client(format!("no kubeconfig or in-cluster configuration: {e}"))
        })?,
        KubeAccess::Infer {
            context: Some(context),
        } => {
            let options = KubeConfigOptions {
                context: Some(context.clone()),
                ..Default::default()
            };
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| KubeError::Kubeconfig {
                    path: "(KUBECONFIG or ~/.kube/config)".into(),
                    message: e.to_string(),
                })?
        }
    };
    kube::Client::try_from(config).map_err(|e| KubeError::Client(e.to_string()))
}

async fn from_kubeconfig_file(
    path: &Path,
    context: Option<String>,
) -> Result<kube::Config, KubeError> {
    let err = |message: String| KubeError::Kubeconfig {
        path: path.display().to_string(),
        message,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let options = KubeConfigOptions {
        context,
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| err(e.to_string()))
}

/// A client configuration from an API endpoint, its CA bundle (PEM) and a bearer token.
pub fn config_from_cluster_access(
    access: &ClusterAccess,
    token: String,
) -> Result<kube::Config, KubeError> {
    let uri: http::Uri = access
        .endpoint
        .parse()
        .map_err(|_| KubeError::BadEndpoint(access.endpoint.clone()))?;
    let certs = CertificateDer::pem_slice_iter(&access.ca_pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KubeError::BadCa(e.to_string()))?;
    if certs.is_empty() {
        return Err(KubeError::BadCa("no CERTIFICATE block found".into()));
    }
    let mut config = kube::Config::new(uri);
    config.root_cert = Some(certs);
    config.auth_info.token = Some(secrecy::SecretString::from(token));
    config.read_timeout = Some(Duration::from_secs(30));
    Ok(config)
}

/// The ConfigMap as read: the whole object (written back as it was, apart from one key),
/// the key's text and the resourceVersion the write is conditional on.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub configmap: ConfigMap,
    pub text: String,
    pub resource_version: String,
}

/// Result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Written {
        resource_version: String,
    },
    /// Someone else changed the ConfigMap since it was read (HTTP 409).
    Conflict,
}

/// Read and conditionally write the key holding `prometheus.yml`.
pub trait ConfigMapStore {
    /// `namespace/name` for messages.
    fn describe(&self) -> String;
    fn read(&self) -> impl Future<Output = Result<Snapshot, KubeError>> + Send;
    fn write(
        &self,
        snapshot: &Snapshot,
        text: String,
    ) -> impl Future<Output = Result<WriteOutcome, KubeError>> + Send;
}

/// [`ConfigMapStore`] on the Kubernetes API.
#[derive(Clone)]
pub struct ApiStore {
    api: Api<ConfigMap>,
    target: ConfigMapRef,
}

impl ApiStore {
    pub fn new(client: kube::Client, target: ConfigMapRef) -> ApiStore {
        ApiStore {
            api: Api::namespaced(client, &target.namespace),
            target,
        }
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl ConfigMapStore for ApiStore {
    fn describe(&self) -> String {
        format!("{}/{}", self.target.namespace, self.target.name)
    }

    async fn read(&self) -> Result<Snapshot, KubeError> {
        let cm = self
            .api
            .get(&self.target.name)
            .await
            .map_err(|e| match status_code(&e) {
                Some(404) => KubeError::NotFound(self.describe()),
                Some(403) => KubeError::Forbidden {
                    verb: "get",
                    configmap: self.describe(),
                    message: e.to_string(),
                },
                _ => KubeError::Api {
                    verb: "get",
                    configmap: self.describe(),
                    source: e,
                },
            })?;
        let resource_version = cm
            .metadata
            .resource_version
            .clone()
            .ok_or_else(|| KubeError::NoResourceVersion(self.describe()))?;
        let data = cm.data.clone().unwrap_or_default();
        let text = data
            .get(&self.target.key)
            .cloned()
            .ok_or_else(|| KubeError::MissingKey {
                configmap: self.describe(),
                key: self.target.key.clone(),
                keys: data.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        Ok(Snapshot {
            configmap: cm,
            text,
            resource_version,
        })
    }

    async fn write(&self, snapshot: &Snapshot, text: String) -> Result<WriteOutcome, KubeError> {
        let mut cm = snapshot.configmap.clone();
        cm.metadata.resource_version = Some(snapshot.resource_version.clone());
        cm.data
            .get_or_insert_with(BTreeMap::new)
            .insert(self.target.key.clone(), text);
        match self
            .api
            .replace(&self.target.name, &PostParams::default(), &cm)
            .await
        {
            Ok(written) => Ok(WriteOutcome::Written {
                resource_version: written.metadata.resource_version.unwrap_or_default(),
            }),
            Err(e) => match status_code(&e) {
                Some(409) => Ok(WriteOutcome::Conflict),
                Some(403) => Err(KubeError::Forbidden {
                    verb: "update",
                    configmap: self.describe(),
                    message: e.to_string(),
                }),
                _ => Err(KubeError::Api {
                    verb: "update",
                    configmap: self.describe(),
                    source: e,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_ca_that_is_not_pem() {
        let access = ClusterAccess {
            endpoint: "https://example.eks.amazonaws.com".into(),
            ca_pem: b"garbage".to_vec(),
        };
        let e = config_from_cluster_access(&access, "t".into()).unwrap_err();
        assert!(matches!(e, KubeError::BadCa(_)), "{e}");
    }

    #[test]
    fn rejects_a_bad_endpoint() {
        let access = ClusterAccess {
            endpoint: "not a url".into(),
            ca_pem: Vec::new(),
        };
        assert!(matches!(
            config_from_cluster_access(&access, "t".into()),
            Err(KubeError::BadEndpoint(_))
        ));
    }
}
