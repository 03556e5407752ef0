use super::*;

/// Values of one file, for the tests.
#[derive(Default)]
struct Values(Vec<(Field, String)>);

impl Values {
    fn of(pairs: &[(Field, &str)]) -> Values {
        Values(
            pairs
                .iter()
                .map(|(f, v)| (f.clone(), v.to_string()))
                .collect(),
        )
    }
}

impl Lookup for Values {
    fn value(&self, field: &Field) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_str())
    }
}

fn pattern(s: &str) -> IndexPattern {
    IndexPattern::parse("elasticsearch.index", s).unwrap()
}

fn refused(s: &str) -> String {
    IndexPattern::parse("elasticsearch.index", s)
        .unwrap_err()
        .to_string()
}

const DAY: (i32, u32, u32) = (2026, 3, 7);

#[test]
fn index_pattern_renders_event_date() {
    let p = pattern("logs-%Y.%m.%d");
    assert_eq!(p.render(DAY), "logs-2026.03.07");
    assert!(p.is_dated() && !p.is_routed());
    assert!(!pattern("logs").is_dated());
    assert_eq!(pattern("a%%b").render(DAY), "a%b");
}

#[test]
fn references_resolve_per_file_and_dates_per_event() {
    let p = pattern("logs-{kubernetes.namespace}-%Y.%m.%d");
    assert!(p.is_routed() && p.is_dated());
    let v = Values::of(&[(Field::Namespace, "shop")]);
    let r = p.resolve(&v, false);
    assert_eq!(r.as_str(), "logs-shop-%Y.%m.%d");
    assert!(!r.is_routed() && r.is_dated());
    assert_eq!(r.render(DAY), "logs-shop-2026.03.07");
}

#[test]
fn every_field_resolves() {
    let v = Values::of(&[
        (Field::Namespace, "ns"),
        (Field::PodName, "web-1"),
        (Field::ContainerName, "app"),
        (Field::Label("app_kubernetes_io/name".into()), "web"),
        (Field::NamespaceLabel("tenant".into()), "acme"),
        (Field::Workload("deployment"), "front"),
        (Field::ClusterName, "eu1"),
        (Field::Dataset, "nginx"),
    ]);
    let p = pattern(
        "{kubernetes.namespace}.{kubernetes.pod.name}.{kubernetes.container.name}.{kubernetes.labels.app.kubernetes.io/name}.{kubernetes.namespace_labels.tenant}.{kubernetes.deployment.name}.{orchestrator.cluster.name}.{sluice.dataset}",
    );
    assert_eq!(
        p.resolve(&v, false).render(DAY),
        "ns.web-1.app.web.acme.front.eu1.nginx"
    );
}

#[test]
fn fallback_applies_when_the_value_is_missing_or_empty() {
    let p = pattern("logs-{kubernetes.namespace_labels.tenant|shared}");
    assert_eq!(
        p.resolve(&Values::default(), false).render(DAY),
        "logs-shared"
    );
    let empty = Values::of(&[(Field::NamespaceLabel("tenant".into()), "")]);
    assert_eq!(p.resolve(&empty, false).render(DAY), "logs-shared");
    let set = Values::of(&[(Field::NamespaceLabel("tenant".into()), "Acme")]);
    assert_eq!(p.resolve(&set, false).render(DAY), "logs-acme");
}

#[test]
fn missing_value_without_fallback_is_unknown() {
    let p = pattern("logs-{kubernetes.labels.team}");
    assert_eq!(
        p.resolve(&Values::default(), false).render(DAY),
        "logs-unknown"
    );
    // Not resolved at all (no metadata): the same.
    assert_eq!(p.render(DAY), "logs-unknown");
}

#[test]
fn values_are_sanitised_and_the_whole_name_legalised() {
    let p = pattern("{kubernetes.labels.x}-%Y");
    let v = Values::of(&[(Field::Label("x".into()), "-Team A/B*")]);
    assert_eq!(p.resolve(&v, false).render(DAY), "team_a_b_-2026");
    let long = Values::of(&[(Field::Label("x".into()), &"a".repeat(400))]);
    assert_eq!(p.resolve(&long, false).render(DAY).len(), 255);
}

#[test]
fn a_percent_in_a_value_is_not_a_date() {
    let p = pattern("logs-{kubernetes.labels.x}-%Y");
    let v = Values::of(&[(Field::Label("x".into()), "%y%m")]);
    let r = p.resolve(&v, false);
    assert_eq!(r.render(DAY), "logs-%y%m-2026");
    assert_ne!(
        r,
        p.resolve(&Values::of(&[(Field::Label("x".into()), "2026")]), false)
    );
}

#[test]
fn hostile_dataset_stays_inside_its_namespace_prefix() {
    let p = pattern("logs-{kubernetes.namespace}-{sluice.dataset|default}");
    for hostile in [
        "x-othertenant",
        "../",
        "*",
        "../../othertenant-x",
        "-",
        "A-B",
        ".",
        "..",
        "_x",
    ] {
        let v = Values::of(&[(Field::Namespace, "team"), (Field::Dataset, hostile)]);
        let name = p.resolve(&v, false).render(DAY);
        assert!(name.starts_with("logs-team-"), "{hostile}: {name}");
        let rest = &name["logs-team-".len()..];
        assert!(!rest.is_empty() && !rest.contains('-'), "{hostile}: {name}");
        assert!(!name.contains(['*', '/']), "{hostile}: {name}");
    }
    let v = Values::of(&[(Field::Namespace, "team")]);
    assert_eq!(p.resolve(&v, false).render(DAY), "logs-team-default");
}

#[test]
fn data_stream_values_keep_no_dash() {
    let p = pattern("logs-{sluice.dataset|generic}-{kubernetes.namespace}");
    let v = Values::of(&[(Field::Namespace, "team-b"), (Field::Dataset, "web-x")]);
    assert_eq!(p.resolve(&v, true).render(DAY), "logs-web_x-team_b");
    assert_eq!(p.resolve(&v, false).render(DAY), "logs-web_x-team-b");
}

#[test]
fn glob_covers_dates_and_references() {
    assert_eq!(
        pattern("logs-{kubernetes.namespace}-%Y.%m.%d").glob(),
        "logs-*-*.*.*"
    );
    assert_eq!(
        pattern("logs-{sluice.dataset}{kubernetes.namespace}").glob(),
        "logs-*"
    );
    assert_eq!(pattern("plain").glob(), "plain");
}

#[test]
fn validate_rejects_unknown_field() {
    let err = refused("logs-{kubernetes.node.name}");
    assert!(
        err.contains("elasticsearch.index") && err.contains("kubernetes.node.name"),
        "{err}"
    );
    assert!(refused("logs-{}").contains("not a field"));
}

#[test]
fn validate_rejects_unbalanced_braces() {
    assert!(refused("logs-{kubernetes.namespace").contains("not closed"));
    assert!(refused("logs-}").contains("without"));
    assert!(refused("logs-{a{b}}").contains("not closed"));
}

#[test]
fn validate_rejects_bad_fallback() {
    assert!(refused("logs-{kubernetes.namespace|}").contains("empty"));
    assert!(refused("logs-{kubernetes.namespace|Shared}").contains("not allowed"));
    assert!(refused("logs-{kubernetes.namespace|a b}").contains("not allowed"));
    assert!(refused("logs-{kubernetes.namespace|a%Y}").contains("may not hold"));
    assert!(refused("logs-{kubernetes.namespace|a|b}").contains("not allowed"));
}

/// A file's route survives a restart as text: read back, it renders the same names, whatever
/// its values held (`%`, braces).
#[test]
fn a_resolved_pattern_reads_back_from_its_text() {
    let p = pattern("logs-{kubernetes.namespace}-{kubernetes.labels.app|none}-%Y.%m.%d");
    let v = Values::of(&[
        (Field::Namespace, "shop"),
        (Field::Label("app".into()), "we%b{x}"),
    ]);
    let r = p.resolve(&v, false);
    let back = IndexPattern::from_resolved(r.resolved_text()).expect("reads back");
    assert_eq!(back, r);
    assert_eq!(back.render(DAY), r.render(DAY));
    assert!(!back.is_routed());
    assert_eq!(IndexPattern::from_resolved("logs-%q"), None);
    assert_eq!(IndexPattern::from_resolved("logs-%"), None);
    assert_eq!(IndexPattern::from_resolved(""), None);
}
