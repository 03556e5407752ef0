//! Counters and gauges, one registry per agent. Names follow Prometheus conventions
//! (`sluice_*_total` for counters) so users can alert on them directly.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

/// A tenant as the read scheduler sees it (`input.rate_limit.key`, else `input.fairness`): at
/// most `reader::fair::LABELLED_KEYS` values, the rest summed as `other`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Tenant {
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Resource {
    pub resource: &'static str,
}

/// The `resource` values of the Kubernetes watch metrics: what `kubernetes::watch` watches.
pub const KUBE_RESOURCES: [&str; 2] = ["pods", "namespaces"];

/// Every metric the agent exports.
pub struct Metrics {
    pub registry: Registry,
    pub lines_read: Counter,
    pub bytes_read: Counter,
    pub events_encoded: Counter,
    pub events_delivered: Counter,
    pub parse_errors: Counter,
    pub truncated: Counter,
    /// outcome: ok, retry, split, error (transport)
    pub bulk_requests: Family<Outcome, Counter>,
    /// outcome: created, duplicate, retried, dead_lettered, dead_letter_retried, dead_letter_failed
    pub bulk_items: Family<Outcome, Counter>,
    pub bulk_duration: Histogram,
    pub batches_in_flight: Gauge,
    pub files_open: Gauge,
    pub files_rotated_open: Gauge,
    pub checkpoint_writes: Counter,
    pub checkpoint_errors: Counter,
    pub rotated_files_dropped: Counter,
    pub rotated_bytes_dropped: Counter,
    /// Rotated files compressed while the agent was down, read from their `.gz`.
    pub compressed_files_read: Counter,
    /// Such files that could not be decompressed (their unread lines are lost).
    pub compressed_files_failed: Counter,
    /// Rotated files whose events in progress at their end were continued by the new file.
    pub rotation_joins: Counter,
    /// Kubernetes watching is on but the event went out with path metadata only.
    pub events_without_metadata: Counter,
    /// Dropped by a `sluice.io/exclude*` annotation.
    pub events_excluded: Counter,
    /// resource: pods, namespaces (`KUBE_RESOURCES`)
    pub kube_watch_errors: Family<Resource, Counter>,
    /// Completed (re-)lists: one at start, one after each watch that could not be resumed. A
    /// list that fails counts as an error only, so "errors and no restart" means no fresh list.
    pub kube_watch_restarts: Family<Resource, Counter>,
    pub kube_pods_cached: Gauge,
    /// Seconds a key's read budget was spent while its files had data (the files read later).
    pub read_throttled_seconds: Family<Tenant, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Bytes written to log files and not read yet, per key (the biggest keys; the rest `other`).
    pub read_bytes_behind: Family<Tenant, Gauge>,
    /// How long the file furthest behind on this node has had unread bytes.
    pub oldest_unread_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `sluice.io/rate-limit` annotations that are not a size (ignored; one per pod or namespace).
    pub rate_limit_annotations_invalid: Counter,
    /// Configured Elasticsearch endpoints, and those not backing off after a failure.
    pub es_endpoints: Gauge,
    pub es_endpoints_healthy: Gauge,
    /// outcome: sent, dropped (`sluice tap`: copies sent to tap clients, or dropped because a
    /// client read too slowly).
    pub tap_documents: Family<Outcome, Counter>,
    /// Distinct index names documents were encoded for since start (routing; bounded).
    pub indices_written: Gauge,
    /// outcome: applied, unchanged, invalid, refused (`RELOAD_OUTCOMES`)
    pub config_reloads: Family<Outcome, Counter>,
}

/// The `outcome` values of `sluice_config_reloads_total`.
pub const RELOAD_OUTCOMES: [&str; 4] = ["applied", "unchanged", "invalid", "refused"];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sluice");
        let m = Metrics {
            lines_read: Counter::default(),
            bytes_read: Counter::default(),
            events_encoded: Counter::default(),
            events_delivered: Counter::default(),
            parse_errors: Counter::default(),
            truncated: Counter::default(),
            bulk_requests: Family::default(),
            config_reloads: Family::default(),
            bulk_items: Family::default(),
            bulk_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            batches_in_flight: Gauge::default(),
            files_open: Gauge::default(),
            files_rotated_open: Gauge::default(),
            checkpoint_writes: Counter::default(),
            checkpoint_errors: Counter::default(),
            rotated_files_dropped: Counter::default(),
            rotation_joins: Counter::default(),
            rotated_bytes_dropped: Counter::default(),
            compressed_files_read: Counter::default(),
            compressed_files_failed: Counter::default(),
            events_without_metadata: Counter::default(),
            events_excluded: Counter::default(),
            kube_watch_errors: Family::default(),
            kube_watch_restarts: Family::default(),
            kube_pods_cached: Gauge::default(),
            es_endpoints: Gauge::default(),
            es_endpoints_healthy: Gauge::default(),
            tap_documents: Family::default(),
            read_throttled_seconds: Family::default(),
            read_bytes_behind: Family::default(),
            oldest_unread_age_seconds: Gauge::default(),
            rate_limit_annotations_invalid: Counter::default(),
            indices_written: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "lines_read",
            "Physical lines read from log files",
            m.lines_read.clone(),
        );
        registry.register(
            "bytes_read",
            "Bytes read from log files",
            m.bytes_read.clone(),
        );
        registry.register(
            "events_encoded",
            "Events encoded into bulk requests",
            m.events_encoded.clone(),
        );
        registry.register(
            "events_delivered",
            "Events acknowledged by Elasticsearch (created, already present, or dead-lettered)",
            m.events_delivered.clone(),
        );
        registry.register(
            "parse_errors",
            "Lines that were not valid CRI/docker records (shipped raw, tagged malformed)",
            m.parse_errors.clone(),
        );
        registry.register(
            "truncated_events",
            "Events cut at the configured maximum size (shipped, tagged truncated)",
            m.truncated.clone(),
        );
        registry.register(
            "bulk_requests",
            "Bulk requests by outcome",
            m.bulk_requests.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP or a change of the file) by outcome: applied; unchanged (same content); invalid (the file does not validate: the running configuration stays); refused (it changes a setting that needs a restart: nothing of it is applied)",
            m.config_reloads.clone(),
        );
        for outcome in RELOAD_OUTCOMES {
            let _ = m.config_reloads.get_or_create(&Outcome { outcome });
        }
        registry.register("bulk_items", "Bulk items by outcome", m.bulk_items.clone());
        registry.register(
            "bulk_request_duration_seconds",
            "Bulk request round-trip time",
            m.bulk_duration.clone(),
        );
        registry.register(
            "batches_in_flight",
            "Batches sent or being retried, not yet acknowledged",
            m.batches_in_flight.clone(),
        );
        registry.register(
            "files_open",
            "Log files open for reading",
            m.files_open.clone(),
        );
        registry.register(
            "files_rotated_open",
            "Rotated or deleted files still open to be read to their end",
            m.files_rotated_open.clone(),
        );
        registry.register(
            "checkpoint_writes",
            "Checkpoint files written",
            m.checkpoint_writes.clone(),
        );
        registry.register(
            "checkpoint_errors",
            "Checkpoint writes that failed",
            m.checkpoint_errors.clone(),
        );
        registry.register(
            "rotated_files_dropped",
            "Rotated files closed before being read to their end because input.max_rotated_files was reached",
            m.rotated_files_dropped.clone(),
        );
        registry.register(
            "compressed_files_read",
            "Rotated files compressed while the agent was down whose owed lines were read from the .gz",
            m.compressed_files_read.clone(),
        );
        registry.register(
            "compressed_files_failed",
            "Compressed rotated files owed lines that could not be decompressed (lines lost)",
            m.compressed_files_failed.clone(),
        );
        registry.register(
            "rotation_joins",
            "Rotated files whose partial lines or multiline groups in progress at their end were handed to the new file, to be joined with its first records",
            m.rotation_joins.clone(),
        );
        registry.register(
            "rotated_bytes_dropped",
            "Unread bytes of rotated files closed early (lost lines)",
            m.rotated_bytes_dropped.clone(),
        );
        registry.register(
            "read_throttled_seconds",
            "Seconds a key's read budget (input.rate_limit, sluice.io/rate-limit) held its files back while they had data; key: the budget's namespace, pod or container (20 keys, the rest as other)",
            m.read_throttled_seconds.clone(),
        );
        registry.register(
            "read_bytes_behind",
            "Bytes written to log files and not read yet, per key (the 20 keys furthest behind, the rest summed as other)",
            m.read_bytes_behind.clone(),
        );
        registry.register(
            "oldest_unread_age_seconds",
            "How long the file furthest behind on this node has had unread bytes (0: every file read to its end)",
            m.oldest_unread_age_seconds.clone(),
        );
        registry.register(
            "rate_limit_annotations_invalid",
            "sluice.io/rate-limit annotations that are not a size of at least 1KiB (ignored; counted once per pod or namespace)",
            m.rate_limit_annotations_invalid.clone(),
        );
        registry.register(
            "events_without_metadata",
            "Events shipped with path metadata only although Kubernetes watching is on (pod not seen in time, API server unreachable)",
            m.events_without_metadata.clone(),
        );
        registry.register(
            "events_excluded",
            "Events dropped by a sluice.io/exclude or sluice.io/exclude-containers pod annotation",
            m.events_excluded.clone(),
        );
        registry.register(
            "kubernetes_watch_errors",
            "Failed Kubernetes list/watch calls by resource (each is retried with backoff)",
            m.kube_watch_errors.clone(),
        );
        registry.register(
            "kubernetes_watch_restarts",
            "Completed Kubernetes (re-)lists by resource: one at start, one per watch that could not be resumed",
            m.kube_watch_restarts.clone(),
        );
        // Both families are exported at 0 from the start (like the plain counters), so
        // `increase()` sees the first error and an agent that never listed has a series at 0.
        for resource in KUBE_RESOURCES {
            // `get_or_create` creates the series; its guard is not needed.
            drop(m.kube_watch_errors.get_or_create(&Resource { resource }));
            drop(m.kube_watch_restarts.get_or_create(&Resource { resource }));
        }
        registry.register(
            "kubernetes_pods_cached",
            "Pods of this node in the metadata cache (deleted ones included during their grace period)",
            m.kube_pods_cached.clone(),
        );
        registry.register(
            "elasticsearch_endpoints",
            "Configured Elasticsearch endpoints (elasticsearch.endpoints)",
            m.es_endpoints.clone(),
        );
        registry.register(
            "elasticsearch_endpoints_healthy",
            "Elasticsearch endpoints taking requests: not backing off after a failure (a failed endpoint is probed before it is used again)",
            m.es_endpoints_healthy.clone(),
        );
        registry.register(
            "tap_documents",
            "Copies of shipped documents sent to `sluice tap` clients (outcome=sent), or dropped because a client read too slowly (outcome=dropped); the pipeline never waits for a tap",
            m.tap_documents.clone(),
        );
        // Exported from the start (0), not only once a tap has watched.
        for outcome in ["sent", "dropped"] {
            let _ = m.tap_documents.get_or_create(&Outcome { outcome });
        }
        // The per-key families always hold `other` (at zero until keys overflow), so they are
        // exported, with their help text, before any key is throttled or behind.
        let other = Tenant {
            key: "other".to_string(),
        };
        m.read_throttled_seconds.get_or_create(&other).inc_by(0.0);
        m.read_bytes_behind.get_or_create(&other).set(0);
        registry.register(
            "indices_written",
            "Distinct index names this agent has written documents to since it started (counted up to 10,000); with a routed elasticsearch.index, watch it for shard counts",
            m.indices_written.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn tap(&self, outcome: &'static str) -> Counter {
        self.tap_documents
            .get_or_create(&Outcome { outcome })
            .clone()
    }

    pub fn item(&self, outcome: &'static str) -> Counter {
        self.bulk_items.get_or_create(&Outcome { outcome }).clone()
    }

    pub fn reload(&self, outcome: &'static str) -> Counter {
        self.config_reloads
            .get_or_create(&Outcome { outcome })
            .clone()
    }

    pub fn request(&self, outcome: &'static str) -> Counter {
        self.bulk_requests
            .get_or_create(&Outcome { outcome })
            .clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encode into String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_watch_series_are_exported_at_zero_before_any_watch() {
        let text = Metrics::new().render();
        for resource in KUBE_RESOURCES {
            for name in ["errors", "restarts"] {
                let sample =
                    format!("sluice_kubernetes_watch_{name}_total{{resource=\"{resource}\"}} 0\n");
                assert!(text.contains(&sample), "{sample} missing from:\n{text}");
            }
        }
    }

    #[test]
    fn reload_outcomes_are_exported_at_zero_before_any_reload() {
        let text = Metrics::new().render();
        for outcome in RELOAD_OUTCOMES {
            let sample = format!("sluice_config_reloads_total{{outcome=\"{outcome}\"}} 0\n");
            assert!(text.contains(&sample), "{sample} missing from:\n{text}");
        }
    }
}
