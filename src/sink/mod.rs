//! Outputs. Today one: Elasticsearch (and OpenSearch) through the bulk API.

pub mod elasticsearch;
