//! The HTTP call: one bulk request to one of the configured endpoints, compressed if configured.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::config::{Compression, ElasticsearchConfig};

/// Only what the per-item decision needs; keeps responses small.
const FILTER: &str = "filter_path=errors,items.*.status,items.*.error";

#[derive(Debug)]
pub struct Service {
    client: reqwest::Client,
    bulk_urls: Vec<reqwest::Url>,
    next: AtomicUsize,
    compression: Compression,
}

impl Service {
    pub fn new(cfg: &ElasticsearchConfig) -> Result<Service, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(std::time::Duration::from_secs(10)))
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()?;
        let bulk_urls = cfg
            .endpoints
            .iter()
            .map(|e| {
                let mut u = e.clone();
                let path = format!("{}/_bulk", u.path().trim_end_matches('/'));
                u.set_path(&path);
                u.set_query(Some(FILTER));
                u
            })
            .collect();
        Ok(Service {
            client,
            bulk_urls,
            next: AtomicUsize::new(0),
            compression: cfg.compression,
        })
    }

    /// Sends one NDJSON body. `Err` is a transport failure (refused, reset, timeout).
    pub async fn bulk(&self, body: &[u8]) -> Result<(u16, Bytes), String> {
        let url = &self.bulk_urls[self.next.fetch_add(1, Ordering::Relaxed) % self.bulk_urls.len()];
        let mut req = self
            .client
            .post(url.clone())
            .header("content-type", "application/x-ndjson");
        let payload = match self.compression {
            Compression::None => body.to_vec(),
            Compression::Gzip => {
                req = req.header("content-encoding", "gzip");
                gzip(body)
            }
        };
        let resp = req
            .body(payload)
            .send()
            .await
            .map_err(|e| describe(url, &e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| describe(url, &e))?;
        Ok((status, body))
    }
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
