//! A stand-in for Kibana's saved-objects import API (`POST /api/saved_objects/_import`) on
//! 127.0.0.1: it checks what Kibana checks before it imports anything (method and path, the
//! `kbn-xsrf` header, a multipart body with one `file` part named `*.ndjson`, every line an
//! object, every reference resolving to an object of the file) and answers like Kibana. It is
//! not Kibana: it does not migrate or validate the objects' attributes.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/s/ops/api/saved_objects/_import?overwrite=true`).
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the import would do with a request, or why Kibana would refuse it (HTTP 400).
#[derive(Debug, Clone)]
pub struct Import {
    pub file_name: String,
    pub objects: Vec<Value>,
}

/// How the stand-in answers a request that passed the checks.
pub enum Answer {
    /// `success: true`, every object imported.
    Success,
    /// `success: false`, with this object (type, id) failing on a missing reference.
    FailObject(&'static str, &'static str),
}

pub struct FakeKibana {
    pub url: String,
    thread: Option<JoinHandle<()>>,
    seen: mpsc::Receiver<(Request, Result<Import, String>)>,
}

impl FakeKibana {
    /// Serves up to `requests` requests (each on its own connection), for at most 2 minutes.
    pub fn start(requests: usize, answer: Answer) -> FakeKibana {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, seen) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut served = 0;
            while served < requests && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        // Recorded before it is answered: the client (and the test after it)
                        // must never see an answer whose request `requests()` does not hold.
                        if let Some((mut stream, seen, reply)) = serve(stream, &answer) {
                            let _ = tx.send(seen);
                            let _ = stream.write_all(&reply);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => panic!("fake Kibana: accept: {e}"),
                }
            }
        });
        FakeKibana {
            url,
            thread: Some(thread),
            seen,
        }
    }

    /// The requests seen so far, with what the checks made of each.
    pub fn requests(&self) -> Vec<(Request, Result<Import, String>)> {
        self.seen.try_iter().collect()
    }
}

impl Drop for FakeKibana {
    fn drop(&mut self) {
        // The thread ends by itself at its deadline; it is not joined so a failing test does not
        // wait for it.
        drop(self.thread.take());
    }
}

/// Reads and checks one request; returns the connection, what was seen and the reply to write.
#[allow(clippy::type_complexity)]
fn serve(
    mut stream: TcpStream,
    answer: &Answer,
) -> Option<(TcpStream, (Request, Result<Import, String>), Vec<u8>)> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let req = read_request(&mut stream)?;
    let checked = check(&req);
    let (status, body) = match (&checked, answer) {
        (Err(why), _) => (
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": why}),
        ),
        (Ok(import), Answer::Success) => {
            let results: Vec<Value> = import
                .objects
                .iter()
                .map(|o| json!({"type": o["type"], "id": o["id"], "meta": {"title": o["attributes"]["title"]}}))
                .collect();
            (
                200,
                json!({"success": true, "successCount": results.len(), "errors": [], "successResults": results}),
            )
        }
        (Ok(import), Answer::FailObject(kind, id)) => {
            let title = import
                .objects
                .iter()
                .find(|o| o["type"] == *kind && o["id"] == *id)
                .map(|o| o["attributes"]["title"].clone())
                .unwrap_or(Value::Null);
            (
                200,
                json!({
                    "success": false,
                    "successCount": import.objects.len() - 1,
                    "errors": [{
                        "id": id, "type": kind, "title": title, "meta": {"title": title},
                        "error": {"type": "missing_references",
                                  "references": [{"type": "index-pattern", "id": "gone"}]}
                    }]
                }),
            )
        }
    };
    let body = body.to_string();
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut reply = head.into_bytes();
    reply.extend_from_slice(body.as_bytes());
    Some((stream, (req, checked), reply))
}

/// Reads one HTTP/1.1 request with a `content-length` body (what reqwest sends for a buffered
/// body).
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let method = start.next()?.to_string();
    let target = start.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

/// Kibana's checks before an import: the route, the CSRF header, the multipart form with one
/// `.ndjson` file, every line an object, every reference resolving within the file.
pub fn check(req: &Request) -> Result<Import, String> {
    if req.method != "POST" {
        return Err(format!("method {} (the import is a POST)", req.method));
    }
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let route = path
        .strip_prefix("/s/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(space, rest)| (Some(space), format!("/{rest}")))
        .unwrap_or((None, path.to_string()));
    if route.1 != "/api/saved_objects/_import" {
        return Err(format!("no such route: {path}"));
    }
    if let Some(space) = route.0
        && (space.is_empty()
            || !space
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'))
    {
        return Err(format!("bad space id {space:?}"));
    }
    if !query.split('&').any(|q| q == "overwrite=true") {
        return Err(format!("no overwrite=true in {query:?}"));
    }
    if req.header("kbn-xsrf").is_none() {
        return Err("Request must contain a kbn-xsrf header.".into());
    }
    let ct = req.header("content-type").unwrap_or("");
    let boundary = ct
        .strip_prefix("multipart/form-data;")
        .and_then(|rest| rest.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| format!("content-type {ct:?} is not multipart/form-data with a boundary"))?;
    let body = std::str::from_utf8(&req.body).map_err(|e| format!("body not UTF-8: {e}"))?;
    let delimiter = format!("--{boundary}");
    let mut pieces = body.split(delimiter.as_str());
    if pieces.next() != Some("") {
        return Err("the body does not start with the boundary".into());
    }
    let rest: Vec<&str> = pieces.collect();
    if rest.last().map(|l| l.trim_end()) != Some("--") {
        return Err("the body does not end with the closing boundary".into());
    }
    let parts = &rest[..rest.len() - 1];
    if parts.len() != 1 {
        return Err(format!("{} parts, expected one (`file`)", parts.len()));
    }
    let part = parts[0]
        .strip_prefix("\r\n")
        .and_then(|p| p.strip_suffix("\r\n"))
        .ok_or("a part is not framed by CRLF")?;
    let (part_head, content) = part
        .split_once("\r\n\r\n")
        .ok_or("a part without headers")?;
    let disposition = part_head
        .split("\r\n")
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-disposition"))
        })
        .map(|(_, v)| v.trim().to_string())
        .ok_or("a part without content-disposition")?;
    let params: Vec<&str> = disposition.split(';').map(str::trim).collect();
    if params.first() != Some(&"form-data") || !params.contains(&"name=\"file\"") {
        return Err(format!("the part is not the `file` field: {disposition}"));
    }
    let file_name = params
        .iter()
        .find_map(|p| p.strip_prefix("filename=\""))
        .and_then(|p| p.strip_suffix('"'))
        .ok_or("the file part has no filename")?
        .to_string();
    if !file_name.ends_with(".ndjson") {
        return Err(format!("Invalid file extension {file_name}"));
    }
    let mut objects = Vec::new();
    for (n, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", n + 1))?;
        for key in ["type", "id"] {
            if !v[key].is_string() {
                return Err(format!("line {}: no `{key}`", n + 1));
            }
        }
        if !v["attributes"].is_object() || !v["references"].is_array() {
            return Err(format!("line {}: no attributes or references", n + 1));
        }
        objects.push(v);
    }
    if objects.is_empty() {
        return Err("no objects".into());
    }
    let ids: BTreeSet<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap().into(),
                o["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    if ids.len() != objects.len() {
        return Err("duplicate objects".into());
    }
    for o in &objects {
        for r in o["references"].as_array().unwrap() {
            let key = (
                r["type"].as_str().unwrap_or("").to_string(),
                r["id"].as_str().unwrap_or("").to_string(),
            );
            if r["name"].as_str().is_none_or(str::is_empty) || !ids.contains(&key) {
                return Err(format!(
                    "{}/{}: reference {r} resolves to no object of the file",
                    o["type"].as_str().unwrap(),
                    o["id"].as_str().unwrap()
                ));
            }
        }
    }
    Ok(Import { file_name, objects })
}
