//! `sluice setup --kibana URL`: imports the bundled saved objects (dashboards/kibana/sluice.ndjson:
//! data views, saved searches, Lens visualizations, the dashboard) through Kibana's
//! saved-objects API, with the data views' index patterns rewritten from the configured indices.
//! Idempotent: the objects have fixed ids and the import overwrites them. It never talks to
//! Elasticsearch and never ships logs.
//!
//! The body (the objects, the multipart form) and the reading of Kibana's answer are pure
//! functions, unit-tested below; [`import`] is the one HTTP call, with the credentials and TLS
//! settings of `elasticsearch:` (Kibana takes the same basic-auth and API-key credentials).

use serde_json::Value;

use super::elasticsearch::auth::Auth;
use super::elasticsearch::bootstrap::index_glob;
use super::elasticsearch::config::ElasticsearchConfig;

/// The saved objects as shipped in the repository.
pub const OBJECTS: &str = include_str!("../../dashboards/kibana/sluice.ndjson");
/// Ids of the data views whose title is the configured index pattern.
pub const LOGS_VIEW: &str = "sluice-logs-kubernetes";
pub const DEAD_LETTER_VIEW: &str = "sluice-dead-letter";
/// The file name Kibana sees; its import only takes `.ndjson` files.
pub const FILE_NAME: &str = "sluice.ndjson";
/// The space Kibana serves without a `/s/<id>` prefix.
const DEFAULT_SPACE: &str = "default";
/// How much of an unexpected answer goes into an error.
const BODY_EXCERPT: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum KibanaError {
    #[error(
        "--kibana-space `{0}`: a Kibana space id is lowercase letters, digits, `_` and `-` only"
    )]
    Space(String),
    #[error("--kibana {0}: not an http(s) URL")]
    Url(String),
    #[error("Kibana does not take AWS SigV4 credentials: use basic auth or an API key")]
    AwsAuth,
    #[error("Kibana: {0}")]
    Credentials(String),
    #[error("cannot reach Kibana at {url}: {error}")]
    Unreachable { url: String, error: String },
    #[error("Kibana refused the import: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("Kibana imported {imported} of {total} saved objects; failed: {failed}")]
    Failed {
        imported: u64,
        total: usize,
        failed: String,
    },
    #[error("Kibana's answer is not the import API's: {0}")]
    Answer(String),
}

/// A Kibana space id, validated the way Kibana does: `[a-z0-9_-]+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space(String);

impl Space {
    pub fn parse(id: &str) -> Result<Space, KibanaError> {
        let ok = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Space(id.to_string()))
        } else {
            Err(KibanaError::Space(id.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bundled objects with the two data views' titles set to the globs of the configured log
/// and dead-letter indices (`logs-kubernetes-%Y.%m.%d` → `logs-kubernetes-*.*.*`), one object
/// per line.
pub fn objects(es: &ElasticsearchConfig) -> String {
    let logs = index_glob(&es.index);
    let dead = index_glob(&es.dead_letter_index);
    let mut out = String::with_capacity(OBJECTS.len() + 64);
    for line in OBJECTS.lines().filter(|l| !l.trim().is_empty()) {
        // The file is checked by the unit tests below: every line is an object.
        let mut o: Value = serde_json::from_str(line).expect("dashboards/kibana/sluice.ndjson");
        if o["type"] == "index-pattern" {
            let title = match o["id"].as_str() {
                Some(LOGS_VIEW) => Some(&logs),
                Some(DEAD_LETTER_VIEW) => Some(&dead),
                _ => None,
            };
            if let Some(t) = title {
                o["attributes"]["title"] = Value::String(t.clone());
            }
        }
        out.push_str(&o.to_string());
        out.push('\n');
    }
    out
}

/// `multipart/form-data` with one part, `file`, holding the NDJSON (what a browser or `curl
/// --form file=@sluice.ndjson` sends). Returns the body and its `Content-Type`.
pub fn multipart(ndjson: &str) -> (Vec<u8>, String) {
    // A boundary that does not occur in the content (bounded: each try changes the counter).
    let mut boundary = String::new();
    for n in 0u32..64 {
        boundary = format!("sluice-saved-objects-{n:02}-{:08x}", ndjson.len());
        if !ndjson.contains(&boundary) {
            break;
        }
    }
    let mut body = Vec::with_capacity(ndjson.len() + 256);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        format!("Content-Disposition: form-data; name=\"file\"; filename=\"{FILE_NAME}\"\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(b"Content-Type: application/ndjson\r\n\r\n");
    body.extend_from_slice(ndjson.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// `{base}[/s/{space}]/api/saved_objects/_import?overwrite=true`; a base path (Kibana's
/// `server.basePath`, e.g. `https://host/kibana`) is kept.
pub fn import_url(base: &reqwest::Url, space: Option<&Space>) -> reqwest::Url {
    let mut u = base.clone();
    let mut path = u.path().trim_end_matches('/').to_string();
    if let Some(s) = space.filter(|s| s.as_str() != DEFAULT_SPACE) {
        path.push_str("/s/");
        path.push_str(s.as_str());
    }
    path.push_str("/api/saved_objects/_import");
    u.set_path(&path);
    u.set_query(Some("overwrite=true"));
    u
}

/// Reads the import API's answer: `Ok(n)` when every object was imported, else the objects
/// that failed (`type/id (title): error`).
pub fn read_answer(status: u16, body: &[u8], total: usize) -> Result<u64, KibanaError> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) {
        return Err(KibanaError::Refused {
            status,
            body: excerpt(&text),
        });
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| KibanaError::Answer(format!("{e}: {}", excerpt(&text))))?;
    let success = v["success"]
        .as_bool()
        .ok_or_else(|| KibanaError::Answer(format!("no `success`: {}", excerpt(&text))))?;
    let imported = v["successCount"].as_u64().unwrap_or(0);
    let errors = v["errors"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if success && errors.is_empty() {
        return Ok(imported);
    }
    let mut failed: Vec<String> = errors.iter().map(describe_error).collect();
    if failed.is_empty() {
        failed.push("Kibana named no object".into());
    }
    Err(KibanaError::Failed {
        imported,
        total,
        failed: failed.join("; "),
    })
}

/// One entry of `errors[]`: `lens/sluice-log-levels ("sluice: log levels"): missing_references
/// (index-pattern/x)`.
fn describe_error(e: &Value) -> String {
    let kind = e["type"].as_str().unwrap_or("?");
    let id = e["id"].as_str().unwrap_or("?");
    let title = e["title"]
        .as_str()
        .or_else(|| e["meta"]["title"].as_str())
        .map(|t| format!(" ({t:?})"))
        .unwrap_or_default();
    let err = &e["error"];
    let mut why = err["type"].as_str().unwrap_or("error").to_string();
    if let Some(m) = err["message"].as_str() {
        why.push_str(": ");
        why.push_str(m);
    }
    if let Some(refs) = err["references"].as_array() {
        let r: Vec<String> = refs
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["type"].as_str().unwrap_or("?"),
                    r["id"].as_str().unwrap_or("?")
                )
            })
            .collect();
        why.push_str(&format!(" ({})", r.join(", ")));
    }
    format!("{kind}/{id}{title}: {why}")
}

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// What [`import`] did, for `sluice setup` to print.
#[derive(Debug)]
pub struct Imported {
    pub url: String,
    pub objects: u64,
}

/// Imports the objects into Kibana at `base` (in `space`, else the default space).
pub async fn import(
    client: &reqwest::Client,
    es: &ElasticsearchConfig,
    base: &reqwest::Url,
    space: Option<&Space>,
) -> Result<Imported, KibanaError> {
    if !matches!(base.scheme(), "http" | "https") {
        return Err(KibanaError::Url(base.to_string()));
    }
    match es.auth {
        Auth::Aws(_) => return Err(KibanaError::AwsAuth),
        Auth::None => {}
        _ if base.scheme() == "http" => tracing::warn!(
            "credentials are configured for a plain http Kibana: they travel unencrypted"
        ),
        _ => {}
    }
    let ndjson = objects(es);
    let total = ndjson.lines().count();
    let (body, content_type) = multipart(&ndjson);
    let url = import_url(base, space);
    let req = client
        .post(url.clone())
        .header("kbn-xsrf", "true")
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body);
    let req = es.auth.apply(req).map_err(KibanaError::Credentials)?;
    let unreachable = |e: reqwest::Error| KibanaError::Unreachable {
        url: url.to_string(),
        error: e.to_string(),
    };
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status().as_u16();
    let answer = resp.bytes().await.map_err(unreachable)?;
    let objects = read_answer(status, &answer, total)?;
    Ok(Imported {
        url: url.to_string(),
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(index: &str, dead: &str) -> ElasticsearchConfig {
        crate::config::Config::from_yaml(
            &format!(
                "state_dir: /s\nnode_name: n\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n  \
                 index: \"{index}\"\n  dead_letter_index: \"{dead}\"\n"
            ),
            &|_| None,
        )
        .unwrap()
        .elasticsearch
    }

    #[test]
    fn every_bundled_line_is_an_object_with_a_type_and_id() {
        let n = OBJECTS.lines().filter(|l| !l.trim().is_empty()).count();
        for l in OBJECTS.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["type"].is_string() && v["id"].is_string(), "{l}");
        }
        assert!(n >= 10, "{n}");
    }

    #[test]
    fn objects_rewrite_both_data_view_titles() {
        let out = objects(&es("k8s-%Y.%m.%d", "k8s-dlq-%Y.%m"));
        let views: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["type"] == "index-pattern")
            .collect();
        let title = |id: &str| {
            views.iter().find(|v| v["id"] == id).unwrap()["attributes"]["title"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(title(LOGS_VIEW), "k8s-*.*.*");
        assert_eq!(title(DEAD_LETTER_VIEW), "k8s-dlq-*.*");
        assert_eq!(out.lines().count(), OBJECTS.lines().count());
    }

    #[test]
    fn multipart_has_one_file_part_between_boundaries() {
        let (body, ct) = multipart("{\"a\":1}\n");
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(text.contains("name=\"file\"; filename=\"sluice.ndjson\"\r\n"));
        assert!(text.contains("\r\n\r\n{\"a\":1}\n\r\n--"));
        assert_eq!(text.matches(boundary).count(), 2);
    }

    #[test]
    fn import_url_with_space_and_base_path() {
        let base: reqwest::Url = "https://kb.example:5601/kibana/".parse().unwrap();
        assert_eq!(
            import_url(&base, None).as_str(),
            "https://kb.example:5601/kibana/api/saved_objects/_import?overwrite=true"
        );
        let ops = Space::parse("ops-2").unwrap();
        assert_eq!(
            import_url(&base, Some(&ops)).as_str(),
            "https://kb.example:5601/kibana/s/ops-2/api/saved_objects/_import?overwrite=true"
        );
        let default = Space::parse("default").unwrap();
        let root: reqwest::Url = "http://127.0.0.1:5601".parse().unwrap();
        assert_eq!(
            import_url(&root, Some(&default)).as_str(),
            "http://127.0.0.1:5601/api/saved_objects/_import?overwrite=true"
        );
    }

    #[test]
    fn space_rejects_what_kibana_rejects() {
        for bad in ["", "Ops", "a/b", "a b", "ü", "../x"] {
            assert!(Space::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Space::parse("a_b-9").is_ok());
    }

    #[test]
    fn read_answer_success_and_failures() {
        let ok = br#"{"success":true,"successCount":3,"successResults":[]}"#;
        assert_eq!(read_answer(200, ok, 3).unwrap(), 3);
        let failed = br#"{"success":false,"successCount":2,"errors":[{"id":"sluice-log-levels","type":"lens","meta":{"title":"sluice: log levels"},"error":{"type":"missing_references","references":[{"type":"index-pattern","id":"nope"}]}}]}"#;
        let e = read_answer(200, failed, 3).unwrap_err().to_string();
        assert!(
            e.contains(r#"lens/sluice-log-levels ("sluice: log levels"): missing_references (index-pattern/nope)"#),
            "{e}"
        );
        assert!(e.contains("2 of 3"), "{e}");
        let refused = read_answer(400, br#"{"message":"bad"}"#, 3).unwrap_err();
        assert!(matches!(refused, KibanaError::Refused { status: 400, .. }));
        assert!(matches!(
            read_answer(200, b"<html>", 3).unwrap_err(),
            KibanaError::Answer(_)
        ));
    }
}
