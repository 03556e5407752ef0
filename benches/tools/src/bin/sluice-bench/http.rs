//! A minimal HTTP/1.1 client for the few plain `http://host:port` calls the driver makes
//! (Elasticsearch's count, node stats and index deletion with `--es`; the agent's `/metrics`
//! with `--kube`): keeps the benchmark free of a blocking HTTP client dependency.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::Context;

/// The response body of one request (no request body).
pub fn http(method: &str, url: &str) -> anyhow::Result<Vec<u8>> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(host)?;
    write!(
        s,
        "{method} {} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n",
        if path.is_empty() { "/" } else { path }
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let head_end = memchr::memmem::find(&resp, b"\r\n\r\n").context("bad HTTP response")?;
    let head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
    let body = resp[head_end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        return dechunk(&body);
    }
    Ok(body)
}

pub fn http_json(method: &str, url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice(&http(method, url)?)?)
}

/// Total CPU milliseconds of the Elasticsearch node(s) behind `es`.
pub fn es_cpu_ms(es: &str) -> anyhow::Result<u64> {
    let v = http_json("GET", &format!("{es}/_nodes/stats/process"))?;
    let nodes = v["nodes"].as_object().context("no nodes in node stats")?;
    Ok(nodes
        .values()
        .filter_map(|n| n["process"]["cpu"]["total_in_millis"].as_u64())
        .sum())
}

/// One sample's value from a Prometheus text exposition (`name value` lines, no labels).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = memchr::memmem::find(b, b"\r\n").context("bad chunk")?;
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol])?.trim(), 16)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}
