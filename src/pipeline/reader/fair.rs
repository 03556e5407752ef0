//! Fair reading and read budgets: in which order the files with data read, how much each tenant
//! (`input.fairness`: namespace, pod or container) may read per round, and the token buckets of
//! `input.rate_limit` and the `sluice.io/rate-limit` annotations. A file whose budget is spent
//! is read later, never skipped: nothing here drops a byte. It decides per file (its [`Share`],
//! set when the file's context is rendered) and per turn, never per event; it parses nothing.
//!
//! When Elasticsearch is the bottleneck the reader blocks on the bounded channel of sealed
//! batches, so what fills the next batch decides who waits. Each round gives every tenant with
//! data one quantum (`read_chunk_bytes`), spent on its files in least-recently-read order: a
//! quiet pod's few lines go into the batch being filled, next to at most a chunk of the noisy
//! pod's backlog, and a tenant's share does not grow with its number of pods.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::tail::config::{BudgetKey, Fairness, MIN_RATE, RateLimit};

/// Keys with a label of their own in the per-key metrics; the others are summed as `other`.
pub(super) const LABELLED_KEYS: usize = 20;
/// The smallest read a budget allows (fewer bytes would mean many tiny reads).
const MIN_READ: u64 = 4 << 10;
/// How often the per-key gauges are computed (a walk over the files that are behind).
const GAUGE_EVERY: Duration = Duration::from_secs(1);
/// Malformed annotations remembered (to warn once each); forgotten all at once beyond.
const WARNED_MAX: usize = 4096;

/// A file's place in the scheduler: its tenant and budgets, settled when its context is rendered.
#[derive(Debug, Default)]
pub(super) struct Share {
    /// The fairness group (`ns`, `ns/pod` or `ns/pod/container`); "" without a pod.
    group: Arc<str>,
    /// The budgets this file reads from: its key's, and its pod's lower one when the key is
    /// the namespace.
    budgets: Vec<(Arc<str>, Rate)>,
    /// The file's key in the metrics (the budget key, or the fairness key).
    label: Arc<str>,
    /// When this file last had a turn (the scheduler's counter).
    last_turn: u64,
    /// Since when the file has had data it did not read; cleared when a read reaches its end.
    behind_since: Option<Instant>,
}

/// A budget: bytes per second on average, `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rate {
    pub(super) bytes_per_second: u64,
    pub(super) burst: u64,
}

impl Rate {
    /// An annotation's budget: a second's worth of burst.
    fn per_second(bytes_per_second: u64) -> Rate {
        Rate {
            bytes_per_second,
            burst: bytes_per_second,
        }
    }
}

/// A token bucket (tokens are bytes).
#[derive(Debug)]
pub(super) struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
    /// Since when the budget has held a file with data back (counted as throttled time).
    throttled_since: Option<Instant>,
    /// Its series in `sluice_read_throttled_seconds_total`.
    label: Arc<str>,
}

impl Bucket {
    pub(super) fn new(rate: Rate, now: Instant, label: Arc<str>) -> Bucket {
        Bucket {
            rate,
            tokens: rate.burst as f64,
            at: now,
            throttled_since: None,
            label,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens =
            (self.tokens + dt * self.rate.bytes_per_second as f64).min(self.rate.burst as f64);
        self.at = now;
    }

    /// The bytes that may be read now, or when enough will be there for a read.
    pub(super) fn allowance(&mut self, now: Instant) -> Result<u64, Instant> {
        self.refill(now);
        let want = MIN_READ.min(self.rate.burst) as f64;
        if self.tokens >= want {
            return Ok(self.tokens as u64);
        }
        let secs = (want - self.tokens) / self.rate.bytes_per_second as f64;
        Err(now + Duration::from_secs_f64(secs))
    }

    pub(super) fn spend(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    fn set_rate(&mut self, rate: Rate) {
        if self.rate != rate {
            self.rate = rate;
            self.tokens = self.tokens.min(rate.burst as f64);
        }
    }

    fn full(&self) -> bool {
        self.tokens >= self.rate.burst as f64
    }

    /// Adds the throttled time up to `now` to the counter; it goes on counting if `still`.
    fn count_throttled(&mut self, now: Instant, still: bool, metrics: &Metrics) {
        if let Some(since) = self.throttled_since {
            metrics
                .read_throttled_seconds
                .get_or_create(&crate::telemetry::metrics::Tenant {
                    key: self.label.to_string(),
                })
                .inc_by(now.saturating_duration_since(since).as_secs_f64());
            self.throttled_since = still.then_some(now);
        }
    }
}

/// The scheduler's state: budgets per key, when each group last read, parked files.
pub(super) struct Fair {
    fairness: Fairness,
    limit: Option<RateLimit>,
    key: BudgetKey,
    buckets: HashMap<Arc<str>, Bucket>,
    /// When each group last had a turn: the least recent goes first.
    served: HashMap<Arc<str>, u64>,
    turn: u64,
    /// Files whose budget is spent, and when it will allow a read again.
    parked: HashMap<FileKey, Instant>,
    /// Keys with their own series in the throttled-time counter (at most `LABELLED_KEYS`).
    labelled: HashSet<Arc<str>>,
    /// Malformed annotations warned about (`who=value`).
    warned: HashSet<String>,
    gauges_at: Option<Instant>,
    metrics: Arc<Metrics>,
}

impl Fair {
    pub(super) fn new(cfg: &Config, metrics: Arc<Metrics>) -> Fair {
        let limit = cfg.input.rate_limit;
        Fair {
            fairness: cfg.input.fairness,
            limit,
            key: limit.map_or(BudgetKey::Namespace, |l| l.key),
            buckets: HashMap::new(),
            served: HashMap::new(),
            turn: 0,
            parked: HashMap::new(),
            labelled: HashSet::new(),
            warned: HashSet::new(),
            gauges_at: None,
            metrics,
        }
    }

    /// Takes up a reloaded `input.fairness` and `input.rate_limit`; every open file's share
    /// is settled again after it (`live`). Buckets restart full.
    pub(super) fn reconfigure(&mut self, cfg: &Config) {
        self.fairness = cfg.input.fairness;
        self.limit = cfg.input.rate_limit;
        self.key = self.limit.map_or(BudgetKey::Namespace, |l| l.key);
        self.buckets.clear();
        self.parked.clear();
    }

    /// Settles a file's group and budgets from what its path tells (`pod`) and its pod's
    /// metadata (`found`); called after each rendering of its context. A malformed annotation
    /// is warned about once per pod or namespace and ignored.
    pub(super) fn settle(
        &mut self,
        share: &mut Share,
        pod: Option<&PodRef>,
        found: Option<&kubernetes::store::Found>,
    ) {
        self.place(share, pod);
        let Some(p) = pod else {
            share.budgets.clear();
            return;
        };
        let key = key_of(self.key, p);
        let ns_rate = found
            .and_then(|f| f.namespace_rate_limit.as_deref())
            .and_then(|v| self.annotation(&format!("namespace {}", p.namespace), v))
            .map(Rate::per_second);
        let base = ns_rate.or(self.limit.map(|l| Rate {
            bytes_per_second: l.bytes_per_second,
            burst: l.burst,
        }));
        let who = format!("pod {}/{}", p.namespace, p.pod_name);
        let pod_rate = found
            .and_then(|f| f.pod.rate_limit.as_deref())
            .and_then(|v| self.annotation(&who, v))
            .map(Rate::per_second)
            // A pod may only lower its namespace's budget.
            .filter(|r| base.is_none_or(|b| r.bytes_per_second < b.bytes_per_second));
        let mut budgets = Vec::new();
        match self.key {
            BudgetKey::Namespace => {
                if let Some(b) = base {
                    budgets.push((key.clone(), b));
                }
                if let Some(r) = pod_rate {
                    budgets.push((key_of(BudgetKey::Pod, p), r));
                }
            }
            BudgetKey::Pod | BudgetKey::Container => {
                if let Some(r) = pod_rate.or(base) {
                    budgets.push((key.clone(), r));
                }
            }
        }
        share.budgets = budgets;
    }

    /// Puts a file in its fairness group and metrics key, from its path alone: done when it
    /// is opened, so that a file not yet rendered (its first line incomplete, its pod's
    /// metadata awaited) already takes its tenant's turn, not a turn shared by every new file.
    /// A file of no pod is in the group "".
    pub(super) fn place(&self, share: &mut Share, pod: Option<&PodRef>) {
        let Some(p) = pod else {
            share.group = Arc::from("");
            share.label = share.group.clone();
            return;
        };
        share.group = match self.fairness {
            Fairness::Namespace | Fairness::Off => key_of(BudgetKey::Namespace, p),
            Fairness::Pod => key_of(BudgetKey::Pod, p),
            Fairness::Container => key_of(BudgetKey::Container, p),
        };
        share.label = if self.limit.is_some() {
            key_of(self.key, p)
        } else {
            share.group.clone()
        };
    }

    /// A `sluice.io/rate-limit` value in bytes per second (`1MiB`, `512KiB/s`, `1048576`).
    fn annotation(&mut self, who: &str, value: &str) -> Option<u64> {
        match parse_rate(value) {
            Ok(rate) => Some(rate),
            Err(reason) => {
                if self.warned.len() >= WARNED_MAX {
                    self.warned.clear();
                }
                if self.warned.insert(format!("{who}={value}")) {
                    self.metrics.rate_limit_annotations_invalid.inc();
                    tracing::warn!(
                        on = who,
                        annotation = kubernetes::meta::RATE_LIMIT,
                        value,
                        %reason,
                        "ignoring a malformed read budget annotation"
                    );
                }
                None
            }
        }
    }

    /// The bytes a file may read now (at most `limit`), or `None`: its budget is spent and the
    /// file is parked until it refills. While a budget holds a file back (parked, or allowed less
    /// than `limit`) its throttled time runs.
    fn allowance(
        &mut self,
        key: FileKey,
        share: &Share,
        limit: usize,
        now: Instant,
    ) -> Option<usize> {
        let mut allowed = limit as u64;
        let mut ready: Option<Instant> = None;
        for (name, rate) in &share.budgets {
            let b = self.buckets.entry(name.clone()).or_insert_with(|| {
                let label = if self.labelled.len() < LABELLED_KEYS || self.labelled.contains(name) {
                    self.labelled.insert(name.clone());
                    name.clone()
                } else {
                    Arc::from("other")
                };
                Bucket::new(*rate, now, label)
            });
            b.set_rate(*rate);
            match b.allowance(now) {
                Ok(a) if a >= limit as u64 => b.count_throttled(now, false, &self.metrics),
                Ok(a) => {
                    b.throttled_since.get_or_insert(now);
                    allowed = allowed.min(a);
                }
                Err(at) => {
                    b.throttled_since.get_or_insert(now);
                    ready = Some(ready.map_or(at, |r| r.max(at)));
                }
            }
        }
        match ready {
            Some(until) => {
                self.parked.insert(key, until);
                None
            }
            None => Some(allowed as usize),
        }
    }

    /// The file read all it had: its budgets hold nothing back any more.
    fn caught_up(&mut self, share: &Share, now: Instant) {
        for (name, _) in &share.budgets {
            if let Some(b) = self.buckets.get_mut(name) {
                b.count_throttled(now, false, &self.metrics);
            }
        }
    }

    fn spend(&mut self, share: &Share, bytes: usize) {
        if bytes == 0 {
            return;
        }
        for (name, _) in &share.budgets {
            if let Some(b) = self.buckets.get_mut(name) {
                b.spend(bytes);
            }
        }
    }

    /// Parked files whose budget has refilled go back to the files with data.
    fn unpark(&mut self, now: Instant, dirty: &mut HashSet<FileKey>) {
        if self.parked.is_empty() {
            return;
        }
        self.parked.retain(|key, at| {
            if *at <= now {
                dirty.insert(*key);
                false
            } else {
                true
            }
        });
    }

    /// How long the loop may sleep before a parked file may read again.
    pub(super) fn until_unpark(&self, now: Instant) -> Duration {
        self.parked
            .values()
            .min()
            .map_or(Duration::MAX, |t| t.saturating_duration_since(now))
    }

    /// The order of one round: groups least recently served first, each group's files least
    /// recently read first. Marks the groups served.
    fn plan(&mut self, files: Vec<(Arc<str>, u64, FileKey)>) -> Vec<Vec<FileKey>> {
        let mut groups: HashMap<Arc<str>, Vec<(u64, FileKey)>> = HashMap::new();
        for (g, last, key) in files {
            groups.entry(g).or_default().push((last, key));
        }
        // (when served, group, its files by when they last read)
        type Entry = (u64, Arc<str>, Vec<(u64, FileKey)>);
        let mut order: Vec<Entry> = groups
            .into_iter()
            .map(|(g, mut files)| {
                files.sort_unstable();
                (self.served.get(&g).copied().unwrap_or(0), g, files)
            })
            .collect();
        order.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        order
            .into_iter()
            .map(|(_, g, files)| {
                let turn = self.next_turn();
                self.served.insert(g, turn);
                files.into_iter().map(|(_, k)| k).collect()
            })
            .collect()
    }

    fn next_turn(&mut self) -> u64 {
        self.turn += 1;
        self.turn
    }
}

/// Runs one round of `plan`: every group reads until it has read `quantum` bytes, one file
/// after the other (`turn(file, limit)` reads at most `limit` bytes and says whether more is
/// waiting and how much it read; `Break`: stop). Returns whether more is waiting and the files
/// whose group's quantum ran out before their turn.
fn spend_quanta(
    plan: Vec<Vec<FileKey>>,
    quantum: usize,
    turn: &mut dyn FnMut(FileKey, usize) -> ControlFlow<(), (bool, usize)>,
) -> (bool, Vec<FileKey>) {
    let mut more = false;
    let mut left = Vec::new();
    for files in plan {
        let mut budget = quantum;
        let mut files = files.into_iter();
        for key in files.by_ref() {
            let ControlFlow::Continue((m, bytes)) = turn(key, budget) else {
                return (more, left);
            };
            more |= m;
            budget = budget.saturating_sub(bytes);
            if budget == 0 {
                break;
            }
        }
        // The group's quantum is spent: its other files read at the next round.
        left.extend(files);
    }
    more |= !left.is_empty();
    (more, left)
}

/// The key of a file's pod: `ns`, `ns/pod` or `ns/pod/container`.
fn key_of(key: BudgetKey, p: &PodRef) -> Arc<str> {
    match key {
        BudgetKey::Namespace => Arc::from(p.namespace.as_str()),
        BudgetKey::Pod => Arc::from(format!("{}/{}", p.namespace, p.pod_name)),
        BudgetKey::Container => Arc::from(format!(
            "{}/{}/{}",
            p.namespace, p.pod_name, p.container_name
        )),
    }
}

/// A budget as an annotation writes it: a size per second, at least 1KiB.
pub(super) fn parse_rate(value: &str) -> Result<u64, String> {
    let v = value.trim();
    let v = v.strip_suffix("/s").unwrap_or(v).trim();
    let bytes = match v.parse::<u64>() {
        Ok(n) => n,
        Err(_) => v
            .parse::<bytesize::ByteSize>()
            .map_err(|e| format!("`{value}` is not a size ({e}); write e.g. 1MiB"))?
            .as_u64(),
    };
    if bytes < MIN_RATE {
        return Err(format!("`{value}` is below the minimum of 1KiB per second"));
    }
    Ok(bytes)
}

impl Reader {
    /// One round over the files with data: each group (tenant) a quantum of
    /// `read_chunk_bytes`, spent on its files least recently read first, within their budgets.
    /// Files left over or with more data stay in `dirty`. Returns whether more is waiting, or
    /// `None` when the sink is gone.
    pub(super) fn read_round(&mut self, dirty: &mut HashSet<FileKey>) -> Option<bool> {
        let now = Instant::now();
        self.fair.unpark(now, dirty);
        if self
            .fair
            .gauges_at
            .is_none_or(|t| now.duration_since(t) >= GAUGE_EVERY)
        {
            self.fair.gauges_at = Some(now);
            self.fair_gauges(now);
        }
        let chunk = self.cfg.input.read_chunk_bytes;
        let mut more = false;
        if self.fair.fairness == Fairness::Off {
            for key in std::mem::take(dirty) {
                more |= self.fair_turn(key, CHUNKS_PER_TURN * chunk, dirty).0;
                if full(&self.batch, &self.cfg) && !self.seal() {
                    return None;
                }
            }
            return Some(more);
        }
        let files: Vec<(Arc<str>, u64, FileKey)> = std::mem::take(dirty)
            .into_iter()
            .filter_map(|k| {
                let of = self.files.get(&k)?;
                Some((of.share.group.clone(), of.share.last_turn, k))
            })
            .collect();
        let plan = self.fair.plan(files);
        let mut gone = false;
        let (m, left) = spend_quanta(plan, chunk, &mut |key, limit| {
            let (m, bytes) = self.fair_turn(key, limit, dirty);
            if full(&self.batch, &self.cfg) && !self.seal() {
                gone = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue((m, bytes))
        });
        if gone {
            return None;
        }
        more |= m;
        dirty.extend(left);
        Some(more)
    }

    /// One file's turn of at most `limit` bytes within its budgets (a file whose budget is
    /// spent is parked). Returns whether more is waiting and the bytes read.
    fn fair_turn(
        &mut self,
        key: FileKey,
        limit: usize,
        dirty: &mut HashSet<FileKey>,
    ) -> (bool, usize) {
        let now = Instant::now();
        // A new file's budgets are known once it is rendered: before its first turn is measured.
        if self
            .files
            .get(&key)
            .is_some_and(|of| of.held_by == 0 && of.ctx.is_none())
            && !self.ensure_rendered(key, now)
        {
            return (false, 0);
        }
        let Some(of) = self.files.get_mut(&key) else {
            return (false, 0);
        };
        let Some(limit) = self.fair.allowance(key, &of.share, limit, now) else {
            of.share.behind_since.get_or_insert(now);
            return (false, 0);
        };
        of.share.last_turn = self.fair.next_turn();
        let turn = self.read_file(key, limit);
        if let Some(of) = self.files.get_mut(&key) {
            self.fair.spend(&of.share, turn.bytes);
            if turn.more {
                of.share.behind_since.get_or_insert(now);
                dirty.insert(key);
            } else if turn.bytes > 0 || of.at_eof_since.is_some() {
                of.share.behind_since = None;
                self.fair.caught_up(&of.share, Instant::now());
            }
        }
        (turn.more, turn.bytes)
    }

    /// Bytes behind per key (the biggest `LABELLED_KEYS`, the rest as `other`) and the oldest
    /// unread byte's age; budgets and groups of keys no open file has are dropped.
    fn fair_gauges(&mut self, now: Instant) {
        let mut behind: HashMap<Arc<str>, u64> = HashMap::new();
        let mut oldest = Duration::ZERO;
        let mut used: HashSet<&Arc<str>> = HashSet::new();
        for of in self.files.values() {
            used.insert(&of.share.group);
            used.extend(of.share.budgets.iter().map(|(n, _)| n));
            let Some(since) = of.share.behind_since else {
                continue;
            };
            oldest = oldest.max(now.saturating_duration_since(since));
            let unread = of
                .tailed
                .size()
                .unwrap_or(0)
                .saturating_sub(of.tailed.framed_offset());
            *behind.entry(of.share.label.clone()).or_default() += unread;
        }
        let fair = &mut self.fair;
        fair.served.retain(|g, _| used.contains(g));
        for b in fair.buckets.values_mut() {
            b.refill(now);
            b.count_throttled(now, true, &fair.metrics);
        }
        fair.buckets.retain(|n, b| used.contains(n) || !b.full());
        let metrics = &fair.metrics;
        metrics.oldest_unread_age_seconds.set(oldest.as_secs_f64());
        let mut keys: Vec<(u64, Arc<str>)> = behind.into_iter().map(|(k, v)| (v, k)).collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        metrics.read_bytes_behind.clear();
        let mut other = 0;
        for (i, (bytes, key)) in keys.into_iter().enumerate() {
            if i < LABELLED_KEYS {
                metrics
                    .read_bytes_behind
                    .get_or_create(&crate::telemetry::metrics::Tenant {
                        key: key.to_string(),
                    })
                    .set(bytes as i64);
            } else {
                other += bytes;
            }
        }
        // Always there (0: no key beyond the labelled ones is behind).
        metrics
            .read_bytes_behind
            .get_or_create(&crate::telemetry::metrics::Tenant {
                key: "other".to_string(),
            })
            .set(other as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::from_yaml("node_name: n\nstate_dir: /tmp/x\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n", &|_| None).unwrap()
    }

    fn rate(bps: u64, burst: u64) -> Rate {
        Rate {
            bytes_per_second: bps,
            burst,
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rate(100 << 10, 200 << 10), t0, "ns".into());
        assert_eq!(b.allowance(t0), Ok(200 << 10));
        b.spend(200 << 10);
        // Empty: the next read waits until MIN_READ bytes are back (40 ms at 100 KiB/s).
        let at = b.allowance(t0).unwrap_err();
        let wait = at - t0;
        assert!(
            wait > Duration::from_millis(39) && wait < Duration::from_millis(41),
            "{wait:?}"
        );
        // Half a second later: 50 KiB.
        assert_eq!(b.allowance(t0 + Duration::from_millis(500)), Ok(50 << 10));
        // Never more than the burst, however long it was quiet.
        assert_eq!(b.allowance(t0 + Duration::from_secs(60)), Ok(200 << 10));
    }

    #[test]
    fn over_a_long_run_a_bucket_allows_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rate(1 << 20, 1 << 20), t0, "ns".into());
        let mut read = 0u64;
        let mut now = t0;
        // Read greedily every 10 ms for 10 s, 64 KiB at most per read.
        while now < t0 + Duration::from_secs(10) {
            if let Ok(a) = b.allowance(now) {
                let n = a.min(64 << 10) as usize;
                b.spend(n);
                read += n as u64;
            }
            now += Duration::from_millis(10);
        }
        // The burst plus ten seconds at the rate, give or take one read.
        let expected = 11u64 << 20;
        assert!(
            read <= expected && read + (64 << 10) >= expected,
            "{read} vs {expected}"
        );
    }

    /// Files 1..=3 are one noisy tenant's (always a backlog), 10 and 11 quiet tenants' (a line
    /// each round). Over many rounds every quiet line is read in the round it is waiting, and
    /// the noisy tenant reads one quantum per round, however many files it has.
    #[test]
    fn round_robin_serves_quiet_tenants_every_round() {
        let mut fair = Fair::new(&cfg(), Arc::new(Metrics::new()));
        let quantum = 256 << 10;
        let mut last: HashMap<FileKey, u64> = HashMap::new();
        for round in 0..50 {
            let mut files: Vec<(Arc<str>, u64, FileKey)> = Vec::new();
            for k in [1, 2, 3] {
                files.push(("noisy".into(), last.get(&k).copied().unwrap_or(0), k));
            }
            for (k, g) in [(10, "quiet-a"), (11, "quiet-b")] {
                files.push((g.into(), last.get(&k).copied().unwrap_or(0), k));
            }
            let plan = fair.plan(files);
            let mut read: HashMap<FileKey, usize> = HashMap::new();
            let mut turn = |key: FileKey, limit: usize| {
                let bytes = if key >= 10 { 120.min(limit) } else { limit };
                *read.entry(key).or_default() += bytes;
                last.insert(key, round * 100 + key);
                ControlFlow::Continue((key < 10, bytes))
            };
            let (more, left) = spend_quanta(plan, quantum, &mut turn);
            assert!(more);
            assert_eq!(read.get(&10), Some(&120), "round {round}: {read:?}");
            assert_eq!(read.get(&11), Some(&120), "round {round}: {read:?}");
            let noisy: usize = [1, 2, 3].iter().filter_map(|k| read.get(k)).sum();
            assert_eq!(noisy, quantum, "round {round}");
            // One noisy file read; the others wait for the next rounds.
            assert_eq!(left.len(), 2, "round {round}: {left:?}");
        }
    }

    #[test]
    fn groups_take_turns_least_recently_served_first() {
        let mut fair = Fair::new(&cfg(), Arc::new(Metrics::new()));
        let first = fair.plan(vec![("a".into(), 0, 1), ("b".into(), 0, 2)]);
        assert_eq!(first, vec![vec![1], vec![2]]);
        // `b` was served after `a`: a round in which only `b` and a new `c` have data puts `c`
        // (never served) first, then `b`.
        let second = fair.plan(vec![("b".into(), 0, 2), ("c".into(), 0, 3)]);
        assert_eq!(second, vec![vec![3], vec![2]]);
        // Within a group, the file read least recently goes first.
        let third = fair.plan(vec![("a".into(), 9, 4), ("a".into(), 5, 1)]);
        assert_eq!(third, vec![vec![1, 4]]);
    }

    /// A file just opened (its first line incomplete, or its pod's metadata awaited) is in
    /// its tenant's group already: new files of a noisy namespace and of a quiet one do not
    /// share one turn (they did, as the group "", and a quiet pod's first lines waited behind
    /// every new noisy file's first quantum).
    #[test]
    fn a_file_is_in_its_tenants_group_before_it_is_rendered() {
        let pod = |ns: &str, name: &str| PodRef {
            namespace: ns.into(),
            pod_name: name.into(),
            pod_uid: None,
            container_name: "app".into(),
            container_id: None,
        };
        let fair = Fair::new(&cfg(), Arc::new(Metrics::new()));
        let (mut noisy, mut calm, mut none) =
            (Share::default(), Share::default(), Share::default());
        fair.place(&mut noisy, Some(&pod("noisy", "storm-1")));
        fair.place(&mut calm, Some(&pod("calm", "web")));
        fair.place(&mut none, None);
        assert_eq!(
            (&*noisy.group, &*calm.group, &*none.group),
            ("noisy", "calm", "")
        );
        assert!(noisy.budgets.is_empty());
        let mut by_pod = cfg();
        by_pod.input.fairness = Fairness::Pod;
        let fair = Fair::new(&by_pod, Arc::new(Metrics::new()));
        fair.place(&mut noisy, Some(&pod("noisy", "storm-1")));
        assert_eq!(&*noisy.group, "noisy/storm-1");
    }

    #[test]
    fn rate_annotations_parse_sizes_and_refuse_nonsense() {
        assert_eq!(parse_rate("1MiB"), Ok(1 << 20));
        assert_eq!(parse_rate(" 512KiB/s "), Ok(512 << 10));
        assert_eq!(parse_rate("2048"), Ok(2048));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10").unwrap_err().contains("minimum"));
        assert!(parse_rate("").is_err());
    }
}
