//! The live tap (`/tap`, `sluice tap`): copies of the documents the encoder writes, for the few
//! clients watching, filtered by namespace, pod, container and a substring, sampled and
//! limited. It must never slow the pipeline: the encoder pays one relaxed load per event while
//! nobody watches, and while someone does, a copy into a bounded channel that drops (and counts)
//! when the client reads too slowly. Imports nothing of the crate.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

/// How many taps may watch at once (each costs the encoder a copy per matching event).
pub const MAX_TAPS: usize = 4;
/// Documents waiting for one slow client before the tap drops.
const QUEUE: usize = 512;

/// What a file's events are, for the filters: decided once per file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// What one client asked for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    /// Bytes the encoded document must contain (searched in its JSON).
    pub grep: Option<Vec<u8>>,
    /// Every n-th matching document is sent (1: all).
    pub every: u64,
}

impl Filter {
    fn wants(&self, src: &Source) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.namespace, &src.namespace)
            && is(&self.pod, &src.pod)
            && is(&self.container, &src.container)
    }
}

struct Sub {
    filter: Filter,
    tx: mpsc::Sender<Vec<u8>>,
    matched: AtomicU64,
    dropped: AtomicU64,
}

/// The taps watching now. Shared by the encoder (which offers) and the telemetry server
/// (which subscribes and streams).
pub struct Tap {
    watching: AtomicUsize,
    subs: Mutex<Vec<Arc<Sub>>>,
    sent: Counter,
    dropped: Counter,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("watching", &self.watching.load(Ordering::Relaxed))
            .finish()
    }
}

/// Refused: too many taps at once.
#[derive(Debug, thiserror::Error)]
#[error("{MAX_TAPS} taps are watching already")]
pub struct Busy;

impl Tap {
    /// `sent` and `dropped` count documents over all taps (`sluice_tap_documents_total`).
    pub fn new(sent: Counter, dropped: Counter) -> Tap {
        Tap {
            watching: AtomicUsize::new(0),
            subs: Mutex::new(Vec::new()),
            sent,
            dropped,
        }
    }

    /// Whether anyone watches: the encoder's only cost per event while nobody does.
    #[inline]
    pub fn active(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// One encoded event (`action` and `doc` lines, as in the bulk body) of a file of `src`.
    /// Never blocks on a client: a full queue drops the copy and counts it.
    pub fn offer(&self, src: &Source, bulk_lines: &[u8], doc: &[u8]) {
        let subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        for s in subs.iter() {
            if !s.filter.wants(src) {
                continue;
            }
            if let Some(g) = &s.filter.grep
                && memchr::memmem::find(doc, g).is_none()
            {
                continue;
            }
            let n = s.matched.fetch_add(1, Ordering::Relaxed);
            if n % s.filter.every.max(1) != 0 {
                continue;
            }
            match s.tx.try_send(bulk_lines.to_vec()) {
                Ok(()) => {
                    self.sent.inc();
                }
                Err(_) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    self.dropped.inc();
                }
            }
        }
    }

    /// Starts watching with `filter`; the watch ends when the subscription is dropped.
    pub fn subscribe(self: &Arc<Self>, filter: Filter) -> Result<Subscription, Busy> {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        if subs.len() >= MAX_TAPS {
            return Err(Busy);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let sub = Arc::new(Sub {
            filter,
            tx,
            matched: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        subs.push(sub.clone());
        self.watching.store(subs.len(), Ordering::Relaxed);
        Ok(Subscription {
            rx,
            sub,
            tap: self.clone(),
        })
    }
}

/// One client's watch: the copies offered to it, and how many it missed.
pub struct Subscription {
    pub rx: mpsc::Receiver<Vec<u8>>,
    sub: Arc<Sub>,
    tap: Arc<Tap>,
}

impl Subscription {
    /// Documents dropped because this client read too slowly, so far.
    pub fn dropped(&self) -> u64 {
        self.sub.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self.tap.subs.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| !Arc::ptr_eq(s, &self.sub));
        self.tap.watching.store(subs.len(), Ordering::Relaxed);
    }
}

/// The line a client receives for one offered copy: `{"_index":…,"_id":…,"_source":{…}}`,
/// from the `create` action and the document as the bulk body holds them.
pub fn render(bulk_lines: &[u8]) -> Option<Vec<u8>> {
    let nl = memchr::memchr(b'\n', bulk_lines)?;
    let action: serde_json::Value = serde_json::from_slice(&bulk_lines[..nl]).ok()?;
    let meta = action.get("create")?;
    let doc = bulk_lines[nl + 1..]
        .strip_suffix(b"\n")
        .unwrap_or(&bulk_lines[nl + 1..]);
    let mut out = Vec::with_capacity(doc.len() + 96);
    out.extend_from_slice(b"{\"_index\":");
    serde_json::to_writer(&mut out, meta.get("_index")?).ok()?;
    out.extend_from_slice(b",\"_id\":");
    serde_json::to_writer(&mut out, meta.get("_id")?).ok()?;
    out.extend_from_slice(b",\"_source\":");
    out.extend_from_slice(doc);
    out.extend_from_slice(b"}\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap() -> Arc<Tap> {
        Arc::new(Tap::new(Counter::default(), Counter::default()))
    }

    fn src(ns: &str, pod: &str) -> Source {
        Source {
            namespace: ns.into(),
            pod: pod.into(),
            container: "c".into(),
        }
    }

    const LINES: &[u8] =
        b"{\"create\":{\"_index\":\"logs\",\"_id\":\"abc\"}}\n{\"message\":\"hello\"}\n";

    #[test]
    fn inactive_until_subscribed_and_again_after_the_drop() {
        let t = tap();
        assert!(!t.active());
        let s = t.subscribe(Filter::default()).unwrap();
        assert!(t.active());
        drop(s);
        assert!(!t.active());
    }

    #[test]
    fn filters_by_namespace_pod_and_substring() {
        let t = tap();
        let mut s = t
            .subscribe(Filter {
                namespace: Some("a".into()),
                grep: Some(b"hello".to_vec()),
                every: 1,
                ..Filter::default()
            })
            .unwrap();
        t.offer(&src("b", "p"), LINES, b"{\"message\":\"hello\"}");
        t.offer(&src("a", "p"), LINES, b"{\"message\":\"bye\"}");
        t.offer(&src("a", "p"), LINES, b"{\"message\":\"hello\"}");
        assert_eq!(s.rx.try_recv().unwrap(), LINES);
        assert!(s.rx.try_recv().is_err(), "only the matching document");
    }

    #[test]
    fn samples_every_nth_match() {
        let t = tap();
        let mut s = t
            .subscribe(Filter {
                every: 3,
                ..Filter::default()
            })
            .unwrap();
        for _ in 0..9 {
            t.offer(&src("a", "p"), LINES, b"{}");
        }
        let mut n = 0;
        while s.rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn a_slow_client_loses_copies_counted_and_never_blocks() {
        let t = tap();
        let s = t
            .subscribe(Filter {
                every: 1,
                ..Filter::default()
            })
            .unwrap();
        for _ in 0..QUEUE + 10 {
            t.offer(&src("a", "p"), LINES, b"{}");
        }
        assert_eq!(s.dropped(), 10);
        assert_eq!(t.dropped.get(), 10);
        assert_eq!(t.sent.get(), QUEUE as u64);
    }

    #[test]
    fn at_most_max_taps() {
        let t = tap();
        let held: Vec<_> = (0..MAX_TAPS)
            .map(|_| t.subscribe(Filter::default()).unwrap())
            .collect();
        assert!(t.subscribe(Filter::default()).is_err());
        drop(held);
        assert!(t.subscribe(Filter::default()).is_ok());
    }

    #[test]
    fn renders_index_id_and_source() {
        assert_eq!(
            render(LINES).unwrap(),
            b"{\"_index\":\"logs\",\"_id\":\"abc\",\"_source\":{\"message\":\"hello\"}}\n"
        );
        assert!(render(b"not json\n{}\n").is_none());
    }
}
