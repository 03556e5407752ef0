//! Which endpoint the next request goes to: round robin over the healthy ones; an endpoint that
//! failed (transport error or 5xx) is skipped for a backoff that doubles up to a cap, and must
//! answer a cheap probe before it gets requests again. Pure state, clock passed in, so the rules
//! are unit-tested without a network.

use std::time::{Duration, Instant};

/// How long a failed endpoint is first left alone; doubled per consecutive failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What to do with the chosen endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Healthy: send.
    Use(usize),
    /// Was unhealthy and its backoff is over (or every endpoint is down and this one is due
    /// first): probe it, then send if it answers.
    Probe(usize),
}

#[derive(Debug, Clone, Default)]
struct State {
    /// `Some` while the endpoint is unhealthy: not before this instant.
    down_until: Option<Instant>,
    failures: u32,
}

#[derive(Debug)]
pub struct Health {
    states: Vec<State>,
    next: usize,
}

impl Health {
    pub fn new(n: usize) -> Health {
        Health {
            states: vec![State::default(); n],
            next: 0,
        }
    }

    pub fn pick(&mut self, now: Instant) -> Choice {
        let n = self.states.len();
        let start = self.next;
        self.next = (self.next + 1) % n;
        for k in 0..n {
            let i = (start + k) % n;
            match self.states[i].down_until {
                None => return Choice::Use(i),
                Some(t) if t <= now => return Choice::Probe(i),
                Some(_) => {}
            }
        }
        // All down and none due: the one due first, so the caller's own retry backoff decides
        // the pace rather than a request failing without a try.
        let soonest = (0..n)
            .min_by_key(|&i| self.states[i].down_until)
            .unwrap_or(0);
        Choice::Probe(soonest)
    }

    /// Marks `i` unhealthy; returns whether it was healthy before (to log the change once).
    pub fn failed(&mut self, i: usize, now: Instant) -> bool {
        let s = &mut self.states[i];
        let was_up = s.down_until.is_none();
        let backoff = FIRST_BACKOFF
            .saturating_mul(1u32 << s.failures.min(5))
            .min(MAX_BACKOFF);
        s.failures = s.failures.saturating_add(1);
        s.down_until = Some(now + backoff);
        was_up
    }

    /// Marks `i` healthy; returns whether it was unhealthy before.
    pub fn succeeded(&mut self, i: usize) -> bool {
        let s = &mut self.states[i];
        let was_down = s.down_until.is_some();
        *s = State::default();
        was_down
    }

    pub fn healthy(&self) -> usize {
        self.states
            .iter()
            .filter(|s| s.down_until.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_over_healthy_endpoints() {
        let mut h = Health::new(3);
        let now = Instant::now();
        let picks: Vec<_> = (0..6).map(|_| h.pick(now)).collect();
        assert_eq!(
            picks,
            [0, 1, 2, 0, 1, 2].map(Choice::Use).to_vec(),
            "spread evenly"
        );
    }

    #[test]
    fn a_failed_endpoint_is_skipped_then_probed_after_its_backoff() {
        let mut h = Health::new(3);
        let now = Instant::now();
        assert!(h.failed(1, now));
        assert!(!h.failed(1, now), "second failure is not a change");
        assert_eq!(h.healthy(), 2);
        let picks: Vec<_> = (0..4).map(|_| h.pick(now)).collect();
        assert!(!picks.contains(&Choice::Use(1)) && !picks.contains(&Choice::Probe(1)));
        // Two failures: 2 s of backoff.
        let later = now + Duration::from_millis(2100);
        let picks: Vec<_> = (0..3).map(|_| h.pick(later)).collect();
        assert!(picks.contains(&Choice::Probe(1)), "{picks:?}");
        assert!(h.succeeded(1));
        assert_eq!(h.healthy(), 3);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut h = Health::new(1);
        let now = Instant::now();
        for _ in 0..20 {
            h.failed(0, now);
        }
        assert_eq!(h.states[0].down_until, Some(now + MAX_BACKOFF));
    }

    #[test]
    fn all_down_probes_the_one_due_first() {
        let mut h = Health::new(2);
        let now = Instant::now();
        h.failed(0, now);
        h.failed(0, now);
        h.failed(1, now);
        assert_eq!(h.pick(now), Choice::Probe(1));
        assert_eq!(h.pick(now), Choice::Probe(1));
    }
}
