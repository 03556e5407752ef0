//! How the log indices are stored on the server: the `index.mode` and `index.codec` settings of
//! the logs template, from `elasticsearch.index_mode` and what the cluster runs. The figures
//! behind the defaults are in BENCHMARKS.md ("Index size"). It never changes the mappings (the
//! document schema is `bootstrap`'s) nor anything of the dead-letter indices.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::bootstrap::{Cluster, Distribution};

/// `elasticsearch.index_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexMode {
    /// `logsdb` where the cluster has it (Elasticsearch 8.17 and later), `standard` elsewhere
    /// (older Elasticsearch, OpenSearch).
    #[default]
    Auto,
    /// Elasticsearch's log index mode (8.17+): sorted by `host.name` and `@timestamp`,
    /// synthetic `_source` where the licence allows it (else stored), `best_compression`.
    Logsdb,
    /// Ordinary indices, with `best_compression`.
    Standard,
}

/// Whether the cluster has the `logsdb` index mode: Elasticsearch 8.17 or later.
fn has_logsdb(cluster: &Cluster) -> bool {
    cluster.distribution == Distribution::Elasticsearch
        && super::bootstrap::version_at_least(&cluster.version, 8, 17)
}

/// The mode the template gets, or why the configured one cannot be had on this cluster.
pub fn resolve(mode: IndexMode, cluster: &Cluster) -> Result<IndexMode, String> {
    match mode {
        IndexMode::Auto if has_logsdb(cluster) => Ok(IndexMode::Logsdb),
        IndexMode::Auto => Ok(IndexMode::Standard),
        IndexMode::Logsdb if !has_logsdb(cluster) => Err(format!(
            "elasticsearch.index_mode: logsdb needs Elasticsearch 8.17 or later; this cluster is {:?} {} (use standard or auto)",
            cluster.distribution, cluster.version
        )),
        m => Ok(m),
    }
}

/// The template settings of a resolved mode.
pub fn settings(mode: IndexMode) -> Map<String, Value> {
    let mut s = Map::new();
    if mode == IndexMode::Logsdb {
        s.insert("index.mode".into(), json!("logsdb"));
    }
    // Both distributions have it; logsdb defaults to it, said here so the template tells.
    s.insert("index.codec".into(), json!("best_compression"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(d: Distribution, v: &str) -> Cluster {
        Cluster {
            distribution: d,
            version: v.into(),
        }
    }

    #[test]
    fn auto_is_logsdb_on_elasticsearch_8_17_and_later() {
        let es9 = cluster(Distribution::Elasticsearch, "9.2.0");
        let es8 = cluster(Distribution::Elasticsearch, "8.19.21");
        let os = cluster(Distribution::OpenSearch, "3.6.0");
        assert_eq!(resolve(IndexMode::Auto, &es9), Ok(IndexMode::Logsdb));
        assert_eq!(resolve(IndexMode::Auto, &es8), Ok(IndexMode::Logsdb));
        assert_eq!(
            resolve(
                IndexMode::Auto,
                &cluster(Distribution::Elasticsearch, "8.16.1")
            ),
            Ok(IndexMode::Standard)
        );
        assert_eq!(resolve(IndexMode::Auto, &os), Ok(IndexMode::Standard));
        assert_eq!(resolve(IndexMode::Logsdb, &es8), Ok(IndexMode::Logsdb));
        assert_eq!(resolve(IndexMode::Standard, &es9), Ok(IndexMode::Standard));
    }

    #[test]
    fn logsdb_refused_where_the_cluster_has_none() {
        for c in [
            cluster(Distribution::OpenSearch, "2.19.6"),
            cluster(Distribution::Elasticsearch, "8.16.0"),
        ] {
            let e = resolve(IndexMode::Logsdb, &c).unwrap_err();
            assert!(e.contains("elasticsearch.index_mode"), "{e}");
        }
    }

    #[test]
    fn settings_of_each_mode() {
        assert_eq!(
            Value::Object(settings(IndexMode::Logsdb)),
            json!({"index.mode": "logsdb", "index.codec": "best_compression"})
        );
        assert_eq!(
            Value::Object(settings(IndexMode::Standard)),
            json!({"index.codec": "best_compression"})
        );
    }
}
