//! The HTTP calls: one bulk request (compressed if configured) or one small management request,
//! sent to a healthy endpoint (see [`health`](super::health)), with the configured credentials
//! and TLS. Transport errors and 5xx mark the endpoint unhealthy. With AWS auth every request,
//! probes included, is signed here once built, at each attempt (see [`aws`](super::aws)).

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;

use super::auth::Auth;
use super::aws::{Lease, Signer};
use super::config::{Compression, ElasticsearchConfig};
use super::health::{Choice, Health};

/// Only what the per-item decision needs; keeps responses small.
// `failure_store`: whether a refused document was kept in the data stream's failure store.
const FILTER: &str = "filter_path=errors,items.*.status,items.*.error,items.*.failure_store";
/// Probe of an endpoint coming back: answered by the node itself, without the master.
const PROBE_PATH: &str = "_cluster/health";
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("elasticsearch.tls: cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("elasticsearch.tls: {what}: {source}")]
    Tls {
        what: String,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

#[derive(Debug)]
pub struct Service {
    client: reqwest::Client,
    /// Endpoint bases, always ending in `/`.
    bases: Vec<reqwest::Url>,
    health: Mutex<Health>,
    /// `sluice_elasticsearch_endpoints_healthy` (unregistered unless the agent exports it).
    healthy_gauge: Gauge,
    compression: Compression,
    auth: Auth,
    signer: Option<Signer>,
}

impl Service {
    pub fn new(cfg: &ElasticsearchConfig) -> Result<Service, ServiceError> {
        let client = http_client(cfg)?;
        let plain_http = cfg.endpoints.iter().any(|u| u.scheme() == "http");
        match &cfg.auth {
            Auth::None => {}
            // The secret key never travels, but the session token and replayable signed
            // requests do.
            Auth::Aws(_) if plain_http => tracing::warn!(
                "AWS signing is configured for a plain http endpoint: signed requests and the \
                 session token travel unencrypted"
            ),
            _ if plain_http => tracing::warn!(
                "credentials are configured for a plain http endpoint: they travel unencrypted"
            ),
            _ => {}
        }
        let signer = match &cfg.auth {
            Auth::Aws(aws) => Some(Signer::new(aws)),
            _ => None,
        };
        let bases = cfg
            .endpoints
            .iter()
            .map(|e| {
                let mut u = e.clone();
                if !u.path().ends_with('/') {
                    let p = format!("{}/", u.path());
                    u.set_path(&p);
                }
                u
            })
            .collect::<Vec<_>>();
        Ok(Service {
            client,
            health: Mutex::new(Health::new(bases.len())),
            healthy_gauge: Gauge::default(),
            bases,
            compression: cfg.compression,
            auth: cfg.auth.clone(),
            signer,
        })
    }

    /// Sends one NDJSON body. `Err` is a transport failure (refused, reset, timeout).
    pub async fn bulk(&self, body: Bytes) -> Result<(u16, Bytes), String> {
        let (payload, gzipped) = match self.compression {
            // Shares the sealed batch's body: no copy.
            Compression::None => (body, false),
            Compression::Gzip => (Bytes::from(gzip(&body)), true),
        };
        self.call(reqwest::Method::POST, "_bulk", Some(FILTER), |req| {
            let req = req
                .header("content-type", "application/x-ndjson")
                .body(payload.clone());
            if gzipped {
                req.header("content-encoding", "gzip")
            } else {
                req
            }
        })
        .await
    }

    /// A management request (`path` relative to the endpoint, e.g. `_index_template/x`).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Bytes), String> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let body = body.map(|b| b.to_string());
        self.call(method, path, query, |req| match &body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(b.clone()),
            None => req,
        })
        .await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&str>,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(u16, Bytes), String> {
        let i = self.choose().await?;
        let mut url = self.bases[i].join(path).map_err(|e| e.to_string())?;
        url.set_query(query);
        let req = build(self.auth.apply(self.client.request(method, url.clone()))?);
        // A signing failure (no credentials) is not the endpoint's fault: it stays healthy.
        let (req, lease) = self.prepare(req).await?;
        let result: Result<(u16, Bytes), String> = async {
            let resp = self
                .client
                .execute(req)
                .await
                .map_err(|e| describe(&url, &e))?;
            let status = resp.status().as_u16();
            self.answered(lease.as_ref(), status);
            let body = resp.bytes().await.map_err(|e| describe(&url, &e))?;
            Ok((status, body))
        }
        .await;
        match &result {
            Ok((status, _)) if *status < 500 => self.up(i),
            Ok((status, _)) => self.down(i, &format!("HTTP {status}")),
            Err(e) => self.down(i, e.as_str()),
        }
        result
    }

    /// An endpoint to send to; a recovering one must answer a probe first.
    async fn choose(&self) -> Result<usize, String> {
        let choice = self.lock().pick(Instant::now());
        match choice {
            Choice::Use(i) => Ok(i),
            Choice::Probe(i) => {
                let mut url = self.bases[i].join(PROBE_PATH).map_err(|e| e.to_string())?;
                url.set_query(Some("local=true"));
                let req = self
                    .auth
                    .apply(self.client.get(url.clone()).timeout(PROBE_TIMEOUT))?;
                let (req, lease) = self.prepare(req).await?;
                match self.client.execute(req).await {
                    // Any HTTP answer below 500 (even 401) means the node is there.
                    Ok(r) if r.status().as_u16() < 500 => {
                        self.answered(lease.as_ref(), r.status().as_u16());
                        self.up(i);
                        Ok(i)
                    }
                    Ok(r) => {
                        let e = format!("probe {url}: HTTP {}", r.status().as_u16());
                        self.down(i, &e);
                        Err(e)
                    }
                    Err(e) => {
                        let e = format!("probe: {}", describe(&url, &e));
                        self.down(i, &e);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Builds the request and, with AWS auth, signs it: now, just before it is sent, so each
    /// attempt (a retry too) carries a fresh date, and over the exact body bytes it carries.
    async fn prepare(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(reqwest::Request, Option<Lease>), String> {
        let mut req = req
            .build()
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let lease = match &self.signer {
            Some(signer) => Some(signer.sign(&mut req).await?),
            None => None,
        };
        Ok((req, lease))
    }

    /// Tells the signer whether the server took its signature (a 401/403 may mean rotated keys).
    fn answered(&self, lease: Option<&Lease>, status: u16) {
        if let (Some(signer), Some(lease)) = (&self.signer, lease) {
            signer.answered(lease, status);
        }
    }

    /// Exports the endpoints' health: `total` set once, `healthy` kept current.
    pub fn with_health_gauges(mut self, total: &Gauge, healthy: Gauge) -> Service {
        total.set(self.bases.len() as i64);
        healthy.set(self.lock().healthy() as i64);
        self.healthy_gauge = healthy;
        self
    }

    fn up(&self, i: usize) {
        let mut h = self.lock();
        if h.succeeded(i) {
            self.export(&h);
            tracing::info!(endpoint = %self.bases[i], "endpoint healthy again");
        }
    }

    fn down(&self, i: usize, why: &str) {
        let mut h = self.lock();
        if h.failed(i, Instant::now()) {
            self.export(&h);
            tracing::warn!(endpoint = %self.bases[i], reason = %why, healthy = h.healthy(), "endpoint unhealthy; backing off and probing it");
        }
    }

    /// Under the health lock, so concurrent changes reach the gauge in order.
    fn export(&self, h: &Health) {
        self.healthy_gauge.set(h.healthy() as i64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The HTTP client of `elasticsearch:` (timeouts, TLS: CA, client certificate, verification).
/// Also used for Kibana by `sluice setup --kibana`, which takes the same TLS settings.
pub fn http_client(cfg: &ElasticsearchConfig) -> Result<reqwest::Client, ServiceError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(30));
    let tls = &cfg.tls;
    if let Some(ca) = &tls.ca_file {
        let pem = read(ca)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ServiceError::Tls {
                what: format!("{} is not a PEM certificate bundle", ca.display()),
                source,
            })?;
        // A custom CA replaces the built-in roots: only that CA's certificates are trusted.
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some((cert, key)) = &tls.client_cert {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend_from_slice(&read(key)?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|source| ServiceError::Tls {
            what: format!(
                "{} and {} are not a PEM certificate and key",
                cert.display(),
                key.display()
            ),
            source,
        })?;
        b = b.identity(id);
    }
    if !tls.verify {
        tracing::warn!(
            "TLS CERTIFICATE VERIFICATION IS OFF (elasticsearch.tls.verify: false): anyone on the \
             path to Elasticsearch can read and change the logs and steal the credentials; use \
             tls.ca_file instead"
        );
        b = b.danger_accept_invalid_certs(true);
    }
    Ok(b.build()?)
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ServiceError> {
    std::fs::read(path).map_err(|source| ServiceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    enc.write_all(body).expect("gzip into Vec");
    enc.finish().expect("gzip into Vec")
}

fn describe(url: &reqwest::Url, e: &reqwest::Error) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port_or_known_default().unwrap_or(0);
    let mut s = format!("{host}:{port}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
