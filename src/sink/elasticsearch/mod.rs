//! The Elasticsearch (and OpenSearch) output through the bulk API.
//!
//! - [`config`]: the `elasticsearch:` section, validated ([`index`]: index name patterns;
//!   [`route`]: their field references, value sanitising, the distinct-index count).
//! - [`appjson`]: a JSON app log's object within the server's limits, its typed keys.
//! - [`encode`]: events → `create` actions written straight into the request body.
//! - [`batch`]: a sealed request body with the position of every item and the delivery ranges;
//!   the pool that recycles settled batches.
//! - [`service`]: the HTTP calls (endpoints, compression, timeouts, credentials, TLS).
//! - [`health`]: which endpoint gets the next request; unhealthy ones are backed off and probed.
//! - [`auth`]: basic auth, API key, bearer token, inline or from files; never printed.
//! - [`aws`]: SigV4 signing for Amazon OpenSearch Service / Serverless, AWS credential chain.
//! - [`bootstrap`]: `sluice setup`: version detection, index templates, lifecycle policy.
//! - [`failure_store`]: whether the cluster has a data-stream failure store, the template option.
//! - [`retry`]: pure decision from a response to per-item outcomes, and the backoff.
//! - [`sink`]: the chain: send, settle every item, dead-letter, acknowledge.
//! - [`storage`]: the logs indices' `index.mode` (logsdb on 9.x) and codec.
//! - [`dead_letter`]: the dead-letter document of a refused item.

pub mod appjson;
pub mod auth;
pub mod aws;
pub mod batch;
pub mod bootstrap;
pub mod config;
pub mod dead_letter;
pub mod encode;
pub mod escape;
pub mod failure_store;
pub mod health;
pub mod index;
pub mod retry;
pub mod route;
pub mod service;
pub mod sink;
pub mod storage;

pub use batch::{Batch, BatchPool};
pub use index::IndexPattern;
