//! `sluice setup --kibana URL [--kibana-space S]`, the real binary, against a local stand-in for
//! Kibana's import API that checks what Kibana checks (tests/support/kibana.rs): the route with
//! and without a space, `kbn-xsrf`, the credentials of `elasticsearch:`, the multipart form,
//! every NDJSON line, every reference; the data view titles follow `elasticsearch.index`; a
//! second run sends the same objects (fixed ids, overwrite); a failed object fails the command
//! and is named. There is no Kibana here: nothing is loaded into a real one.

#[path = "support/kibana.rs"]
mod kibana;
mod support;

use std::process::Output;

use kibana::{Answer, FakeKibana};
use serde_json::Value;
use support::*;

fn setup(config: &std::path::Path, args: &[&str]) -> Output {
    support::sluice(config, &[&["setup"], args].concat())
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn title(objects: &[Value], id: &str) -> String {
    objects
        .iter()
        .find(|o| o["type"] == "index-pattern" && o["id"] == id)
        .unwrap_or_else(|| panic!("no data view {id}"))["attributes"]["title"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn setup_kibana_imports_the_objects_idempotently_with_the_configured_indices() {
    let node = Node::new();
    let index = unique("kibana");
    let config = node.config_full(
        &format!("{index}-%Y.%m.%d"),
        &[es_url()],
        "  auth:\n    username: elastic\n    password: s3cret\n",
        "",
    );
    let kb = FakeKibana::start(2, Answer::Success);
    let first = setup(&config, &["--kibana", &kb.url]);
    assert!(first.status.success(), "{}", text(&first));
    let again = setup(&config, &["--kibana", &format!("{}/", kb.url)]);
    assert!(again.status.success(), "{}", text(&again));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("index template"), "{stdout}");

    let seen = kb.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let mut sent = Vec::new();
    for (req, checked) in seen {
        let import = checked.unwrap_or_else(|why| panic!("Kibana would refuse: {why}"));
        assert_eq!(req.target, "/api/saved_objects/_import?overwrite=true");
        assert_eq!(req.header("kbn-xsrf"), Some("true"));
        // base64("elastic:s3cret")
        assert_eq!(
            req.header("authorization"),
            Some("Basic ZWxhc3RpYzpzM2NyZXQ=")
        );
        assert_eq!(import.file_name, "sluice.ndjson");
        let types: Vec<&str> = import
            .objects
            .iter()
            .map(|o| o["type"].as_str().unwrap())
            .collect();
        for (t, n) in [
            ("index-pattern", 2),
            ("search", 3),
            ("lens", 4),
            ("dashboard", 1),
        ] {
            assert_eq!(
                types.iter().filter(|x| **x == t).count(),
                n,
                "{t}: {types:?}"
            );
        }
        assert_eq!(
            title(&import.objects, "sluice-logs-kubernetes"),
            format!("{index}-*.*.*")
        );
        assert_eq!(
            title(&import.objects, "sluice-dead-letter"),
            format!("{index}-*.*.*-dlq")
        );
        let printed = format!("{} imported", import.objects.len());
        assert!(stdout.contains(&printed), "{stdout}");
        sent.push(import.objects);
    }
    assert_eq!(sent[0], sent[1], "a second run sends the same objects");
}

#[test]
fn setup_kibana_space_and_api_key() {
    let node = Node::new();
    let index = unique("kibana-space");
    let config = node.config_full(
        &format!("{index}-%Y.%m.%d"),
        &[es_url()],
        "  auth:\n    api_key: a2V5OnNlY3JldA==\n",
        "",
    );
    let kb = FakeKibana::start(1, Answer::Success);
    let out = setup(
        &config,
        &["--kibana", &kb.url, "--kibana-space", "ops-eu_1"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let seen = kb.requests();
    assert_eq!(seen.len(), 1);
    let (req, checked) = &seen[0];
    checked.as_ref().unwrap();
    assert_eq!(
        req.target,
        "/s/ops-eu_1/api/saved_objects/_import?overwrite=true"
    );
    assert_eq!(req.header("authorization"), Some("ApiKey a2V5OnNlY3JldA=="));

    // A space id Kibana would refuse never reaches it.
    let bad = setup(&config, &["--kibana", &kb.url, "--kibana-space", "Ops/x"]);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--kibana-space `Ops/x`"),
        "{}",
        text(&bad)
    );
}

#[test]
fn setup_kibana_fails_naming_the_object_kibana_refused() {
    let node = Node::new();
    let index = unique("kibana-fail");
    let config = node.config(&format!("{index}-%Y.%m.%d"), "");
    let kb = FakeKibana::start(1, Answer::FailObject("lens", "sluice-log-levels"));
    let out = setup(&config, &["--kibana", &kb.url]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"lens/sluice-log-levels ("sluice: log levels"): missing_references"#),
        "{}",
        text(&out)
    );
    let seen = kb.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].1.is_ok(), "{:?}", seen[0].1);
    assert!(seen[0].0.header("authorization").is_none());
}

/// The stand-in itself: what it accepts, and that it refuses what Kibana refuses.
#[test]
fn the_stand_in_refuses_what_kibana_refuses() {
    let view = r#"{"type":"index-pattern","id":"v","attributes":{"title":"x-*"},"references":[]}"#;
    let search = r#"{"type":"search","id":"s","attributes":{},"references":[{"name":"r","type":"index-pattern","id":"v"}]}"#;
    let dangling = r#"{"type":"search","id":"s","attributes":{},"references":[{"name":"r","type":"index-pattern","id":"nope"}]}"#;
    let form = |file: &str, ndjson: &str, parts: usize| {
        let mut b = String::new();
        for _ in 0..parts {
            b.push_str(&format!(
                "--BB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\n\
                 Content-Type: application/ndjson\r\n\r\n{ndjson}\r\n"
            ));
        }
        b.push_str("--BB--\r\n");
        b.into_bytes()
    };
    let req = |target: &str, xsrf: bool, body: Vec<u8>| kibana::Request {
        method: "POST".into(),
        target: target.into(),
        headers: [
            Some((
                "content-type".into(),
                "multipart/form-data; boundary=BB".into(),
            )),
            xsrf.then(|| ("kbn-xsrf".into(), "true".into())),
        ]
        .into_iter()
        .flatten()
        .collect(),
        body,
    };
    let good = format!("{view}\n{search}\n");
    let path = "/api/saved_objects/_import?overwrite=true";
    let ok = kibana::check(&req(path, true, form("a.ndjson", &good, 1))).unwrap();
    assert_eq!(ok.objects.len(), 2);
    for (what, r) in [
        ("no kbn-xsrf", req(path, false, form("a.ndjson", &good, 1))),
        (
            "no overwrite",
            req(
                "/api/saved_objects/_import",
                true,
                form("a.ndjson", &good, 1),
            ),
        ),
        (
            "bad space",
            req(
                "/s/Ops/api/saved_objects/_import?overwrite=true",
                true,
                form("a.ndjson", &good, 1),
            ),
        ),
        (
            "wrong route",
            req(
                "/api/saved_objects/import?overwrite=true",
                true,
                form("a.ndjson", &good, 1),
            ),
        ),
        ("not .ndjson", req(path, true, form("a.json", &good, 1))),
        ("two parts", req(path, true, form("a.ndjson", &good, 2))),
        (
            "not JSON",
            req(path, true, form("a.ndjson", "{\"type\":", 1)),
        ),
        (
            "dangling reference",
            req(
                path,
                true,
                form("a.ndjson", &format!("{view}\n{dangling}\n"), 1),
            ),
        ),
    ] {
        assert!(kibana::check(&r).is_err(), "{what} was accepted");
    }
}
