//! The Elasticsearch (and OpenSearch) output through the bulk API.
//!
//! - [`encode`]: events → `create` actions written straight into the request body.
//! - [`batch`]: a sealed request body with the position of every item and the delivery ranges.
//! - [`service`]: the HTTP call (endpoints, compression, timeouts).
//! - [`retry`]: pure decision from a response to per-item outcomes, and the backoff.
//! - [`sink`]: the chain: send, settle every item, dead-letter, acknowledge.

pub mod batch;
pub mod encode;
pub mod escape;
pub mod retry;
pub mod service;
pub mod sink;

pub use batch::Batch;
