//! Route53: list every record set of a hosted zone (following every page — the Go service's
//! first versions read only the first 300 records) and select host names by suffix.
//!
//! The selection ([`select_names`]) is pure; only [`list_records`] talks to AWS.

use std::collections::{BTreeSet, HashSet};

use aws_sdk_route53::types::RrType;

/// One record set, reduced to what the selection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// As Route53 returns it: absolute (trailing dot), special characters octal-escaped.
    pub name: String,
    pub record_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Route53Error {
    #[error("route53:ListResourceRecordSets on zone {zone_id} (page {page}): {message}")]
    List {
        zone_id: String,
        page: usize,
        message: String,
    },
    #[error(
        "route53:ListResourceRecordSets on zone {zone_id}: page {page} is truncated but has no next record name"
    )]
    BrokenPaging { zone_id: String, page: usize },
    #[error(
        "route53:ListResourceRecordSets on zone {zone_id}: more than {max} pages, giving up (paging loop?)"
    )]
    TooManyPages { zone_id: String, max: usize },
}

/// Hard limit against a paging loop; 10 000 pages of 300 are 3 million records.
const MAX_PAGES: usize = 10_000;

/// Lists every record set of `zone_id`, following `NextRecordName`/`Type`/`Identifier` until
/// the answer is no longer truncated.
pub async fn list_records(
    client: &aws_sdk_route53::Client,
    zone_id: &str,
) -> Result<Vec<Record>, Route53Error> {
    let mut records = Vec::new();
    let mut next: Option<(String, Option<RrType>, Option<String>)> = None;
    for page in 1..=MAX_PAGES {
        let mut req = client.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, rtype, ident)) = next.take() {
            req = req
                .start_record_name(name)
                .set_start_record_type(rtype)
                .set_start_record_identifier(ident);
        }
        let out = req.send().await.map_err(|e| Route53Error::List {
            zone_id: zone_id.to_string(),
            page,
            message: aws_sdk_route53::error::DisplayErrorContext(&e).to_string(),
        })?;
        records.extend(out.resource_record_sets().iter().map(|r| Record {
            name: r.name().to_string(),
            record_type: r.r#type().as_str().to_string(),
        }));
        if !out.is_truncated() {
            tracing::debug!(
                zone_id,
                pages = page,
                records = records.len(),
                "listed hosted zone"
            );
            return Ok(records);
        }
        let name = out
            .next_record_name()
            .ok_or_else(|| Route53Error::BrokenPaging {
                zone_id: zone_id.to_string(),
                page,
            })?;
        next = Some((
            name.to_string(),
            out.next_record_type().cloned(),
            out.next_record_identifier().map(str::to_string),
        ));
    }
    Err(Route53Error::TooManyPages {
        zone_id: zone_id.to_string(),
        max: MAX_PAGES,
    })
}

/// Which records become targets.
#[derive(Debug, Clone)]
pub struct NameFilter<'a> {
    /// Lower case, starts and ends with `.` (see `config::record_suffix`).
    pub suffix: &'a str,
    /// Lower-case absolute names that are never selected.
    pub exclude: &'a BTreeSet<String>,
}

/// Record types that name a host. TXT, MX, SRV, NS, SOA, … are never targets.
const HOST_TYPES: &[&str] = &["A", "AAAA", "CNAME"];

/// Selects the host names (lower case, absolute) under `filter.suffix`: only A/AAAA/CNAME
/// records, not the suffix itself, no names whose first label starts with `_`
/// (`_acme-challenge`, service records), no wildcards or other escaped names, nothing in
/// `exclude`. Each name once (A + AAAA of one host are one target), sorted.
pub fn select_names(records: &[Record], filter: &NameFilter<'_>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut names: Vec<String> = records
        .iter()
        .filter(|r| HOST_TYPES.contains(&r.record_type.as_str()))
        .filter_map(|r| {
            let name = r.name.to_ascii_lowercase();
            let name = if name.ends_with('.') {
                name
            } else {
                format!("{name}.")
            };
            // Route53 escapes `*` and other non-hostname characters as `\NNN`.
            let selected = name.len() > filter.suffix.len()
                && name.ends_with(filter.suffix)
                && !name.starts_with('_')
                && !name.contains('\\')
                && !filter.exclude.contains(&name);
            selected.then_some(name)
        })
        .filter(|n| seen.insert(n.clone()))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, t: &str) -> Record {
        Record {
            name: name.into(),
            record_type: t.into(),
        }
    }

    const SUFFIX: &str = ".prometheus.internal.";

    #[test]
    fn selects_hosts_under_the_suffix() {
        let none = BTreeSet::new();
        let records = vec![
            rec("prometheus.internal.", "SOA"),
            rec("prometheus.internal.", "NS"),
            rec("b-cluster.prometheus.internal.", "A"),
            rec("a-cluster.prometheus.internal.", "CNAME"),
            rec("a-cluster.prometheus.internal.", "AAAA"),
            rec("a-cluster.prometheus.internal.", "TXT"),
            rec("txt-only.prometheus.internal.", "TXT"),
            rec("other.example.internal.", "A"),
            rec("xprometheus.internal.", "A"),
        ];
        let names = select_names(
            &records,
            &NameFilter {
                suffix: SUFFIX,
                exclude: &none,
            },
        );
        assert_eq!(
            names,
            vec![
                "a-cluster.prometheus.internal.",
                "b-cluster.prometheus.internal."
            ]
        );
    }

    #[test]
    fn skips_underscore_wildcard_and_excluded_names() {
        let exclude: BTreeSet<String> = ["www.inst.example.".to_string()].into();
        let records = vec![
            rec("_acme-challenge.foo.inst.example.", "CNAME"),
            rec("\\052.inst.example.", "A"),
            rec("www.inst.example.", "A"),
            rec("Foo.Inst.Example.", "A"),
        ];
        let names = select_names(
            &records,
            &NameFilter {
                suffix: ".inst.example.",
                exclude: &exclude,
            },
        );
        assert_eq!(names, vec!["foo.inst.example."]);
    }

    #[test]
    fn regression_multiple_pages_are_all_selected() {
        // The Go service read only the first page; selection itself must not cap anything.
        let none = BTreeSet::new();
        let records: Vec<_> = (0..1000)
            .map(|i| rec(&format!("c{i:04}.prometheus.internal."), "A"))
            .collect();
        assert_eq!(
            select_names(
                &records,
                &NameFilter {
                    suffix: SUFFIX,
                    exclude: &none
                }
            )
            .len(),
            1000
        );
    }
}
