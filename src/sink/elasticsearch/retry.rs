//! What to do with a bulk response: a pure function from (HTTP status, body) to per-item
//! outcomes, so every rule is unit-tested on real Elasticsearch responses.
//!
//! - 2xx: look at each item. `201`/`200` created; `409` on `create` = already there (a replay of
//!   an acknowledged event): delivered. `429`, `es_rejected_execution_exception` and 5xx items are
//!   retried alone. Any other 4xx item (mapping and parsing errors) goes to the dead-letter index.
//!   A `2xx` item with `"failure_store": "used"` (Elasticsearch 9.x with `failure_store: true`)
//!   was refused for its content and kept in the data stream's failure store: delivered.
//! - `413`, or `400` with Elasticsearch's JSON error, for the whole request: split the batch (a
//!   single item left: dead letter). A `400` in another shape comes from a proxy: retried.
//! - Everything else (429, 5xx, 401/403, connection errors, timeouts): retry the whole request
//!   with backoff, without limit. Logs must not be dropped because credentials expired.

use std::time::Duration;

use serde::Deserialize;

/// The fate of one bulk item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Created,
    /// Refused for its content, then written to the data stream's failure store (a `2xx` item
    /// answering `"failure_store": "used"`): kept, as a dead letter would be, so delivered.
    FailureStore,
    /// `409` on create: an earlier attempt (or an earlier run) already wrote it.
    Duplicate,
    Retry {
        status: u16,
        error_type: String,
    },
    DeadLetter {
        status: u16,
        error_type: String,
        reason: String,
    },
}

/// The fate of one bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    Items(Vec<ItemOutcome>),
    RetryAll { reason: String },
    Split { reason: String },
}

#[derive(Deserialize)]
struct BulkResponse {
    errors: bool,
    #[serde(default)]
    items: Vec<ItemWrapper>,
}

#[derive(Deserialize)]
struct ItemWrapper {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: ItemResult,
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
    /// `used` when the document went to the failure store; `not_enabled` / `failed` otherwise.
    #[serde(default)]
    failure_store: Option<FailureStoreStatus>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FailureStoreStatus {
    Used,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    caused_by: Option<Box<ItemError>>,
}

/// Decides what a response means for a request of `n_items` items.
pub fn classify(status: u16, body: &[u8], n_items: usize) -> RequestOutcome {
    match status {
        200..=299 => parse_items(body, n_items),
        413 => RequestOutcome::Split {
            reason: "413 request entity too large".into(),
        },
        // A 400 that is not Elasticsearch's JSON error comes from something in front of it (a
        // proxy refusing a missing client certificate, say): the documents are not at fault, so
        // splitting would end in dead letters. Retry it instead.
        400 if !is_es_error(body) => RequestOutcome::RetryAll {
            reason: format!("HTTP 400 not from Elasticsearch: {}", snippet(body)),
        },
        400 => RequestOutcome::Split {
            reason: format!("400 for the whole request: {}", snippet(body)),
        },
        _ => RequestOutcome::RetryAll {
            reason: format!("HTTP {status}: {}", snippet(body)),
        },
    }
}

fn parse_items(body: &[u8], n_items: usize) -> RequestOutcome {
    let resp: BulkResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return RequestOutcome::RetryAll {
                reason: format!("unreadable bulk response: {e}"),
            };
        }
    };
    if !resp.errors && resp.items.is_empty() {
        // Asked with a filter_path that dropped the items: all went in.
        return RequestOutcome::Items(vec![ItemOutcome::Created; n_items]);
    }
    if resp.items.len() != n_items {
        return RequestOutcome::RetryAll {
            reason: format!(
                "bulk response has {} items for {n_items} actions",
                resp.items.len()
            ),
        };
    }
    RequestOutcome::Items(
        resp.items
            .into_iter()
            .map(|w| item_outcome(w.create))
            .collect(),
    )
}

fn item_outcome(r: ItemResult) -> ItemOutcome {
    let (error_type, reason) = match r.error {
        Some(e) => {
            let reason = describe(&e);
            (e.kind, reason)
        }
        None => (String::new(), String::new()),
    };
    match r.status {
        200..=299 if r.failure_store == Some(FailureStoreStatus::Used) => ItemOutcome::FailureStore,
        200..=299 => ItemOutcome::Created,
        409 => ItemOutcome::Duplicate,
        429 | 500..=599 => ItemOutcome::Retry {
            status: r.status,
            error_type,
        },
        _ if error_type == "es_rejected_execution_exception" => ItemOutcome::Retry {
            status: r.status,
            error_type,
        },
        status => ItemOutcome::DeadLetter {
            status,
            error_type,
            reason,
        },
    }
}

fn describe(e: &ItemError) -> String {
    let mut s = e.reason.clone().unwrap_or_default();
    if let Some(c) = &e.caused_by {
        s.push_str(" (caused by ");
        s.push_str(&c.kind);
        s.push_str(": ");
        s.push_str(c.reason.as_deref().unwrap_or(""));
        s.push(')');
    }
    s
}

/// Whether a body is Elasticsearch's (or OpenSearch's) error object: `{"error": …}`.
fn is_es_error(body: &[u8]) -> bool {
    // Only on the rare whole-request 400: a Value is fine here.
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("error").is_some())
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)]);
    s.replace('\n', " ")
}

/// Exponential backoff with jitter, capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            attempt: 0,
        }
    }

    /// The next delay: `initial · 2^attempt`, capped at `max`, then scaled by a random factor in
    /// [0.5, 1) so that many agents do not retry in lockstep after an outage.
    pub fn next_delay(&mut self, unit_random: f64) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << self.attempt.min(20));
        self.attempt = self.attempt.saturating_add(1);
        exp.min(self.max)
            .mul_f64(0.5 + 0.5 * unit_random.clamp(0.0, 1.0))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes as Elasticsearch 8.x returns them.
    const MIXED: &str = r#"{"errors":true,"took":3,"items":[
      {"create":{"_index":"logs","_id":"a","_version":1,"result":"created","status":201}},
      {"create":{"_index":"logs","_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[b]: version conflict, document already exists (current version [1])"}}},
      {"create":{"_index":"logs","_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
      {"create":{"_index":"logs","_id":"d","status":400,"error":{"type":"document_parsing_exception","reason":"[1:40] failed to parse field [status] of type [keyword]","caused_by":{"type":"illegal_state_exception","reason":"Can't get text on a START_OBJECT"}}}},
      {"create":{"_index":"logs","_id":"e","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}
    ]}"#;

    #[test]
    fn each_item_gets_its_own_outcome() {
        let RequestOutcome::Items(items) = classify(200, MIXED.as_bytes(), 5) else {
            panic!("items expected")
        };
        assert_eq!(items[0], ItemOutcome::Created);
        assert_eq!(items[1], ItemOutcome::Duplicate);
        assert!(
            matches!(&items[2], ItemOutcome::Retry { status: 429, error_type } if error_type == "es_rejected_execution_exception")
        );
        match &items[3] {
            ItemOutcome::DeadLetter {
                status: 400,
                error_type,
                reason,
            } => {
                assert_eq!(error_type, "document_parsing_exception");
                assert!(reason.contains("START_OBJECT"), "{reason}");
            }
            other => panic!("dead letter expected, got {other:?}"),
        }
        assert!(matches!(items[4], ItemOutcome::Retry { status: 503, .. }));
    }

    #[test]
    fn rejected_execution_with_other_status_is_retried() {
        let body = r#"{"errors":true,"items":[{"index":{"status":400,"error":{"type":"es_rejected_execution_exception","reason":"x"}}}]}"#;
        assert!(
            matches!(classify(200, body.as_bytes(), 1), RequestOutcome::Items(v) if matches!(v[0], ItemOutcome::Retry { .. }))
        );
    }

    #[test]
    fn request_level_statuses() {
        assert!(matches!(
            classify(413, b"", 3),
            RequestOutcome::Split { .. }
        ));
        assert!(matches!(
            classify(400, b"{\"error\":\"bad\"}", 3),
            RequestOutcome::Split { .. }
        ));
        // Regression: nginx's 400 for a missing client certificate split batches into dead letters.
        assert!(matches!(
            classify(
                400,
                b"<html><h1>400 No required SSL certificate was sent</h1></html>",
                3
            ),
            RequestOutcome::RetryAll { .. }
        ));
        for s in [429, 500, 502, 503, 401, 403, 404] {
            assert!(
                matches!(classify(s, b"", 3), RequestOutcome::RetryAll { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn count_mismatch_or_garbage_is_retried_never_assumed_ok() {
        assert!(matches!(
            classify(200, br#"{"errors":true,"items":[]}"#, 2),
            RequestOutcome::RetryAll { .. }
        ));
        assert!(matches!(
            classify(200, b"<html>proxy error</html>", 2),
            RequestOutcome::RetryAll { .. }
        ));
    }

    /// Elasticsearch 9.x with the failure store enabled on the data stream: a mapping conflict is
    /// answered 201 with `failure_store: used` (and `errors: false`); a failure elsewhere says
    /// `not_enabled` next to its error. Shape as documented for 9.1 ("Failure store").
    #[test]
    fn failure_store_used_is_delivered_and_told_apart() {
        let body = br#"{"errors":true,"took":3,"items":[
          {"create":{"_index":".ds-logs-k8s-default-2026.12.03-000001","_id":"a","_version":1,"result":"created","status":201}},
          {"create":{"_index":".fs-logs-k8s-default-2026.12.03-000002","_id":"b","_version":1,"result":"created","status":201,"failure_store":"used"}},
          {"create":{"_index":"other","_id":"c","status":400,"error":{"type":"document_parsing_exception","reason":"x"},"failure_store":"not_enabled"}}
        ]}"#;
        let RequestOutcome::Items(items) = classify(200, body, 3) else {
            panic!("items expected")
        };
        assert_eq!(items[0], ItemOutcome::Created);
        assert_eq!(items[1], ItemOutcome::FailureStore);
        assert!(matches!(
            items[2],
            ItemOutcome::DeadLetter { status: 400, .. }
        ));
        // As the agent asks for it (service::FILTER keeps items.*.failure_store).
        let filtered = br#"{"errors":false,"items":[{"create":{"status":201,"failure_store":"used"}},{"create":{"status":201}}]}"#;
        assert_eq!(
            classify(200, filtered, 2),
            RequestOutcome::Items(vec![ItemOutcome::FailureStore, ItemOutcome::Created])
        );
    }

    #[test]
    fn filtered_success_counts_every_item() {
        assert_eq!(
            classify(200, br#"{"errors":false}"#, 3),
            RequestOutcome::Items(vec![ItemOutcome::Created; 3])
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(200));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(200));
        for _ in 0..10 {
            b.next_delay(1.0);
        }
        assert_eq!(b.next_delay(1.0), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
    }
}
