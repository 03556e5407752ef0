//! A bulk endpoint that only counts: the benchmark's stand-in for Elasticsearch, so that what is
//! measured is the agent, not the search engine. It must stay cheap: it runs on the same cores.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;

/// A bulk endpoint that only counts: gunzips if needed, counts NDJSON lines (two per document)
/// and answers `{"errors":false}`, which the agent takes as "all created".
pub fn counting_endpoint(count: Arc<AtomicU64>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                if let Err(e) = serve(conn, &count) {
                    eprintln!("counting endpoint: {e:#}");
                }
            });
        }
    });
    Ok(addr)
}

fn serve(conn: TcpStream, count: &AtomicU64) -> anyhow::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(1 << 20, conn);
    let mut body = Vec::new();
    let mut plain = Vec::new();
    let mut line = String::new();
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
        let lines = memchr::memchr_iter(b'\n', nd).count() as u64;
        count.fetch_add(lines / 2, Ordering::Relaxed);
        const RESP: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"errors\":false}";
        w.write_all(RESP)?;
    }
}
