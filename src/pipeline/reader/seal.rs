//! Sealing: idle flushes and closing rotated files at their end, and handing the open batch
//! with every touched file's boundary to delivery and the sink (the backpressure is here).
//! Parses nothing.

use super::*;

impl Reader {
    /// Idle flushes and closing rotated files at their end.
    pub(super) fn housekeeping(&mut self, now: Instant) {
        let Reader {
            files,
            touched_files,
            encoder,
            batch,
            metrics,
            closing,
            attention,
            ..
        } = self;
        let mut handoffs: Vec<FileKey> = Vec::new();
        let mut adopters: Vec<FileKey> = Vec::new();
        attention.retain(|key| {
            let Some(of) = files.get_mut(key) else {
                return false; // closed
            };
            let of = &mut **of;
            if of.handed_over.is_some() {
                // Drained; closed once the successor has emitted what it took over.
                return true;
            }
            let done = of.rotated_at.is_some()
                && of
                    .at_eof_since
                    .is_some_and(|t| now.duration_since(t) >= ROTATED_GRACE);
            let pred = of.predecessor.as_ref().map(|p| &p.ctx);
            // Without a context of its own a file has read nothing: all it holds is adopted.
            let Some(ctx) = of.ctx.as_ref().or(pred) else {
                if done && !closing.contains(&of.key) {
                    closing.push(of.key);
                }
                return of.rotated_at.is_some();
            };
            let mut emit_ctx = EmitCtx {
                encoder,
                batch,
                metrics,
                now,
            };
            let before = of.boundary();
            // A rotated file with a live successor keeps what its end holds for it.
            let linked = of.rotated_at.is_some() && of.link.holds().is_some();
            // Idle means: idle when the file was last read to its end. A file held back since
            // (its budget, a full pipeline, its turn not come) may hold the continuation.
            if !linked && let Some(read_at) = of.read_to_end_at {
                of.assembler.flush_idle(read_at, &mut |ev| {
                    emit_ctx.emit(origin(ctx, pred, ev), ev, false)
                });
            }
            if done && !closing.contains(&of.key) {
                if linked && of.assembler.in_progress() && of.ctx.is_some() {
                    handoffs.push(of.key);
                    return true;
                }
                of.assembler
                    .flush_all(&mut |ev| emit_ctx.emit(origin(ctx, pred, ev), ev, false));
                closing.push(of.key);
            }
            if of.predecessor.is_some() {
                adopters.push(of.key);
            }
            if of.boundary() != before && !of.touched {
                of.touched = true;
                touched_files.push(of.key);
            }
            of.rotated_at.is_some() || of.assembler.in_progress()
        });
        for key in handoffs {
            self.hand_over(key, now);
        }
        for key in adopters {
            self.settle_adoption(key);
        }
        if !self.closing.is_empty() && self.batch.opened.is_none() {
            // Nothing waiting in the batch: seal now so closed files are released promptly.
            self.seal();
        }
    }

    pub(super) fn seal_due(&self, now: Instant) -> bool {
        match self.batch.opened {
            Some(opened) => now.duration_since(opened) >= self.cfg.elasticsearch.batch_timeout,
            // No events, but boundaries moved (e.g. only skipped bytes): acknowledge them.
            None => self
                .touched_files
                .iter()
                .filter_map(|k| self.files.get(k))
                .any(|f| f.tracked && f.boundary() > f.sealed_boundary),
        }
    }

    /// Seals the open batch and hands it to the sink. Returns false when the sink is gone.
    pub(super) fn seal(&mut self) -> bool {
        // An empty batch (only boundaries moved) is acknowledged below and refilled; a sent one
        // is replaced from the pool once it is handed over, so at most one batch is being
        // filled or waiting here.
        let mut batch = std::mem::take(&mut self.batch);
        batch.seq = self.next_seq;
        self.next_seq += 1;
        for key in std::mem::take(&mut self.touched_files) {
            let Some(of) = self.files.get_mut(&key) else {
                continue;
            };
            if !of.tracked {
                // Its boundary counts once it is registered with delivery.
                self.touched_files.push(key);
                continue;
            }
            of.touched = false;
            let b = of.boundary();
            if b > of.sealed_boundary {
                batch.ranges.push((of.key, b));
                of.sealed_boundary = b;
            }
        }
        let closing = std::mem::take(&mut self.closing);
        self.rescan_wanted |= !closing.is_empty();
        {
            let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
            d.sealed(batch.seq, &batch.ranges);
            for &key in &closing {
                d.retire(key);
            }
            if batch.items.is_empty() {
                d.acked(batch.seq, &batch.ranges);
            }
        }
        for key in closing {
            if let Some(k) = &mut self.kube {
                k.waiting.remove(&key);
            }
            if let Some(of) = self.files.remove(&key) {
                self.by_id.remove(&of.tailed.id);
                if self.by_real_path.get(&of.tailed.real_path) == Some(&key) {
                    self.by_real_path.remove(&of.tailed.real_path);
                }
                self.closed_in_succession(&of);
                tracing::debug!(path = %of.tailed.real_path.display(), "closed a rotated file read to its end");
            }
        }
        self.metrics.files_open.set(self.files.len() as i64);
        if self
            .gauges_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.gauges_at = Some(Instant::now());
            self.metrics.files_rotated_open.set(
                self.files
                    .values()
                    .filter(|f| f.rotated_at.is_some())
                    .count() as i64,
            );
        }
        if batch.items.is_empty() {
            batch.clear();
            self.batch = batch;
            return true;
        }
        // While the sink is saturated reading stops: that is the backpressure. Discovery goes
        // on, so new and rotated files are held open (their lines stay readable even when the
        // kubelet compresses or deletes them) until there is room again.
        batch.output = self.output.clone();
        let mut last_scan = Instant::now();
        loop {
            let seen = self.pool.taken_so_far();
            match self.tx.try_send(batch) {
                Ok(()) => {
                    self.batch = self.pool.take();
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(b)) => batch = b,
            }
            // Waiting for the sink is not being stuck.
            if let Some(h) = &self.health {
                h.reader_beat(Instant::now());
            }
            if last_scan.elapsed() >= MIN_RESCAN_GAP {
                self.rescan();
                last_scan = Instant::now();
            }
            let until_rescan = MIN_RESCAN_GAP.saturating_sub(last_scan.elapsed());
            self.pool.wait_for_room(seen, until_rescan);
        }
    }
}
