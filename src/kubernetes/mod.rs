//! Kubernetes knowledge: what a container log file's path says about its pod.
//!
//! Metadata from the API server (labels, annotations, owners) is the Kubernetes issue's work;
//! until then every event carries what the kubelet's path layout tells.

pub mod path;

pub use path::PodRef;
