//! A batch: one bulk request body plus what delivery needs to know about it, and the pool that
//! recycles batches once the sink has settled them.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::encode::Item;
use super::sink::Output;
use crate::delivery::FileKey;

/// Room past the size limit for the event that crosses it, so the body does not reallocate.
const BODY_SLACK: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct Batch {
    /// Sealing order; delivery acknowledges by it.
    pub seq: u64,
    /// NDJSON: action and document lines of every item.
    pub body: Vec<u8>,
    pub items: Vec<Item>,
    /// Each touched file's boundary at sealing time (see `delivery`).
    pub ranges: Vec<(FileKey, u64)>,
    /// When the first item went in; the batch timeout counts from here.
    pub opened: Option<Instant>,
    /// The output of the configuration it was encoded under (set when sealed; `None`: the
    /// sink's own).
    pub output: Option<Arc<Output>>,
}

impl Batch {
    /// An empty batch whose body will not reallocate below `body_bytes`.
    pub fn with_capacity(body_bytes: usize) -> Batch {
        Batch {
            body: Vec::with_capacity(body_bytes),
            ..Batch::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.ranges.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.seq = 0;
        self.body.clear();
        self.items.clear();
        self.ranges.clear();
        self.opened = None;
        self.output = None;
    }

    /// The bytes of item `i` (action and document).
    pub fn item_bytes(&self, i: usize) -> &[u8] {
        let it = self.items[i];
        &self.body[it.start as usize..it.end as usize]
    }

    /// The document line of item `i`.
    pub fn item_doc(&self, i: usize) -> &[u8] {
        let it = self.items[i];
        &self.body[it.doc as usize..it.end as usize]
    }
}

/// Settled batches come back here and the reader fills them again. A busy agent so allocates
/// (and page-faults in) its few request bodies once, not once per request: when every freed
/// body went back to the kernel, the benchmark's CPU per GiB rose from 3.1 to 5.5 s; when
/// glibc kept them, they fragmented its arenas. At most `keep` batches wait here; with the one
/// being filled, the one queued and the ones being sent, at most (max_in_flight + 2) bodies
/// exist.
///
/// The pool also carries the other signal going back from the sink to the reader: that the
/// sink took a batch from its queue, so a reader waiting on a full queue wakes at once.
#[derive(Debug)]
pub struct BatchPool {
    free: Mutex<Vec<Batch>>,
    keep: usize,
    body_bytes: usize,
    /// How many batches the sink has taken from its queue.
    taken: Mutex<u64>,
    room: Condvar,
}

impl BatchPool {
    /// A pool of batches sized for `max_body_bytes` bodies, keeping at most `keep` spare ones.
    pub fn new(max_body_bytes: usize, keep: usize) -> BatchPool {
        BatchPool {
            free: Mutex::new(Vec::with_capacity(keep)),
            keep,
            body_bytes: max_body_bytes + BODY_SLACK,
            taken: Mutex::new(0),
            room: Condvar::new(),
        }
    }

    /// The sink took a batch from its queue: there is room for the next one.
    pub fn taken(&self) {
        *self.taken.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.room.notify_all();
    }

    /// A count to pass to [`wait_for_room`](Self::wait_for_room), read before trying to queue
    /// a batch, so that room made between the try and the wait is not missed.
    pub fn taken_so_far(&self) -> u64 {
        *self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the sink takes a batch after `seen` was read, or `timeout` passes.
    pub fn wait_for_room(&self, seen: u64, timeout: Duration) {
        let guard = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        drop(
            self.room
                .wait_timeout_while(guard, timeout, |taken| *taken == seen)
                .unwrap_or_else(|p| p.into_inner()),
        );
    }

    /// An empty batch with a full-size body: a recycled one when there is one.
    pub fn take(&self) -> Batch {
        self.lock()
            .pop()
            .unwrap_or_else(|| Batch::with_capacity(self.body_bytes))
    }

    /// Returns a settled batch. A body that grew past its size (one event larger than the
    /// slack) is freed rather than kept at its larger size.
    pub fn give(&self, mut batch: Batch) {
        if batch.body.capacity() > self.body_bytes {
            return;
        }
        batch.clear();
        let mut free = self.lock();
        if free.len() < self.keep {
            free.push(batch);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Batch>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_batch_comes_back_empty_with_its_buffers() {
        let pool = BatchPool::new(1024, 2);
        let mut b = pool.take();
        let cap = b.body.capacity();
        assert!(cap >= 1024 + BODY_SLACK);
        b.seq = 7;
        b.body.extend_from_slice(b"{\"create\":{}}\n{}\n");
        b.items.push(Item {
            start: 0,
            doc: 14,
            end: 17,
        });
        b.ranges.push((1, 17));
        b.opened = Some(Instant::now());
        let body_ptr = b.body.as_ptr();
        pool.give(b);
        let again = pool.take();
        assert_eq!(again.body.as_ptr(), body_ptr, "the same body is reused");
        assert_eq!(again.body.capacity(), cap);
        assert!(again.body.is_empty() && again.items.is_empty() && again.ranges.is_empty());
        assert_eq!((again.seq, again.opened), (0, None));
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound_and_drops_grown_bodies() {
        let pool = BatchPool::new(1024, 2);
        let batches: Vec<Batch> = (0..4).map(|_| pool.take()).collect();
        for b in batches {
            pool.give(b);
        }
        assert_eq!(pool.lock().len(), 2);

        let pool = BatchPool::new(1024, 2);
        let mut grown = pool.take();
        grown.body.resize(grown.body.capacity() + 1, b'x');
        pool.give(grown);
        assert!(pool.lock().is_empty(), "an over-grown body is not kept");
    }

    #[test]
    fn a_reader_waiting_for_room_wakes_when_the_sink_takes_a_batch() {
        let pool = std::sync::Arc::new(BatchPool::new(1024, 2));
        let seen = pool.taken_so_far();
        let sink = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                pool.taken();
            })
        };
        let started = Instant::now();
        pool.wait_for_room(seen, Duration::from_secs(30));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken, not timed out"
        );
        sink.join().unwrap();

        // Room made before the wait began is not missed.
        let seen = pool.taken_so_far();
        pool.taken();
        let started = Instant::now();
        pool.wait_for_room(seen, Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));

        // Without room it waits out its timeout.
        let started = Instant::now();
        pool.wait_for_room(pool.taken_so_far(), Duration::from_millis(30));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
