//! The sink chain, readable in one screen: take sealed batches, keep up to `max_in_flight`
//! requests going, settle every item (retry alone what can be retried, dead-letter what
//! Elasticsearch refuses, and settle the dead letters the same way), and only then acknowledge
//! the batch to delivery.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::dead_letter::{Refused, ToDeadLetter};
use super::retry::{Backoff, ItemOutcome, RequestOutcome};
use super::service::Service;
use super::{Batch, BatchPool};
use super::{IndexPattern, retry};
use crate::delivery::Delivery;
use crate::telemetry::Metrics;

pub struct Sink {
    /// The output of the configuration in force (a reload replaces it): every request goes
    /// through its client.
    pub output: tokio::sync::watch::Receiver<Arc<Output>>,
    pub delivery: Arc<Mutex<Delivery>>,
    pub metrics: Arc<Metrics>,
    pub max_in_flight: usize,
    /// Settled batches go back here for the reader to fill again.
    pub pool: Arc<BatchPool>,
}

/// Where and how batches are delivered, from one configuration. The reader stamps every batch
/// it seals with the one in force ([`Batch::output`]): what the batch was encoded for stays
/// with it across a reload (its documents' indices are in its body; its dead letters go to
/// that configuration's dead-letter index). The connection does not: every request, a retry
/// included, goes through the client in force, so a credentials rotation that revokes the old
/// ones, or an endpoint taken away, never strands a batch sealed before the reload (its ids
/// are fixed and written with `create`: the new endpoints store it once).
#[derive(Debug)]
pub struct Output {
    pub service: Arc<Service>,
    pub dead_letter_index: IndexPattern,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Output {
    /// The output `es` describes, its client built (TLS files read) and its endpoints exported
    /// to the health gauges.
    pub fn new(
        es: &super::config::ElasticsearchConfig,
        metrics: &Metrics,
    ) -> Result<Output, super::service::ServiceError> {
        let service = Service::new(es)?
            .with_health_gauges(&metrics.es_endpoints, metrics.es_endpoints_healthy.clone());
        Ok(Output {
            service: Arc::new(service),
            dead_letter_index: es.dead_letter_index.clone(),
            initial_backoff: es.initial_backoff,
            max_backoff: es.max_backoff,
        })
    }
}

/// Outcome labels of `sluice_bulk_items_total` for one kind of write, and its name in logs.
pub struct Labels {
    /// The `write` field of the log lines: `bulk` or `dead-letter`.
    pub what: &'static str,
    pub created: &'static str,
    pub duplicate: &'static str,
    pub retried: &'static str,
    /// Kept in the data stream's failure store instead (Elasticsearch 9.x, `failure_store: true`).
    pub failure_store: &'static str,
}

/// One kind of write the work list drives: a batch to its target index, or its refused items to
/// the dead-letter index. The work list sends, retries and splits; this says what a request for
/// some items holds and what becomes of an item refused for good.
pub trait Write {
    const LABELS: Labels;
    fn items(&self) -> usize;
    /// The request body for these items (indices into this write's items).
    fn body(&self, group: &[usize]) -> Bytes;
    /// Item `i` was refused for its content (a per-item 4xx other than 409).
    fn refused(&mut self, i: usize, status: u16, error_type: String, reason: String);
    /// Item `i`, sent alone, was refused as too large (413, or a 400 for the whole request):
    /// whether it was made smaller and is to be sent again.
    fn too_large(&mut self, i: usize, reason: String) -> bool;
}

/// A batch to its target index: refused items are collected for the dead-letter index.
struct ToTarget<'a> {
    batch: &'a Arc<Batch>,
    refused: Vec<Refused>,
}

impl Write for ToTarget<'_> {
    const LABELS: Labels = Labels {
        what: "bulk",
        created: "created",
        duplicate: "duplicate",
        retried: "retried",
        failure_store: "failure_store",
    };

    fn items(&self) -> usize {
        self.batch.items.len()
    }

    fn body(&self, group: &[usize]) -> Bytes {
        if group.len() == self.batch.items.len() {
            return Bytes::from_owner(BatchBody(self.batch.clone()));
        }
        let mut part = Vec::new();
        for &i in group {
            part.extend_from_slice(self.batch.item_bytes(i));
        }
        Bytes::from(part)
    }

    fn refused(&mut self, item: usize, status: u16, error_type: String, reason: String) {
        self.refused.push(Refused {
            item,
            status,
            error_type,
            reason,
        });
    }

    fn too_large(&mut self, item: usize, reason: String) -> bool {
        self.refused(item, 413, "request_refused".into(), reason);
        false
    }
}

impl Sink {
    /// Runs until `batches` is closed and every batch taken from it is settled.
    pub async fn run(self: Arc<Self>, mut batches: mpsc::Receiver<Batch>) {
        let permits = Arc::new(Semaphore::new(self.max_in_flight));
        let mut tasks = JoinSet::new();
        loop {
            // A batch is taken from the queue only once it can be sent, so at most
            // `max_in_flight` are being sent and one waits in the queue. The semaphore is never
            // closed, so acquiring cannot fail.
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let Some(batch) = batches.recv().await else {
                break;
            };
            self.pool.taken();
            while tasks.try_join_next().is_some() {}
            let sink = self.clone();
            tasks.spawn(async move {
                sink.deliver(batch).await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    fn current(&self) -> Arc<Output> {
        self.output.borrow().clone()
    }

    async fn deliver(&self, batch: Batch) {
        let stamped = batch.output.clone().unwrap_or_else(|| self.current());
        // Shared with the HTTP body so the whole batch is sent without a copy.
        let batch = Arc::new(batch);
        self.metrics.batches_in_flight.inc();
        let n = batch.items.len();
        let mut target = ToTarget {
            batch: &batch,
            refused: Vec::new(),
        };
        if n > 0 {
            self.settle(&mut target).await;
        }
        // Acknowledged only once every refused item is in the dead-letter index too (or lost
        // there for good, counted): the checkpoint passes nothing still on its way.
        if !target.refused.is_empty() {
            let mut dl = ToDeadLetter::new(
                &batch,
                &stamped.dead_letter_index,
                &self.metrics,
                target.refused,
            );
            self.settle(&mut dl).await;
        }
        self.delivery
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .acked(batch.seq, &batch.ranges);
        self.metrics.events_delivered.inc_by(n as u64);
        self.metrics.batches_in_flight.dec();
        // The HTTP client has dropped its handle on the body by now; if it has not, the batch
        // is simply freed and the pool allocates another.
        if let Ok(batch) = Arc::try_unwrap(batch) {
            self.pool.give(batch);
        }
    }

    /// Sends `w`'s items until every one is written, already there, or refused for good: items
    /// rejected temporarily are sent again alone, with backoff; a request refused as too large
    /// is halved.
    async fn settle<W: Write>(&self, w: &mut W) {
        let labels = W::LABELS;
        let mut work: Vec<Vec<usize>> = vec![(0..w.items()).collect()];
        let out = self.current();
        let mut backoff = Backoff::new(out.initial_backoff, out.max_backoff);
        while let Some(group) = work.pop() {
            // Looked up for each request: a reload's new client serves the retries too.
            let service = self.current().service.clone();
            match self.send(&service, w.body(&group), group.len()).await {
                RequestOutcome::Items(outcomes) => {
                    self.metrics.request("ok").inc();
                    let mut again = Vec::new();
                    // Counted locally: a labelled counter lookup per item showed in profiles.
                    let (mut created, mut duplicate, mut retried, mut kept) =
                        (0u64, 0u64, 0u64, 0u64);
                    for (&i, outcome) in group.iter().zip(outcomes) {
                        match outcome {
                            ItemOutcome::Created => created += 1,
                            ItemOutcome::Duplicate => duplicate += 1,
                            ItemOutcome::FailureStore => kept += 1,
                            ItemOutcome::Retry { status, error_type } => {
                                retried += 1;
                                tracing::debug!(write = labels.what, status, %error_type, "bulk item will be retried");
                                again.push(i);
                            }
                            ItemOutcome::DeadLetter {
                                status,
                                error_type,
                                reason,
                            } => w.refused(i, status, error_type, reason),
                        }
                    }
                    for (outcome, k) in [
                        (labels.created, created),
                        (labels.duplicate, duplicate),
                        (labels.retried, retried),
                        (labels.failure_store, kept),
                    ] {
                        if k > 0 {
                            self.metrics.item(outcome).inc_by(k);
                        }
                    }
                    if again.is_empty() {
                        backoff.reset();
                    } else {
                        let delay = backoff.next_delay(rand::random());
                        tracing::warn!(
                            write = labels.what,
                            items = again.len(),
                            ?delay,
                            "bulk items rejected temporarily; retrying them alone"
                        );
                        tokio::time::sleep(delay).await;
                        work.push(again);
                    }
                }
                RequestOutcome::RetryAll { reason } => {
                    self.metrics.request("retry").inc();
                    let delay = backoff.next_delay(rand::random());
                    tracing::warn!(write = labels.what, %reason, ?delay, items = group.len(), "bulk request failed; retrying");
                    tokio::time::sleep(delay).await;
                    work.push(group);
                }
                RequestOutcome::Split { reason } => {
                    self.metrics.request("split").inc();
                    if group.len() == 1 {
                        if w.too_large(group[0], reason) {
                            work.push(group);
                        }
                    } else {
                        tracing::warn!(write = labels.what, %reason, items = group.len(), "bulk request refused as a whole; splitting it");
                        let (a, b) = group.split_at(group.len() / 2);
                        work.push(b.to_vec());
                        work.push(a.to_vec());
                    }
                }
            }
        }
    }

    async fn send(&self, service: &Service, body: Bytes, items: usize) -> RequestOutcome {
        let started = Instant::now();
        let outcome = match service.bulk(body).await {
            Ok((status, resp)) => retry::classify(status, &resp, items),
            Err(reason) => {
                self.metrics.request("error").inc();
                RequestOutcome::RetryAll { reason }
            }
        };
        self.metrics
            .bulk_duration
            .observe(started.elapsed().as_secs_f64());
        outcome
    }
}

/// A sealed batch's body as an HTTP body, without copying it.
struct BatchBody(Arc<Batch>);

impl AsRef<[u8]> for BatchBody {
    fn as_ref(&self) -> &[u8] {
        &self.0.body
    }
}
