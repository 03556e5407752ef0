//! Kubernetes knowledge: what a container log file's path says about its pod, and the pod and
//! namespace metadata watched from the API server (`watch` fills `store`, the reader renders
//! `meta` into each file's context).

pub mod config;
pub mod meta;
pub mod path;
pub mod store;
pub mod watch;

pub use path::PodRef;
