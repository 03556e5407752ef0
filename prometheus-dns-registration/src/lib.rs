//! prometheus-dns-registration keeps the central Prometheus's federation targets in sync with
//! the Route53 records of the clusters' Prometheus endpoints.
//!
//! Every run is a full, idempotent resync: list every record of the private hosted zone, build
//! the wanted `static_configs`, and rewrite only those of the federation job (and, optionally,
//! of a blackbox probe job) inside the `prometheus.yml` key of a ConfigMap. Whatever else the
//! document holds is kept as it was. An event (EventBridge / CloudTrail
//! `ChangeResourceRecordSets`) only triggers a run; it is never trusted for content.
//!
//! # Layout
//!
//! - [`config`]: environment variables and an optional YAML file → one validated [`Config`],
//!   before any I/O. Every bad value is an error naming the key.
//! - [`route53`]: lists every record set of a zone (all pages) and selects host names (pure
//!   filter).
//! - [`targets`]: pure: selected names and static targets → `static_configs` entries.
//! - [`prometheus_config`]: pure: edits a generic YAML value (never a fixed struct, so unknown
//!   fields survive), renders it and diffs it.
//! - [`eks_token`]: `eks:DescribeCluster` and the aws-iam-authenticator bearer token
//!   (presigned STS `GetCallerIdentity`).
//! - [`kube`]: a Kubernetes client (EKS, kubeconfig or in-cluster) and the ConfigMap read /
//!   conditional write behind the [`kube::ConfigMapStore`] trait.
//! - [`sync`]: one resync: desired targets → read → edit → write on change, retry on conflict,
//!   optional Prometheus reload.
//! - [`lambda`]: the AWS Lambda entry point (EventBridge events trigger a resync).
//!
//! The binary (`main.rs`) only parses the command line and calls [`sync::run_once`] or
//! [`lambda::run`].

pub mod config;
pub mod eks_token;
pub mod kube;
pub mod lambda;
pub mod prometheus_config;
pub mod route53;
pub mod sync;
pub mod targets;

pub use config::Config;
