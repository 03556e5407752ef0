//! Pure: selected record names and configured static targets → Prometheus `static_configs`
//! entries. No I/O, no YAML document editing (that is `prometheus_config`).

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

use crate::config::{ProbeJob, StaticTarget};

/// Label naming the cluster a federated Prometheus belongs to.
pub const CLUSTER_ID_LABEL: &str = "clusterID";
/// Label naming the installation a probe checks.
pub const INSTALLATION_LABEL: &str = "installation";

/// One entry of a job's `static_configs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl StaticConfig {
    /// The YAML form: `{targets: [...], labels: {...}}`.
    pub fn to_yaml(&self) -> Value {
        let mut m = Mapping::new();
        m.insert(
            Value::from("targets"),
            Value::Sequence(
                self.targets
                    .iter()
                    .map(|t| Value::from(t.as_str()))
                    .collect(),
            ),
        );
        if !self.labels.is_empty() {
            let labels: Mapping = self
                .labels
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                .collect();
            m.insert(Value::from("labels"), Value::Mapping(labels));
        }
        Value::Mapping(m)
    }
}

/// Renders a list of static configs as the YAML sequence `static_configs` holds.
pub fn to_yaml(configs: &[StaticConfig]) -> Value {
    Value::Sequence(configs.iter().map(StaticConfig::to_yaml).collect())
}

/// The first DNS label of a name: `abc.prometheus.internal.` → `abc`.
pub fn cluster_id(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// `abc.prometheus.internal.` → `abc.prometheus.internal` (Prometheus targets are not
/// absolute names).
pub fn host(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// Federation targets: the static targets first (in configured order), then one entry per
/// selected name (already sorted), each labelled `clusterID` = its first DNS label.
pub fn federation_static_configs(
    static_targets: &[StaticTarget],
    names: &[String],
    port: Option<u16>,
) -> Vec<StaticConfig> {
    let fixed = static_targets.iter().map(|t| StaticConfig {
        targets: vec![t.target.clone()],
        labels: BTreeMap::from([(CLUSTER_ID_LABEL.to_string(), t.cluster_id.clone())]),
    });
    let discovered = names.iter().map(|name| StaticConfig {
        targets: vec![match port {
            Some(p) => format!("{}:{p}", host(name)),
            None => host(name).to_string(),
        }],
        labels: BTreeMap::from([(CLUSTER_ID_LABEL.to_string(), cluster_id(name).to_string())]),
    });
    fixed.chain(discovered).collect()
}

/// Blackbox probe targets: `scheme://host/path` per selected name, labelled `installation`
/// with the name less the zone suffix (`foo.inst.example.` under `.inst.example.` → `foo`).
pub fn probe_static_configs(names: &[String], probe: &ProbeJob) -> Vec<StaticConfig> {
    names
        .iter()
        .map(|name| {
            let installation = name
                .strip_suffix(probe.source.suffix.as_str())
                .unwrap_or(host(name));
            StaticConfig {
                targets: vec![format!(
                    "{}://{}{}",
                    probe.scheme.as_str(),
                    host(name),
                    probe.path
                )],
                labels: BTreeMap::from([(
                    INSTALLATION_LABEL.to_string(),
                    installation.to_string(),
                )]),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RecordSource, Scheme};

    #[test]
    fn federation_targets_are_labelled_with_the_first_label() {
        let fixed = vec![StaticTarget {
            target: "prometheus.monitoring.svc:9090".into(),
            cluster_id: "C&C".into(),
        }];
        let names = vec![
            "abc.prometheus.internal.".to_string(),
            "xyz.eu.prometheus.internal.".to_string(),
        ];
        let got = federation_static_configs(&fixed, &names, Some(9090));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].targets, vec!["prometheus.monitoring.svc:9090"]);
        assert_eq!(got[0].labels["clusterID"], "C&C");
        assert_eq!(got[1].targets, vec!["abc.prometheus.internal:9090"]);
        assert_eq!(got[1].labels["clusterID"], "abc");
        assert_eq!(got[2].targets, vec!["xyz.eu.prometheus.internal:9090"]);
        assert_eq!(got[2].labels["clusterID"], "xyz");
    }

    #[test]
    fn no_port_means_bare_host() {
        let got = federation_static_configs(&[], &["abc.prometheus.internal.".to_string()], None);
        assert_eq!(got[0].targets, vec!["abc.prometheus.internal"]);
    }

    #[test]
    fn yaml_form_has_targets_and_labels() {
        let got = federation_static_configs(&[], &["abc.prometheus.internal.".to_string()], None);
        let yaml = serde_norway::to_string(&to_yaml(&got)).unwrap();
        assert_eq!(
            yaml,
            "- targets:\n  - abc.prometheus.internal\n  labels:\n    clusterID: abc\n"
        );
    }

    #[test]
    fn probe_targets_are_urls() {
        let probe = ProbeJob {
            source: RecordSource {
                hosted_zone_id: "Z2".into(),
                suffix: ".inst.example.".into(),
            },
            exclude: Default::default(),
            path: "/api/v4/system/ping".into(),
            job_name: "blackbox".into(),
            module: "http_2xx".into(),
            exporter_address: "bb:9115".into(),
            scheme: Scheme::Https,
        };
        let got = probe_static_configs(&["foo.inst.example.".to_string()], &probe);
        assert_eq!(
            got[0].targets,
            vec!["https://foo.inst.example/api/v4/system/ping"]
        );
        assert_eq!(got[0].labels["installation"], "foo");
    }
}
