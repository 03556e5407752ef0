//! Per-file event assembly: joins partial records into lines and (optionally) lines into
//! multiline groups, per stream, and hands out finished events with the byte range they came
//! from. It must never lose or re-order bytes of a stream, never stop on a huge event, and
//! never copy on the common path (a complete record with no multiline rules).
//!
//! Stdout and stderr are assembled independently; a stream's joined event covers
//! `[first record's start, last record's end)`, which may include records of the other stream
//! in between. Events are handed to a callback and borrow from the record or from buffers that
//! are reused for the next event, so steady-state assembly does not allocate.
//!
//! A rotation can fall inside an event (containerd's `P` chunks, docker's 16 KiB pieces, a
//! stack trace): the rotated file's assembler hands what it holds over ([`Assembler::take_pending`])
//! to its successor's ([`Assembler::adopt`]), which finishes it with the records at its head.
//! Such an event is marked `adopted`: its `start` is an offset of the predecessor file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::multiline::{GroupState, Rules};
use super::{Record, Stream};

/// How one file's records become events; shared by every file's [`Assembler`].
#[derive(Debug, Clone)]
pub struct AssemblerConfig {
    /// Longest message handed out; longer joined events are cut at a UTF-8 boundary.
    pub max_event_bytes: usize,
    /// Multiline grouping; `None` makes every complete line an event.
    pub multiline: Option<Arc<Rules>>,
    /// An event in progress whose last record is this old is emitted by `flush_idle`.
    pub timeout: Duration,
}

/// A finished event, borrowed from the record or the assembler's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The first record's timestamp.
    pub timestamp: &'a [u8],
    pub stream: Stream,
    /// Lines of a multiline group are joined with `\n`; at most `max_event_bytes` long.
    pub message: &'a [u8],
    /// File offset of the first record.
    pub start: u64,
    /// File offset just past the last record (its `\n` included).
    pub end: u64,
    /// The message was cut to `max_event_bytes`.
    pub truncated: bool,
    /// Physical records in the event.
    pub lines: u32,
    /// The event began in the predecessor file (see [`Assembler::adopt`]): `start` is an
    /// offset of that file, `end` one of this file.
    pub adopted: bool,
}

/// Events in progress taken from a rotated file's assembler, to be finished by its successor's.
#[derive(Debug)]
pub struct Pending {
    /// Boxed: it moves between files (rarely) and is handed back in an `Err`.
    streams: Box<[StreamState; 2]>,
}

impl Pending {
    /// The offset (in the file they came from) where the earliest of them starts.
    pub fn start(&self) -> u64 {
        self.streams
            .iter()
            .filter_map(StreamState::pending_start)
            .min()
            .unwrap_or(0)
    }
}

/// The event assembly state of one file: a partial line and a multiline group per stream.
#[derive(Debug)]
pub struct Assembler {
    max: usize,
    rules: Option<Arc<Rules>>,
    /// Rules asked for while a line or group was in progress: taken up by the first record
    /// pushed when nothing is in progress any more.
    next_rules: Option<Option<Arc<Rules>>>,
    timeout: Duration,
    /// Indexed by [`slot`].
    streams: [StreamState; 2],
}

#[derive(Debug, Default)]
struct StreamState {
    /// Partial records joined so far (active until a non-partial record completes the line).
    partial: Joined,
    /// The multiline group in progress.
    group: Joined,
    group_state: GroupState,
    /// When the last record of something still in progress arrived.
    last_seen: Option<Instant>,
    /// While an adopted event is in progress: where this file's first record of the stream
    /// since the adoption starts (the checkpoint of *this* file must stay below it).
    local_start: Option<u64>,
}

/// An event being joined from several records, in buffers reused across events.
#[derive(Debug, Default)]
struct Joined {
    active: bool,
    timestamp: Vec<u8>,
    message: Vec<u8>,
    start: u64,
    end: u64,
    lines: u32,
    truncated: bool,
    /// Begun in the predecessor file.
    adopted: bool,
}

/// A complete line: one record, or partial records joined.
struct Line<'a> {
    timestamp: &'a [u8],
    message: &'a [u8],
    start: u64,
    end: u64,
    lines: u32,
    truncated: bool,
    adopted: bool,
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

impl Assembler {
    /// An assembler with nothing in progress.
    pub fn new(cfg: AssemblerConfig) -> Self {
        Assembler {
            max: cfg.max_event_bytes,
            rules: cfg.multiline,
            next_rules: None,
            timeout: cfg.timeout,
            streams: Default::default(),
        }
    }

    /// `rec` occupies bytes `[start, end)` of the file (`end` includes the `\n`). Calls `emit`
    /// for each event completed by this record (0, 1 or 2).
    pub fn push(
        &mut self,
        rec: Record<'_>,
        start: u64,
        end: u64,
        now: Instant,
        emit: &mut dyn FnMut(&Event<'_>),
    ) {
        if self.next_rules.is_some() {
            self.take_up_next_rules();
        }
        let max = self.max;
        let stream = rec.stream;
        let s = &mut self.streams[slot(stream)];
        if !rec.partial && !s.partial.active {
            let line = Line {
                timestamp: rec.timestamp,
                message: &rec.message,
                start,
                end,
                lines: 1,
                truncated: false,
                adopted: false,
            };
            match &self.rules {
                // The hot path: straight from the record, no copy. (Without rules only a
                // partial line can be adopted, and then `s.partial.active` is set.)
                None => emit(&line.event(stream, max)),
                Some(rules) => {
                    s.note_local(start);
                    s.last_seen = Some(now);
                    group_line(
                        rules,
                        &mut s.group,
                        &mut s.group_state,
                        line,
                        stream,
                        max,
                        emit,
                    );
                }
            }
            return;
        }
        s.note_local(start);
        s.last_seen = Some(now);
        if !s.partial.active {
            s.partial.begin(rec.timestamp, start);
        }
        s.partial.append(&rec.message, max);
        s.partial.end = end;
        s.partial.lines += 1;
        if !rec.partial {
            s.complete_partial(self.rules.as_deref(), stream, max, emit);
        }
    }

    /// Smallest start offset of any event still in progress (a partial line or a multiline
    /// group), or `None`. The caller never checkpoints past it. An adopted event counts from
    /// this file's first record in it (its start is in the predecessor), so it counts nothing
    /// before this file's first record of that stream.
    pub fn pending_start(&self) -> Option<u64> {
        self.streams
            .iter()
            .filter_map(StreamState::pending_start)
            .min()
    }

    /// Assembles what is pushed from now on with `rules`. While a line or group is in progress
    /// its rules must not change under it: the change then waits until nothing is in progress
    /// (returns false).
    pub fn set_rules(&mut self, rules: Option<Arc<Rules>>) -> bool {
        self.next_rules = Some(rules);
        self.take_up_next_rules();
        self.next_rules.is_none()
    }

    #[cold]
    fn take_up_next_rules(&mut self) {
        if self.in_progress() {
            return;
        }
        let Some(rules) = self.next_rules.take() else {
            return;
        };
        let same = match (&self.rules, &rules) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.rules = rules;
            for s in &mut self.streams {
                s.group_state = GroupState::default();
            }
        }
    }

    /// The event size bound and the multiline idle timeout from now on (a reload). Unlike the
    /// rules they may change under an event in progress: a bound applies to the bytes appended
    /// from now on (an event already longer is cut there, tagged truncated, as any), a timeout to
    /// the next idle check.
    pub fn set_limits(&mut self, max_event_bytes: usize, timeout: Duration) {
        self.max = max_event_bytes;
        self.timeout = timeout;
    }

    /// Whether any event is in progress (even an adopted one this file holds no record of yet).
    pub fn in_progress(&self) -> bool {
        self.streams.iter().any(StreamState::in_progress)
    }

    /// Whether an event begun in the predecessor file is still in progress.
    pub fn adopted(&self) -> bool {
        self.streams.iter().any(StreamState::adopted)
    }

    /// Takes every event in progress out, to be finished by the successor file's assembler
    /// ([`Assembler::adopt`]); this assembler is left empty. `None` when nothing is in progress,
    /// or when an adopted event is (its offsets belong to yet another file: it is flushed here).
    pub fn take_pending(&mut self) -> Option<Pending> {
        if !self.in_progress() || self.adopted() {
            return None;
        }
        Some(Pending {
            streams: Box::new(std::mem::take(&mut self.streams)),
        })
    }

    /// Continues the events of `pending` (taken from the predecessor file) with the records
    /// this assembler is fed next; they count as idle from `now`. Refused (handed back) when
    /// this assembler has something in progress of its own: the successor must adopt before it
    /// reads its first record.
    pub fn adopt(&mut self, pending: Pending, now: Instant) -> Result<(), Pending> {
        if self.in_progress() {
            return Err(pending);
        }
        for (mine, mut theirs) in self.streams.iter_mut().zip(*pending.streams) {
            if !theirs.in_progress() {
                continue;
            }
            theirs.partial.adopted = theirs.partial.active;
            theirs.group.adopted = theirs.group.active;
            theirs.local_start = None;
            theirs.last_seen = Some(now);
            *mine = theirs;
        }
        Ok(())
    }

    /// Emits in-progress events whose last record arrived at or before `now - timeout`.
    pub fn flush_idle(&mut self, now: Instant, emit: &mut dyn FnMut(&Event<'_>)) {
        let timeout = self.timeout;
        self.flush_where(emit, |s| {
            s.last_seen
                .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
        });
    }

    /// Emits everything in progress (end of a rotated file).
    pub fn flush_all(&mut self, emit: &mut dyn FnMut(&Event<'_>)) {
        self.flush_where(emit, |_| true);
    }

    /// Flushes the streams selected by `pick`, the one whose pending event starts first first.
    fn flush_where(
        &mut self,
        emit: &mut dyn FnMut(&Event<'_>),
        pick: impl Fn(&StreamState) -> bool,
    ) {
        let mut order = [0, 1];
        order.sort_by_key(|&i| self.streams[i].pending_start());
        for i in order {
            let s = &mut self.streams[i];
            if s.in_progress() && pick(s) {
                s.flush(self.rules.as_deref(), STREAMS[i], self.max, emit);
            }
        }
    }
}

impl StreamState {
    fn pending_start(&self) -> Option<u64> {
        if self.adopted() {
            return self.local_start;
        }
        // A group in progress always began before a partial line in progress.
        [&self.group, &self.partial]
            .into_iter()
            .find(|j| j.active)
            .map(|j| j.start)
    }

    /// A record of this file at `start`: the first one since an adoption bounds the checkpoint.
    fn note_local(&mut self, start: u64) {
        if self.local_start.is_none() && self.adopted() {
            self.local_start = Some(start);
        }
    }

    fn in_progress(&self) -> bool {
        self.partial.active || self.group.active
    }

    /// An event begun in the predecessor file is in progress. A local partial line never
    /// precedes it: the adopted partial takes every record of its stream until it completes.
    fn adopted(&self) -> bool {
        (self.partial.active && self.partial.adopted) || (self.group.active && self.group.adopted)
    }

    /// The partial line's last record arrived (or it timed out): it is a complete line now.
    fn complete_partial(
        &mut self,
        rules: Option<&Rules>,
        stream: Stream,
        max: usize,
        emit: &mut dyn FnMut(&Event<'_>),
    ) {
        self.partial.active = false;
        match rules {
            None => emit(&self.partial.event(stream)),
            Some(rules) => {
                let line = self.partial.as_line();
                group_line(
                    rules,
                    &mut self.group,
                    &mut self.group_state,
                    line,
                    stream,
                    max,
                    emit,
                );
            }
        }
    }

    fn flush(
        &mut self,
        rules: Option<&Rules>,
        stream: Stream,
        max: usize,
        emit: &mut dyn FnMut(&Event<'_>),
    ) {
        if self.partial.active {
            self.complete_partial(rules, stream, max, emit);
        }
        if self.group.active {
            self.group.active = false;
            emit(&self.group.event(stream));
        }
        self.last_seen = None;
    }
}

/// Adds a complete line to the stream's multiline group, emitting the group it ends.
fn group_line(
    rules: &Rules,
    group: &mut Joined,
    state: &mut GroupState,
    line: Line<'_>,
    stream: Stream,
    max: usize,
    emit: &mut dyn FnMut(&Event<'_>),
) {
    if group.active {
        if rules.continues(state, line.message) {
            group.append(b"\n", max);
            group.add(&line, max);
            return;
        }
        // `continues` has already reset `state` for the group this line begins.
        group.active = false;
        emit(&group.event(stream));
    } else {
        rules.start(state, line.message);
    }
    if !rules.holds(state) {
        // Nothing can continue it (`auto` and an ordinary line): no copy, no wait.
        emit(&line.event(stream, max));
        return;
    }
    group.begin(line.timestamp, line.start);
    group.adopted = line.adopted;
    group.add(&line, max);
}

impl Line<'_> {
    fn event(&self, stream: Stream, max: usize) -> Event<'_> {
        let message = truncate_utf8(self.message, max);
        Event {
            timestamp: self.timestamp,
            stream,
            message,
            start: self.start,
            end: self.end,
            truncated: self.truncated || message.len() < self.message.len(),
            lines: self.lines,
            adopted: self.adopted,
        }
    }
}

impl Joined {
    fn begin(&mut self, timestamp: &[u8], start: u64) {
        self.active = true;
        self.timestamp.clear();
        self.timestamp.extend_from_slice(timestamp);
        self.message.clear();
        self.start = start;
        self.end = start;
        self.lines = 0;
        self.truncated = false;
        self.adopted = false;
    }

    /// Appends to the message, keeping at most `max` bytes; the rest is counted as cut.
    fn append(&mut self, bytes: &[u8], max: usize) {
        let room = max.saturating_sub(self.message.len());
        if bytes.len() > room {
            self.truncated = true;
            self.message.extend_from_slice(&bytes[..room]);
        } else {
            self.message.extend_from_slice(bytes);
        }
    }

    fn add(&mut self, line: &Line<'_>, max: usize) {
        self.append(line.message, max);
        self.end = line.end;
        self.lines += line.lines;
        self.truncated |= line.truncated;
    }

    /// The message so far: `append` kept at most `max` bytes but may have cut a character.
    fn message(&self) -> &[u8] {
        if self.truncated {
            &self.message[..complete_prefix_len(&self.message)]
        } else {
            &self.message
        }
    }

    fn as_line(&self) -> Line<'_> {
        Line {
            timestamp: &self.timestamp,
            message: self.message(),
            start: self.start,
            end: self.end,
            lines: self.lines,
            truncated: self.truncated,
            adopted: self.adopted,
        }
    }

    fn event(&self, stream: Stream) -> Event<'_> {
        Event {
            timestamp: &self.timestamp,
            stream,
            message: self.message(),
            start: self.start,
            end: self.end,
            truncated: self.truncated,
            lines: self.lines,
            adopted: self.adopted,
        }
    }
}

/// At most `max` bytes of `b`, not ending inside a UTF-8 character.
fn truncate_utf8(b: &[u8], max: usize) -> &[u8] {
    if b.len() <= max {
        return b;
    }
    let cut = &b[..max];
    &cut[..complete_prefix_len(cut)]
}

/// Length of `b` without a trailing incomplete UTF-8 sequence. Bytes that are not UTF-8 at
/// all are left alone: at most three bytes are ever dropped.
fn complete_prefix_len(b: &[u8]) -> usize {
    let n = b.len();
    for back in 1..=n.min(4) {
        let c = b[n - back];
        if c & 0xC0 != 0x80 {
            // A lead byte (or ASCII): how long its sequence should be.
            let need = match c {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            return if need > back { n - back } else { n };
        }
    }
    n
}

#[cfg(test)]
mod tests;
