//! A bulk endpoint that only counts: the benchmark's stand-in for Elasticsearch, so that what is
//! measured is the agent, not the search engine. It must stay cheap: it runs on the same cores.
//! One document in [`SAMPLE_EVERY`] is looked at closely: the size of its per-file metadata
//! fragment, and (with `--kube`) whether it carries the label only the API server knows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;

/// One document in this many is parsed and measured (per connection).
pub const SAMPLE_EVERY: u64 = 256;

/// Where the per-file fragment starts in a document the agent encoded: the `file` key closes
/// the `log` object, and everything after it is rendered once per file. Inside a JSON string
/// the quotes would be escaped, so the first match is the fragment.
const FRAGMENT_START: &[u8] = b",\"file\":{\"path\":\"";

/// A pod label (de-dotted key) and the value every enriched document must carry.
#[derive(Debug, Clone)]
pub struct Marker {
    pub key: String,
    pub value: String,
}

/// What the endpoint saw, shared with the driver.
#[derive(Debug, Default)]
pub struct Counts {
    pub docs: AtomicU64,
    pub sampled: AtomicU64,
    /// Sum over the sampled documents of their metadata fragment's bytes.
    pub fragment_bytes: AtomicU64,
    /// Sampled documents carrying the marker label with the expected value.
    pub marked: AtomicU64,
    /// Sampled documents carrying namespace labels.
    pub namespace_labelled: AtomicU64,
}

impl Counts {
    pub fn docs(&self) -> u64 {
        self.docs.load(Ordering::Relaxed)
    }

    /// Average bytes of the per-file metadata fragment of the sampled documents.
    pub fn fragment_bytes_per_doc(&self) -> f64 {
        let n = self.sampled.load(Ordering::Relaxed).max(1);
        self.fragment_bytes.load(Ordering::Relaxed) as f64 / n as f64
    }
}

/// A bulk endpoint that only counts: gunzips if needed, counts NDJSON lines (two per document)
/// and answers `{"errors":false}`, which the agent takes as "all created".
pub fn counting_endpoint(
    counts: Arc<Counts>,
    marker: Option<Marker>,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let counts = counts.clone();
            let marker = marker.clone();
            std::thread::spawn(move || {
                if let Err(e) = serve(conn, &counts, marker.as_ref()) {
                    eprintln!("counting endpoint: {e:#}");
                }
            });
        }
    });
    Ok(addr)
}

fn serve(conn: TcpStream, counts: &Counts, marker: Option<&Marker>) -> anyhow::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 20, conn);
    let mut body = Vec::new();
    let mut plain = Vec::new();
    let mut line = String::new();
    let mut sampler = Sampler {
        counts,
        marker,
        fragment: memchr::memmem::Finder::new(FRAGMENT_START),
        seen: 0,
    };
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(()); // keep-alive connection closed by the client
        }
        let (mut len, mut gzip) = (0usize, false);
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            let (k, v) = (k.to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => len = v.parse()?,
                "content-encoding" => gzip = v.eq_ignore_ascii_case("gzip"),
                "transfer-encoding" => bail!("chunked bodies are not supported"),
                _ => {}
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
        let nd = if gzip {
            plain.clear();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
            &plain
        } else {
            &body
        };
        // Lines alternate: action, document.
        let mut docs = 0;
        let mut start = 0;
        for (i, end) in memchr::memchr_iter(b'\n', nd).enumerate() {
            if i % 2 == 1 {
                docs += 1;
                sampler.document(&nd[start..end]);
            }
            start = end + 1;
        }
        counts.docs.fetch_add(docs, Ordering::Relaxed);
        const RESP: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"errors\":false}";
        w.write_all(RESP)?;
    }
}

/// Looks at one document in [`SAMPLE_EVERY`] of a connection.
struct Sampler<'a> {
    counts: &'a Counts,
    marker: Option<&'a Marker>,
    fragment: memchr::memmem::Finder<'static>,
    seen: u64,
}

impl Sampler<'_> {
    fn document(&mut self, doc: &[u8]) {
        self.seen += 1;
        if self.seen % SAMPLE_EVERY != 1 {
            return;
        }
        let c = self.counts;
        c.sampled.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = self.fragment.find(doc) {
            // With its line's newline: what the agent copies per event.
            let bytes = doc.len() + 1 - at;
            c.fragment_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        let Some(marker) = self.marker else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(doc) else {
            return;
        };
        let k8s = &v["kubernetes"];
        if k8s["labels"][&marker.key].as_str() == Some(&marker.value) {
            c.marked.fetch_add(1, Ordering::Relaxed);
        }
        if k8s["namespace_labels"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
        {
            c.namespace_labelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}
