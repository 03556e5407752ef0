//! `sluice tap`: the client of a running agent's `/tap`. Documents go to `out` one JSON object a
//! line, as they arrive; the tap's own `{"sluice_tap":…}` lines become notes on `err` (how many
//! copies the agent dropped because this client read too slowly). It only reads: it cannot
//! change what the agent ships.

use std::io::Write;

/// What to ask the tap for (`/tap`'s query parameters).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub grep: Option<String>,
    /// A fraction in (0, 1]: every n-th matching document.
    pub sample: Option<f64>,
    pub limit: Option<u64>,
}

impl Request {
    /// `base` is the telemetry endpoint (`http://127.0.0.1:9890`).
    pub fn url(&self, base: &reqwest::Url) -> anyhow::Result<reqwest::Url> {
        let mut url = base
            .join("/tap")
            .map_err(|e| anyhow::anyhow!("not a telemetry URL: {base}: {e}"))?;
        {
            let mut q = url.query_pairs_mut();
            let mut put = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            };
            put("namespace", &self.namespace);
            put("pod", &self.pod);
            put("container", &self.container);
            put("grep", &self.grep);
            put("sample", &self.sample.map(|s| s.to_string()));
            put("limit", &self.limit.map(|l| l.to_string()));
        }
        Ok(url)
    }
}

/// Streams the tap until it ends (`limit` reached) or the agent closes it. Returns the number
/// of documents written.
pub async fn follow(
    url: reqwest::Url,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut resp = reqwest::Client::new()
        .get(url.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the agent's tap at {url}: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        anyhow::bail!("{url}: {status}: {}", text.trim());
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut docs = 0u64;
    let mut dropped = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(nl) = memchr::memchr(b'\n', &pending) {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            if line.starts_with(b"{\"sluice_tap\":") {
                let v: serde_json::Value = serde_json::from_slice(&line)?;
                let now = v["sluice_tap"]["dropped"].as_u64().unwrap_or(0);
                if now > dropped {
                    writeln!(
                        err,
                        "sluice tap: {} documents dropped so far (this client read too slowly; the agent never waits for it)",
                        now
                    )?;
                    dropped = now;
                }
                continue;
            }
            out.write_all(&line)?;
            docs += 1;
        }
        out.flush()?;
    }
    Ok(docs)
}
