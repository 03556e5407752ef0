//! Outputs. Today one: Elasticsearch (and OpenSearch) through the bulk API; and `kibana`, the
//! import of the bundled saved objects by `sluice setup --kibana`.

pub mod elasticsearch;
pub mod kibana;
