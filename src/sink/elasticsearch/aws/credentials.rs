//! AWS credentials for signing: the SDK's default provider chain behind a cache.
//!
//! The SDK caches credentials only inside its own clients, so calling the chain directly would
//! ask STS or IMDS on every request. This cache loads once, serves the credentials to every
//! request, and loads again:
//! - ahead of expiry (5 minutes before, or halfway through a shorter lifetime), as the SDKs do;
//! - every 15 minutes for credentials without an expiry (keys in a mounted profile file that a
//!   rotated Secret replaced);
//! - when Elasticsearch refuses a signature (401/403): the keys may have been rotated or the
//!   session revoked. Such forced loads are paced (at once, then 10 s doubling to 5 min, reset by
//!   an accepted request) so a permission problem does not turn every retry into an STS call.
//!
//! Each load builds the chain anew: the profile provider parses its files only once per chain,
//! and a fresh chain is how a rewritten credentials file is read again. One load runs at a time;
//! concurrent requests wait for it. It never holds the credentials' secrets in an error or a log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use futures::future::BoxFuture;
use tokio::time::Instant;

/// Credentials without an expiry are loaded again after this long.
const STATIC_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Expiring credentials are refreshed this long before they expire.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// After a failed load, callers get the same error without a new attempt for this long.
const FAILED_LOAD_HOLD: Duration = Duration::from_secs(1);
/// A refresh ahead of expiry that failed is tried again after this long (the old credentials
/// serve meanwhile).
const RETRY_REFRESH: Duration = Duration::from_secs(10);
/// A load that takes longer (STS or IMDS not answering) fails: every request waits for it.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_FORCED_INTERVAL: Duration = Duration::from_secs(10);
const MAX_FORCED_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// What one load yields.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub credentials: Credentials,
    pub region: String,
}

/// Where credentials come from (the AWS chain; a fake in tests).
pub trait Load: Send + Sync + std::fmt::Debug {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, String>>;
}

/// The SDK's standard chain: environment, profile files, web identity (IRSA), ECS / EKS Pod
/// Identity, IMDS; the region from the configuration, else the AWS environment.
#[derive(Debug)]
pub struct ChainLoader {
    region: Option<String>,
}

impl ChainLoader {
    pub fn new(region: Option<String>) -> ChainLoader {
        ChainLoader { region }
    }
}

impl Load for ChainLoader {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, String>> {
        Box::pin(async move {
            let region = aws_config::meta::region::RegionProviderChain::first_try(
                self.region.clone().map(aws_config::Region::new),
            )
            .or_default_provider();
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(region)
                .load()
                .await;
            let region = sdk.region().map(|r| r.to_string()).ok_or(
                "no AWS region: set elasticsearch.auth.aws.region, or AWS_REGION in the agent's \
                 environment",
            )?;
            let provider = sdk
                .credentials_provider()
                .ok_or("the AWS SDK configured no credentials provider")?;
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| error_chain(&e))?;
            Ok(Loaded {
                credentials,
                region,
            })
        })
    }
}

/// The credentials (and region) one request is signed with. Its generation tells the cache
/// whether a refusal concerns the credentials it holds now or older ones.
#[derive(Debug, Clone)]
pub struct Lease {
    credentials: Credentials,
    region: Arc<str>,
    generation: u64,
}

impl Lease {
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
    pub fn region(&self) -> &str {
        &self.region
    }
}

#[derive(Debug)]
struct Current {
    lease: Lease,
    refresh_at: Instant,
    /// `None`: does not expire.
    expires_at: Option<Instant>,
}

#[derive(Debug)]
struct State {
    current: Option<Current>,
    generation: u64,
    /// A 401/403 answered a request signed with the current credentials.
    rejected: bool,
    /// A forced load (after a refusal) waits until then.
    next_forced: Option<Instant>,
    forced_interval: Duration,
    /// The last load's error and until when it is served without loading again.
    failed: Option<(String, Instant)>,
}

impl State {
    fn fresh(&self, now: Instant) -> Option<Lease> {
        let c = self.current.as_ref()?;
        let forced = self.rejected && self.next_forced.is_none_or(|t| now >= t);
        (!forced && now < c.refresh_at).then(|| c.lease.clone())
    }
}

#[derive(Debug)]
pub struct CredentialCache {
    loader: Box<dyn Load>,
    state: Mutex<State>,
    /// Held for the length of a load, so only one runs at a time.
    loading: tokio::sync::Mutex<()>,
}

impl CredentialCache {
    pub fn new(loader: Box<dyn Load>) -> CredentialCache {
        CredentialCache {
            loader,
            state: Mutex::new(State {
                current: None,
                generation: 0,
                rejected: false,
                next_forced: None,
                forced_interval: FIRST_FORCED_INTERVAL,
                failed: None,
            }),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The credentials to sign with now, loading them when needed.
    pub async fn get(&self) -> Result<Lease, String> {
        if let Some(lease) = self.lock().fresh(Instant::now()) {
            return Ok(lease);
        }
        let _loading = self.loading.lock().await;
        let forced = {
            let st = self.lock();
            let now = Instant::now();
            // Another caller may have loaded (or failed) while this one waited.
            if let Some(lease) = st.fresh(now) {
                return Ok(lease);
            }
            if let Some((e, until)) = &st.failed
                && now < *until
            {
                return Err(e.clone());
            }
            st.rejected
        };
        if forced {
            tracing::warn!(
                "Elasticsearch refused the AWS signature (HTTP 401/403); loading the AWS \
                 credentials again"
            );
        }
        let result = tokio::time::timeout(LOAD_TIMEOUT, self.loader.load())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {LOAD_TIMEOUT:?}")));
        let now = Instant::now();
        let mut st = self.lock();
        match result {
            Ok(loaded) => {
                st.generation += 1;
                st.failed = None;
                if st.rejected {
                    st.rejected = false;
                    st.next_forced = Some(now + st.forced_interval);
                    st.forced_interval = (st.forced_interval * 2).min(MAX_FORCED_INTERVAL);
                }
                let current = Current::new(loaded, st.generation, now);
                // aws-config logs which provider answered at info, with the access key id;
                // the agent's default filter keeps it at warn.
                tracing::info!(
                    region = %current.lease.region,
                    expires_in = ?current.expires_at.map(|t| t.saturating_duration_since(now)),
                    "AWS credentials loaded"
                );
                let lease = current.lease.clone();
                st.current = Some(current);
                Ok(lease)
            }
            Err(e) => {
                let rejected = st.rejected;
                if let Some(c) = st.current.as_mut()
                    && !rejected
                    && c.expires_at.is_none_or(|t| now < t)
                {
                    tracing::warn!(error = %e, retry_in = ?RETRY_REFRESH, "cannot refresh the AWS credentials; the current ones are still valid and keep being used");
                    c.refresh_at = now + RETRY_REFRESH;
                    return Ok(c.lease.clone());
                }
                // Logged by the caller, with what it was doing (bulk request, setup, probe).
                st.failed = Some((e.clone(), now + FAILED_LOAD_HOLD));
                Err(e)
            }
        }
    }

    /// A request signed under `lease` got 401/403.
    pub fn rejected(&self, lease: &Lease, status: u16) {
        let mut st = self.lock();
        if lease.generation == st.generation && !st.rejected {
            tracing::debug!(
                status,
                "a request signed with the current AWS credentials was refused"
            );
            st.rejected = true;
        }
    }

    /// A request signed under `lease` was answered without a refusal: the credentials work.
    pub fn accepted(&self, lease: &Lease) {
        let mut st = self.lock();
        if lease.generation == st.generation && (st.rejected || st.next_forced.is_some()) {
            st.rejected = false;
            st.next_forced = None;
            st.forced_interval = FIRST_FORCED_INTERVAL;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Current {
    fn new(loaded: Loaded, generation: u64, now: Instant) -> Current {
        let lifetime = loaded
            .credentials
            .expiry()
            .map(|e| e.duration_since(SystemTime::now()).unwrap_or_default());
        let refresh_in = match lifetime {
            None => STATIC_LIFETIME,
            Some(l) => l.saturating_sub(REFRESH_AHEAD).max(l / 2),
        };
        Current {
            lease: Lease {
                credentials: loaded.credentials,
                region: loaded.region.into(),
                generation,
            },
            refresh_at: now + refresh_in,
            expires_at: lifetime.map(|l| now + l),
        }
    }
}

/// An error and its sources on one line: the SDK's errors say little at the top level, and its
/// "no credentials found in chain" lists each provider on a line of its own, which would split
/// a text log line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    let mut line = String::with_capacity(s.len());
    for part in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hands out numbered credentials (`AKID1`, `AKID2`, …) or fails while `fail` is set.
    #[derive(Debug, Default)]
    struct Fake {
        loads: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        lifetime: Option<Duration>,
    }

    impl Load for Arc<Fake> {
        fn load(&self) -> BoxFuture<'_, Result<Loaded, String>> {
            Box::pin(async move {
                let n = self.loads.fetch_add(1, Ordering::SeqCst) + 1;
                if self.fail.load(Ordering::SeqCst) {
                    return Err("sts unreachable".into());
                }
                Ok(Loaded {
                    credentials: Credentials::new(
                        format!("AKID{n}"),
                        "secret",
                        None,
                        self.lifetime.map(|l| SystemTime::now() + l),
                        "fake",
                    ),
                    region: "eu-west-1".into(),
                })
            })
        }
    }

    fn cache(lifetime: Option<Duration>) -> (Arc<Fake>, CredentialCache) {
        let fake = Arc::new(Fake {
            lifetime,
            ..Fake::default()
        });
        (fake.clone(), CredentialCache::new(Box::new(fake)))
    }

    async fn key(c: &CredentialCache) -> String {
        c.get()
            .await
            .unwrap()
            .credentials()
            .access_key_id()
            .to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn loads_once_and_serves_every_request() {
        let (fake, c) = cache(None);
        for _ in 0..5 {
            assert_eq!(key(&c).await, "AKID1");
        }
        assert_eq!(fake.loads.load(Ordering::SeqCst), 1);
        assert_eq!(c.get().await.unwrap().region(), "eu-west-1");
        // Static keys are read again after 15 minutes (a rotated credentials file).
        tokio::time::advance(STATIC_LIFETIME).await;
        assert_eq!(key(&c).await, "AKID2");
    }

    #[tokio::test(start_paused = true)]
    async fn expiring_credentials_are_refreshed_ahead_of_expiry() {
        let (_, c) = cache(Some(Duration::from_secs(3600)));
        assert_eq!(key(&c).await, "AKID1");
        tokio::time::advance(Duration::from_secs(3600) - REFRESH_AHEAD - Duration::from_secs(1))
            .await;
        assert_eq!(key(&c).await, "AKID1");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(key(&c).await, "AKID2", "refreshed 5 minutes before expiry");
        // A short lifetime is refreshed halfway, not on every request.
        let (fake, c) = cache(Some(Duration::from_secs(120)));
        key(&c).await;
        tokio::time::advance(Duration::from_secs(59)).await;
        key(&c).await;
        assert_eq!(fake.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_loads_again_at_once_then_paced_until_accepted() {
        let (fake, c) = cache(None);
        let first = c.get().await.unwrap();
        c.rejected(&first, 403);
        let second = c.get().await.unwrap();
        assert_eq!(second.credentials().access_key_id(), "AKID2");
        // A late refusal of the old credentials changes nothing.
        c.rejected(&first, 403);
        assert_eq!(key(&c).await, "AKID2");
        // The new ones are refused too: the next load waits 10 s, then 20 s.
        c.rejected(&second, 403);
        assert_eq!(key(&c).await, "AKID2");
        tokio::time::advance(FIRST_FORCED_INTERVAL).await;
        let third = c.get().await.unwrap();
        assert_eq!(third.credentials().access_key_id(), "AKID3");
        c.rejected(&third, 403);
        tokio::time::advance(FIRST_FORCED_INTERVAL).await;
        assert_eq!(key(&c).await, "AKID3", "second wait is 20 s");
        tokio::time::advance(FIRST_FORCED_INTERVAL).await;
        let fourth = c.get().await.unwrap();
        assert_eq!(fourth.credentials().access_key_id(), "AKID4");
        // Accepted: the pacing starts over; the next refusal loads at once.
        c.accepted(&fourth);
        c.rejected(&fourth, 401);
        assert_eq!(key(&c).await, "AKID5");
        assert_eq!(fake.loads.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_valid_credentials_and_a_failed_first_load_is_an_error() {
        let (fake, c) = cache(Some(Duration::from_secs(3600)));
        key(&c).await;
        fake.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(3600) - REFRESH_AHEAD).await;
        assert_eq!(key(&c).await, "AKID1", "still valid: kept");
        assert_eq!(fake.loads.load(Ordering::SeqCst), 2);
        assert_eq!(key(&c).await, "AKID1", "not retried at once");
        assert_eq!(fake.loads.load(Ordering::SeqCst), 2);
        tokio::time::advance(REFRESH_AHEAD).await;
        let e = c.get().await.unwrap_err();
        assert!(e.contains("sts unreachable"), "{e}");
        // Held for a second: concurrent callers do not each call STS.
        assert!(c.get().await.is_err());
        assert_eq!(fake.loads.load(Ordering::SeqCst), 3);
        fake.fail.store(false, Ordering::SeqCst);
        tokio::time::advance(FAILED_LOAD_HOLD).await;
        assert_eq!(key(&c).await, "AKID4");
    }

    #[derive(Debug)]
    struct Hangs;

    impl Load for Hangs {
        fn load(&self) -> BoxFuture<'_, Result<Loaded, String>> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_that_hangs_fails_after_the_timeout() {
        let c = CredentialCache::new(Box::new(Hangs));
        let e = c.get().await.unwrap_err();
        assert!(e.contains("no answer within 30s"), "{e}");
    }

    #[test]
    fn errors_name_their_sources_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("token file missing"));
        assert_eq!(error_chain(&e), "outer: token file missing");
        let e = std::io::Error::other(
            "none in chain. Attempted:\n  Env: not set\n  Profile: no file\n",
        );
        assert_eq!(
            error_chain(&e),
            "none in chain. Attempted: Env: not set; Profile: no file"
        );
    }
}
