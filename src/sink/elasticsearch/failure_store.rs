//! The data stream's failure store (Elasticsearch 9.1+), asked for by
//! `elasticsearch.failure_store: true`: whether the cluster can keep documents refused for their
//! content there, and the template option that turns it on. It decides nothing about delivery:
//! `retry` reads a `"failure_store": "used"` item as delivered, whatever set it up.

use serde_json::{Value, json};

use super::bootstrap::{BootstrapError, Cluster, Distribution, call, expect_ok, version_at_least};
use super::service::Service;

/// Whether the failure store can be used here, and if not, why (told to the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Available,
    Unavailable(String),
}

/// What the cluster says about itself: the distribution and version, then the node's modules
/// (the redirection lives in Elasticsearch's `data-streams` module; a build without it, such as
/// the integ-test zip, accepts the template option and still refuses the document).
pub async fn probe(svc: &Service, cluster: &Cluster) -> Result<Support, BootstrapError> {
    if let Some(why) = by_version(cluster) {
        return Ok(Support::Unavailable(why));
    }
    let (status, body) = call(
        svc,
        reqwest::Method::GET,
        "_nodes/_local/plugins?filter_path=nodes.*.modules.name",
        None,
    )
    .await?;
    expect_ok(
        "reading the modules from /_nodes/_local/plugins",
        status,
        &body,
    )?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(by_modules(&v))
}

/// The distribution and version rule: Elasticsearch 9.1 or later (where the failure store is
/// generally available; 8.19 has it as a technical preview only).
pub fn by_version(cluster: &Cluster) -> Option<String> {
    match cluster.distribution {
        Distribution::OpenSearch => Some(format!(
            "OpenSearch {} has no failure store",
            cluster.version
        )),
        Distribution::Elasticsearch if !version_at_least(&cluster.version, 9, 1) => Some(format!(
            "Elasticsearch {} has no generally available failure store (9.1 or later)",
            cluster.version
        )),
        Distribution::Elasticsearch => None,
    }
}

/// The module rule, from `_nodes/_local/plugins?filter_path=nodes.*.modules.name`.
pub fn by_modules(nodes: &Value) -> Support {
    let has = nodes["nodes"].as_object().is_some_and(|n| {
        n.values().any(|node| {
            node["modules"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["name"] == "data-streams"))
        })
    });
    if has {
        Support::Available
    } else {
        Support::Unavailable(
            "this Elasticsearch build has no data-streams module (the integ-test distribution, say), so it would refuse such documents anyway".into(),
        )
    }
}

/// What goes into the logs template's `template` for a data stream with a failure store.
pub fn template_options() -> Value {
    json!({"failure_store": {"enabled": true}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(v: &str) -> Cluster {
        Cluster {
            distribution: Distribution::Elasticsearch,
            version: v.into(),
        }
    }

    #[test]
    fn only_elasticsearch_9_1_and_later() {
        assert!(by_version(&es("9.1.0")).is_none());
        assert!(by_version(&es("9.2.0")).is_none());
        assert!(by_version(&es("9.0.3")).unwrap().contains("9.1 or later"));
        assert!(by_version(&es("8.19.21")).unwrap().contains("8.19.21"));
        let os = Cluster {
            distribution: Distribution::OpenSearch,
            version: "3.6.0".into(),
        };
        assert!(by_version(&os).unwrap().contains("OpenSearch"));
    }

    /// The answer of a 9.2.0 integ-test node (no data-streams module), and of a full one.
    #[test]
    fn needs_the_data_streams_module() {
        let integ = json!({"nodes":{"n1":{"modules":[{"name":"apm"},{"name":"transport-netty4"},{"name":"x-pack-core"},{"name":"x-pack-security"}]}}});
        assert!(
            matches!(by_modules(&integ), Support::Unavailable(w) if w.contains("data-streams"))
        );
        let full =
            json!({"nodes":{"n1":{"modules":[{"name":"data-streams"},{"name":"x-pack-core"}]}}});
        assert_eq!(by_modules(&full), Support::Available);
        assert!(matches!(by_modules(&json!({})), Support::Unavailable(_)));
    }
}
