//! The agent's own telemetry: Prometheus metrics and the health endpoints.

pub mod config;
pub mod health;
pub mod metrics;
pub mod server;
pub mod tap;
pub mod tap_client;

pub use metrics::Metrics;
