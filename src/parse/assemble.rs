//! TEMPORARY stub, replaced by the parse module.
use super::{Record, Stream, multiline};
use std::sync::Arc;
use std::time::{Duration, Instant};
#[derive(Clone, Debug)]
pub struct AssemblerConfig {
    pub max_event_bytes: usize,
    pub multiline: Option<Arc<multiline::Rules>>,
    pub timeout: Duration,
}
pub struct Event<'a> {
    pub timestamp: &'a [u8],
    pub stream: Stream,
    pub message: &'a [u8],
    pub start: u64,
    pub end: u64,
    pub truncated: bool,
    pub lines: u32,
}
#[derive(Default)]
struct Part {
    ts: Vec<u8>,
    msg: Vec<u8>,
    start: u64,
    open: bool,
}
pub struct Assembler {
    s: [Part; 2],
}
impl Assembler {
    pub fn new(_: AssemblerConfig) -> Self {
        Assembler {
            s: Default::default(),
        }
    }
    pub fn push(
        &mut self,
        rec: Record<'_>,
        start: u64,
        end: u64,
        _now: Instant,
        emit: &mut dyn FnMut(&Event<'_>),
    ) {
        let p = &mut self.s[rec.stream as usize];
        if !p.open && !rec.partial {
            emit(&Event {
                timestamp: rec.timestamp,
                stream: rec.stream,
                message: &rec.message,
                start,
                end,
                truncated: false,
                lines: 1,
            });
            return;
        }
        if !p.open {
            p.open = true;
            p.start = start;
            p.ts.clear();
            p.ts.extend_from_slice(rec.timestamp);
            p.msg.clear();
        }
        p.msg.extend_from_slice(&rec.message);
        if !rec.partial {
            p.open = false;
            emit(&Event {
                timestamp: &p.ts,
                stream: rec.stream,
                message: &p.msg,
                start: p.start,
                end,
                truncated: false,
                lines: 2,
            });
        }
    }
    pub fn pending_start(&self) -> Option<u64> {
        self.s.iter().filter(|p| p.open).map(|p| p.start).min()
    }
    pub fn flush_idle(&mut self, _now: Instant, _emit: &mut dyn FnMut(&Event<'_>)) {}
    pub fn flush_all(&mut self, _emit: &mut dyn FnMut(&Event<'_>)) {}
}
