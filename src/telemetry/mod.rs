//! The agent's own telemetry: Prometheus metrics and the health endpoint.

pub mod config;
pub mod metrics;
pub mod server;

pub use metrics::Metrics;
