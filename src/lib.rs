//! sluice: a per-node Kubernetes log agent that tails container log files and ships every line,
//! exactly once in effect, to Elasticsearch.
//!
//! # Layout
//! - [`settings`]: the configuration vocabulary (durations, sizes, `${VAR}`, the error); a leaf.
//! - [`config`]: reads the YAML once and hands each section to the stage that owns it (each
//!   stage's `config.rs`); returns one validated [`config::Config`], before any I/O.
//! - [`tail`]: discovery, file identity, framing, checkpoints. Knows nothing of Kubernetes.
//! - [`parse`]: CRI and docker records, partial-line joining, multiline groups, JSON app logs.
//! - [`kubernetes`]: what a log file's path says about its pod (namespace, pod, container).
//! - [`sink::elasticsearch`]: document encoding, batching, bulk requests, per-item outcomes.
//! - [`delivery`]: acknowledgements → per-file committed offsets (what the checkpoint may say).
//! - [`telemetry`]: Prometheus metrics and the health endpoint.
//! - [`pipeline`]: wires the stages with bounded queues and owns the shutdown order.
//!
//! The data flow, each module's invariants and the delivery guarantee are described in
//! `ARCHITECTURE.md` at the repository root.

pub mod config;
pub mod delivery;
pub mod kubernetes;
pub mod parse;
pub mod pipeline;
pub mod settings;
pub mod sink;
pub mod tail;
pub mod telemetry;
