//! Reading one file's turn: up to the bytes the scheduler (`fair`) grants, a chunk at a time, each line parsed, assembled and encoded straight
//! into the open batch. Nothing here waits: a full batch pauses the file until it is sealed.

use super::*;

impl Reader {
    /// Reads at most `limit` bytes of one file, a chunk at a time.
    pub(super) fn read_file(&mut self, key: FileKey, limit: usize) -> Turn {
        let was_touched = self.files.get(&key).is_some_and(|f| f.touched);
        let turn = self.read_turn(key, limit);
        if let Some(of) = self.files.get(&key) {
            if !was_touched && of.touched {
                self.touched_files.push(key);
            }
            if of.rotated_at.is_some() || of.assembler.in_progress() {
                self.attention.insert(key);
            }
            let reformat = !self.reformat.is_empty() && !of.assembler.in_progress();
            if of.predecessor.is_some() {
                self.settle_adoption(key);
            }
            // A record format a reload changed, now that nothing is in progress (see `live`).
            if reformat && self.reformat.remove(&key) {
                let format = configured_format(&self.cfg);
                if let Some(of) = self.files.get_mut(&key) {
                    of.format = format;
                }
            }
        }
        turn
    }

    /// Renders a file's context once its first line is complete (its fingerprint) and its
    /// pod's metadata is there or waited for long enough; says whether it is rendered. Done
    /// before a file's first turn is measured out, so that its budgets (which come with its
    /// pod's metadata) bound that turn too.
    pub(super) fn ensure_rendered(&mut self, key: FileKey, now: Instant) -> bool {
        let Reader {
            files,
            node,
            delivery,
            kube,
            choices,
            fair,
            routing,
            ..
        } = self;
        let Some(of) = files.get_mut(&key) else {
            return false;
        };
        if of.ctx.is_some() {
            return true;
        }
        match of.tailed.refresh_fingerprint() {
            Ok(true) => {
                track(of, delivery);
                // `false`: waiting for the pod's metadata; `refresh_metadata` brings it back.
                prepare_context(
                    of,
                    node,
                    (choices, routing.as_ref()),
                    delivery,
                    kube.as_mut(),
                    fair,
                    now,
                )
            }
            // No complete first line yet: nothing to read.
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(path = %of.tailed.path.display(), error = %e, "cannot read file head");
                false
            }
        }
    }

    fn read_turn(&mut self, key: FileKey, limit: usize) -> Turn {
        if self.files.get(&key).is_none_or(|of| of.held_by > 0) {
            // A rotated predecessor is not drained yet: its lines are older, and what it ends
            // with may continue here (`succession`).
            return Turn::default();
        }
        let now = Instant::now();
        if !self.ensure_rendered(key, now) {
            return Turn::default();
        }
        let Reader {
            files,
            encoder,
            batch,
            buf,
            metrics,
            cfg,
            ..
        } = self;
        let mut turn = Turn::default();
        let Some(of) = files.get_mut(&key) else {
            return turn;
        };
        turn.more = true;
        while turn.bytes < limit {
            if full(batch, cfg) {
                // Sealed before this file reads on.
                return turn;
            }
            let chunk = cfg.input.read_chunk_bytes.min(limit - turn.bytes);
            let OpenFile {
                tailed,
                ctx,
                format,
                assembler,
                touched,
                clock,
                predecessor,
                ..
            } = &mut **of;
            let Some(ctx) = ctx.as_ref() else {
                turn.more = false;
                return turn;
            };
            let pred = predecessor.as_ref().map(|p| &p.ctx);
            let mut emit_ctx = EmitCtx {
                encoder,
                batch,
                metrics,
                now,
            };
            let outcome = tailed.read(buf, chunk, cfg.input.max_line_bytes, &mut |line: Line<
                '_,
            >| {
                *touched = true;
                handle_line(line, ctx, pred, format, assembler, clock, &mut emit_ctx);
                if full(emit_ctx.batch, cfg) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            match outcome {
                Ok(ReadOutcome::Data { bytes }) => {
                    metrics.bytes_read.inc_by(bytes as u64);
                    turn.bytes += bytes;
                    of.at_eof_since = None;
                    if bytes < chunk {
                        // A short read ends where the file ends, now.
                        of.read_to_end_at = Some(now);
                        turn.more = false;
                        return turn;
                    }
                    of.read_to_end_at = None;
                }
                Ok(ReadOutcome::Paused { bytes }) => {
                    // The batch filled up mid-chunk: it is sealed, then this file reads on.
                    metrics.bytes_read.inc_by(bytes as u64);
                    turn.bytes += bytes;
                    of.at_eof_since = None;
                    of.read_to_end_at = None;
                    return turn;
                }
                Ok(ReadOutcome::Eof) | Ok(ReadOutcome::NotReady) => {
                    of.at_eof_since.get_or_insert(now);
                    of.read_to_end_at = Some(now);
                    turn.more = false;
                    return turn;
                }
                Ok(ReadOutcome::Truncated) => {
                    tracing::info!(path = %of.tailed.path.display(), "file truncated (copytruncate); reading it again from the head");
                    of.rotated_at = Some(now);
                    of.at_eof_since = Some(now - ROTATED_GRACE);
                    turn.more = false;
                    return turn;
                }
                Err(e) => {
                    tracing::warn!(path = %of.tailed.path.display(), error = %e, "read failed; closing the file");
                    of.rotated_at = Some(now);
                    of.at_eof_since = Some(now - ROTATED_GRACE);
                    turn.more = false;
                    return turn;
                }
            }
        }
        turn
    }
}

/// What one file's turn did: whether more is probably waiting, and the bytes it read.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Turn {
    pub(super) more: bool,
    pub(super) bytes: usize,
}

/// Whether the open batch has reached a size limit and must be sealed before more is read.
pub(super) fn full(batch: &Batch, cfg: &Config) -> bool {
    batch.body.len() >= cfg.elasticsearch.batch_max_bytes
        || batch.items.len() >= cfg.elasticsearch.batch_max_events
}

/// What the emit path needs, borrowed apart from the file being read.
pub(super) struct EmitCtx<'a> {
    pub(super) encoder: &'a mut Encoder,
    pub(super) batch: &'a mut Batch,
    pub(super) metrics: &'a Metrics,
    pub(super) now: Instant,
}

impl EmitCtx<'_> {
    pub(super) fn emit(
        &mut self,
        ctx: &FileContext,
        ev: &parse::assemble::Event<'_>,
        line_truncated: bool,
    ) {
        let truncated = ev.truncated || line_truncated;
        if truncated {
            self.metrics.truncated.inc();
        }
        self.push(
            ctx,
            encode::Event {
                timestamp: ev.timestamp,
                stream: ev.stream,
                message: ev.message,
                start: ev.start,
                truncated,
                malformed: false,
            },
        );
    }

    pub(super) fn push(&mut self, ctx: &FileContext, ev: encode::Event<'_>) {
        if ctx.skip {
            self.metrics.events_excluded.inc();
            return;
        }
        if ctx.partial {
            self.metrics.events_without_metadata.inc();
        }
        let item = self.encoder.encode(&mut self.batch.body, ctx, &ev);
        self.batch.items.push(item);
        self.batch.opened.get_or_insert(self.now);
        self.metrics.events_encoded.inc();
    }
}

/// The context an event is shipped with: its predecessor's when it began there (its `_id` is
/// derived from that file and offset, so a replay of the predecessor gives the same one).
pub(super) fn origin<'c>(
    own: &'c FileContext,
    pred: Option<&'c FileContext>,
    ev: &parse::assemble::Event<'_>,
) -> &'c FileContext {
    match pred {
        Some(p) if ev.adopted => p,
        _ => own,
    }
}

pub(super) fn handle_line(
    line: Line<'_>,
    ctx: &FileContext,
    pred: Option<&FileContext>,
    format: &mut Option<Format>,
    assembler: &mut Assembler,
    clock: &mut clock::FileClock,
    out: &mut EmitCtx<'_>,
) {
    out.metrics.lines_read.inc();
    if format.is_none() {
        *format = parse::detect(line.bytes);
    }
    let parsed = match *format {
        Some(f) => parse::parse(f, line.bytes).map_err(|e| e.to_string()),
        None => Err("unrecognised container log format".to_string()),
    };
    match parsed {
        Ok(rec) => {
            clock.saw(rec.timestamp);
            let now = out.now;
            // The cut line's flag belongs to the event that contains it, which ends with it.
            assembler.push(rec, line.start, line.end, now, &mut |ev| {
                out.emit(
                    origin(ctx, pred, ev),
                    ev,
                    line.truncated && ev.end == line.end,
                )
            });
        }
        Err(reason) => {
            out.metrics.parse_errors.inc();
            tracing::debug!(%reason, offset = line.start, "malformed line shipped raw");
            // Never the clock: a replay must land in the same index (see `clock`).
            let timestamp = match clock::leading_timestamp(line.bytes) {
                Some(own) => {
                    clock.saw(own);
                    own
                }
                None => clock.fallback(),
            };
            out.push(
                ctx,
                encode::Event {
                    timestamp,
                    stream: parse::Stream::Stdout,
                    message: line.bytes,
                    start: line.start,
                    truncated: line.truncated,
                    malformed: true,
                },
            );
        }
    }
}
