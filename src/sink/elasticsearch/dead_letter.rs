//! Refused items on their way to the dead-letter index: the dead-letter document (the original
//! as a string, its source, the error) and what the sink's work list needs to write them. It
//! decides nothing about retries (that is `retry` and the work list in `sink`) and is off the
//! hot path: it runs only for documents Elasticsearch refused.

use bytes::Bytes;

use super::sink::{Labels, Write};
use super::{Batch, IndexPattern, encode, route};
use crate::telemetry::Metrics;

/// A refused item on its way to the dead-letter index.
pub struct Refused {
    pub item: usize,
    pub status: u16,
    pub error_type: String,
    pub reason: String,
}

/// The refused items of one batch as dead-letter documents, for the work list.
pub struct ToDeadLetter<'a> {
    batch: &'a Batch,
    index: &'a IndexPattern,
    metrics: &'a Metrics,
    refused: Vec<Refused>,
    /// Each item's encoded action and document.
    docs: Vec<Vec<u8>>,
    /// Each item's cap on `event.original` and `message`, in bytes: at first the original's
    /// whole length.
    caps: Vec<usize>,
}

impl<'a> ToDeadLetter<'a> {
    pub fn new(
        batch: &'a Batch,
        index: &'a IndexPattern,
        metrics: &'a Metrics,
        refused: Vec<Refused>,
    ) -> ToDeadLetter<'a> {
        let mut docs = Vec::with_capacity(refused.len());
        let mut caps = Vec::with_capacity(refused.len());
        for r in &refused {
            tracing::warn!(status = r.status, error_type = %r.error_type, reason = %r.reason, "document refused; writing it to the dead-letter index");
            let mut doc = Vec::new();
            caps.push(dead_letter_item(&mut doc, index, batch, r, usize::MAX));
            docs.push(doc);
        }
        ToDeadLetter {
            batch,
            index,
            metrics,
            refused,
            docs,
            caps,
        }
    }
}

impl Write for ToDeadLetter<'_> {
    const LABELS: Labels = Labels {
        what: "dead-letter",
        created: "dead_lettered",
        // Written by an earlier attempt (same `_id`, `create`): in the dead-letter index.
        duplicate: "dead_lettered",
        retried: "dead_letter_retried",
        // The dead-letter index is no data stream; were it one with a failure store, kept there.
        failure_store: "dead_lettered",
    };

    fn items(&self) -> usize {
        self.docs.len()
    }

    fn body(&self, group: &[usize]) -> Bytes {
        let mut body = Vec::with_capacity(group.iter().map(|&i| self.docs[i].len()).sum());
        for &i in group {
            body.extend_from_slice(&self.docs[i]);
        }
        Bytes::from(body)
    }

    /// The dead-letter index refuses it too: the one place a line is lost, so an error, counted.
    fn refused(&mut self, i: usize, status: u16, error_type: String, reason: String) {
        self.metrics.item("dead_letter_failed").inc();
        let r = &self.refused[i];
        tracing::error!(
            status,
            %error_type,
            %reason,
            target_status = r.status,
            target_error = %r.error_type,
            "the dead-letter index refused a document; it is lost"
        );
    }

    /// A dead-letter document carries its original whole, so it can be too large where the
    /// original was not: halve `event.original` (and `message`) until it fits, marking it
    /// `sluice.original_truncated`. Bounded: the cap halves each time, and at 0 it is a loss.
    fn too_large(&mut self, i: usize, reason: String) -> bool {
        if self.caps[i] == 0 {
            self.metrics.item("dead_letter_failed").inc();
            tracing::error!(%reason, "a dead-letter document is refused as too large even without its original; it is lost");
            return false;
        }
        self.caps[i] /= 2;
        let mut doc = Vec::new();
        let full = dead_letter_item(
            &mut doc,
            self.index,
            self.batch,
            &self.refused[i],
            self.caps[i],
        );
        tracing::warn!(%reason, original_bytes = full, kept_bytes = self.caps[i], "dead-letter document too large; truncating its event.original");
        self.docs[i] = doc;
        true
    }
}

/// The first `cap` bytes of `s` at most, cut at a character boundary.
fn cut(s: &str, cap: usize) -> &str {
    if s.len() <= cap {
        return s;
    }
    let mut k = cap;
    // At most 3 steps back: a UTF-8 character is at most 4 bytes.
    while !s.is_char_boundary(k) {
        k -= 1;
    }
    &s[..k]
}

/// Appends the `create` action and dead-letter document for `r`, with `event.original` and
/// `message` cut to `cap` bytes; returns the original's whole length.
fn dead_letter_item(
    body: &mut Vec<u8>,
    index: &IndexPattern,
    batch: &Batch,
    r: &Refused,
    cap: usize,
) -> usize {
    let action: serde_json::Value = serde_json::from_slice(
        &batch.body[batch.items[r.item].start as usize..batch.items[r.item].doc as usize],
    )
    .unwrap_or(serde_json::Value::Null);
    let doc_bytes = batch.item_doc(r.item);
    let original = String::from_utf8_lossy(doc_bytes.strip_suffix(b"\n").unwrap_or(doc_bytes));
    let doc: serde_json::Value = serde_json::from_str(&original).unwrap_or(serde_json::Value::Null);
    let ts = doc["@timestamp"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            let mut v = Vec::new();
            encode::format_rfc3339(std::time::SystemTime::now(), &mut v);
            String::from_utf8_lossy(&v).into_owned()
        });
    let date = crate::parse::timestamp::utc_date(ts.as_bytes()).unwrap_or((1970, 1, 1));
    let truncated = original.len() > cap;
    let message = match &doc["message"] {
        serde_json::Value::String(m) => serde_json::Value::from(cut(m, cap)),
        other => other.clone(),
    };
    let mut dl = serde_json::json!({
        "@timestamp": ts,
        "message": message,
        "error": { "type": r.error_type, "message": r.reason, "code": r.status.to_string() },
        "event": { "original": cut(&original, cap) },
        "log": { "file": { "path": doc["log"]["file"]["path"] }, "offset": doc["log"]["offset"] },
        "kubernetes": { "namespace": doc["kubernetes"]["namespace"], "pod": { "name": doc["kubernetes"]["pod"]["name"] },
                        "container": { "name": doc["kubernetes"]["container"]["name"] } },
        "host": { "name": doc["host"]["name"] },
        "sluice": { "target_index": action["create"]["_index"] },
    });
    if truncated {
        dl["sluice"]["original_truncated"] = true.into();
        dl["sluice"]["original_bytes"] = original.len().into();
    }
    let head = serde_json::json!({ "create": { "_index": index.resolve(&route::DocumentLookup(&doc), false).render(date), "_id": action["create"]["_id"] } });
    // Serializing a Value into a Vec cannot fail.
    serde_json::to_writer(&mut *body, &head).expect("serialize into Vec");
    body.push(b'\n');
    serde_json::to_writer(&mut *body, &dl).expect("serialize into Vec");
    body.push(b'\n');
    original.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("é", 0), "");
    }
}
