//! The dry run against the reader's own code: groups, JSON, cuts, exclusion, ids.

use super::*;

fn cfg(extra: &str) -> Config {
    Config::from_yaml(
        &format!(
            "state_dir: /s\nnode_name: n\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n  index: \"t-%Y.%m.%d\"\n{extra}"
        ),
        &|_| None,
    )
    .unwrap()
}

fn cri(ts_s: u32, msg: &str) -> String {
    format!("2026-11-24T10:00:{ts_s:02}.000000001Z stdout F {msg}\n")
}

const PATH: &str = "/var/log/pods/shop_web-1_0000-uid/app/0.log";

fn pod(annotations: &str) -> Pod {
    serde_json::from_str(&format!(
        r#"{{"metadata":{{"name":"web-1","namespace":"shop","uid":"0000-uid","labels":{{"app":"web"}},"annotations":{{{annotations}}}}},
            "spec":{{"containers":[{{"name":"app","image":"shop/web:1"}}]}}}}"#
    ))
    .unwrap()
}

#[test]
fn a_java_trace_is_one_document_under_the_java_preset() {
    let cfg = cfg("parse:\n  multiline:\n    parsers: [java]\n");
    let input = [
        cri(
            0,
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
        ),
        cri(0, "\tat com.example.App.run(App.java:10)"),
        cri(0, "\tat com.example.App.main(App.java:3)"),
        cri(1, "next"),
    ]
    .concat();
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    assert_eq!(run.problems, []);
    assert_eq!(run.documents.len(), 2, "{:?}", run.documents);
    let trace = &run.documents[0].doc;
    assert_eq!(
        trace["message"],
        "Exception in thread \"main\" java.lang.IllegalStateException: boom\n\tat com.example.App.run(App.java:10)\n\tat com.example.App.main(App.java:3)"
    );
    assert_eq!(trace["log"]["offset"], 0);
    assert_eq!(run.documents[1].doc["message"], "next");
    assert_eq!(run.documents[0].index, "t-2026.11.24");
    assert_eq!(trace["kubernetes"]["pod"]["name"], "web-1");
}

#[test]
fn a_json_app_log_is_parsed() {
    let plain = cfg("");
    let input = cri(0, r#"{"level":"warn","msg":"slow","trace_id":"abc"}"#);
    let run = run_bytes(&plain, Path::new(PATH), input.as_bytes(), None).unwrap();
    assert_eq!(run.problems, []);
    let doc = &run.documents[0].doc;
    assert_eq!(doc["message"], "slow");
    assert_eq!(doc["log"]["level"], "warn");
    assert_eq!(doc["trace"]["id"], "abc");
    // Every key was lifted: moved out, no empty `json` left.
    assert_eq!(doc.get("json"), None, "{doc}");
    let keep = cfg("parse:\n  json:\n    keep_lifted: true\n");
    let run = run_bytes(&keep, Path::new(PATH), input.as_bytes(), None).unwrap();
    let doc = &run.documents[0].doc;
    assert_eq!(doc["json"]["trace_id"], "abc");
    assert_eq!(doc["json"]["msg"], "slow");
    assert_eq!(doc["message"], "slow");
}

#[test]
fn a_cut_line_is_flagged_and_tagged() {
    let cfg = cfg("input:\n  max_line_bytes: 1KiB\n");
    let long = "x".repeat(2000);
    let input = [cri(0, "short"), cri(1, &long), cri(2, "after")].concat();
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    let at = cri(0, "short").len() as u64;
    assert_eq!(
        run.problems,
        [Problem {
            offset: at,
            kind: ProblemKind::LineTruncated {
                line_bytes: cri(1, &long).len() as u64 - 1,
                max: 1024
            }
        }]
    );
    assert!(run.problems[0].kind.loses_data());
    let cut = run
        .documents
        .iter()
        .find(|d| d.doc["log"]["offset"] == at)
        .expect("the cut line is shipped");
    assert_eq!(cut.doc["tags"], serde_json::json!(["truncated"]));
    assert_eq!(run.documents.len(), 3);
}

#[test]
fn an_event_past_max_event_bytes_is_flagged() {
    let cfg = cfg("parse:\n  max_event_bytes: 1KiB\n");
    let part = "y".repeat(700);
    let p = |s| format!("2026-11-24T10:00:{s:02}.000000001Z stdout P {part}\n");
    let input = [p(0), p(0), cri(0, "end")].concat();
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    assert_eq!(
        run.problems,
        [Problem {
            offset: 0,
            kind: ProblemKind::EventTruncated { max: 1024 }
        }]
    );
}

#[test]
fn malformed_lines_are_shipped_raw_and_lose_nothing() {
    let cfg = cfg("");
    let input = [cri(0, "ok"), "not a cri line\n".to_string()].concat();
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    assert_eq!(run.documents.len(), 2);
    assert_eq!(run.documents[1].doc["message"], "not a cri line");
    assert_eq!(
        run.documents[1].doc["tags"],
        serde_json::json!(["malformed"])
    );
    assert_eq!(run.problems.len(), 1);
    assert_eq!(run.problems[0].offset, cri(0, "ok").len() as u64);
    assert!(matches!(
        run.problems[0].kind,
        ProblemKind::Malformed { .. }
    ));
    assert!(!run.problems[0].kind.loses_data());
}

#[test]
fn an_excluded_pod_ships_nothing() {
    let cfg = cfg("");
    let input = [cri(0, "a"), cri(1, "b")].concat();
    let pod = pod(r#""sluice.io/exclude":"true""#);
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), Some(&pod)).unwrap();
    assert_eq!(run.documents, []);
    let offsets: Vec<u64> = run.problems.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [0, cri(0, "a").len() as u64]);
    assert!(run.problems.iter().all(|p| p.kind == ProblemKind::Excluded));
}

#[test]
fn the_pod_adds_its_metadata_and_multiline_choice() {
    let cfg = cfg("");
    let input = [
        cri(0, "Traceback (most recent call last):"),
        cri(0, "  File \"app.py\", line 1, in <module>"),
        cri(0, "ValueError: x"),
    ]
    .concat();
    let pod = pod(r#""sluice.io/multiline":"python""#);
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), Some(&pod)).unwrap();
    assert_eq!(run.problems, []);
    assert_eq!(run.documents.len(), 1, "{:?}", run.documents);
    let doc = &run.documents[0].doc;
    assert_eq!(doc["kubernetes"]["labels"]["app"], "web");
    assert_eq!(doc["container"]["image"]["name"], "shop/web:1");
}

#[test]
fn ids_come_from_the_path_the_first_line_and_the_offset() {
    let cfg = cfg("");
    let input = [cri(0, "a"), cri(1, "b")].concat();
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    let fp = crate::tail::Fingerprint::of_head(input.as_bytes()).unwrap();
    let source = kubernetes::path::source_identity(Path::new(PATH), Path::new(PATH));
    let seed = encode::id_seed(Some(&source), fp);
    let ids: Vec<&str> = run.documents.iter().map(|d| d.id.as_str()).collect();
    let want = [0, cri(0, "a").len() as u64].map(|o| {
        String::from_utf8(encode::document_id(crate::tail::IdScheme::CURRENT, seed, o).to_vec())
            .unwrap()
    });
    assert_eq!(ids, want);
    // Another path: other ids (two containers can write the same first line).
    let other = run_bytes(&cfg, Path::new("/tmp/x.log"), input.as_bytes(), None).unwrap();
    assert_ne!(other.documents[0].id, run.documents[0].id);
}

#[test]
fn an_unfinished_last_line_is_reported() {
    let cfg = cfg("");
    let input = format!(
        "{}2026-11-24T10:00:01.000000001Z stdout F no newline",
        cri(0, "a")
    );
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    assert_eq!(run.documents.len(), 1);
    assert_eq!(
        run.problems,
        [Problem {
            offset: cri(0, "a").len() as u64,
            kind: ProblemKind::Incomplete
        }]
    );
    let nothing = run_bytes(&cfg, Path::new(PATH), b"no line yet", None).unwrap();
    assert_eq!(nothing.problems[0].kind, ProblemKind::NotReady);
}

#[test]
fn the_routed_index_is_shown() {
    let route = |index: &str| {
        Config::from_yaml(
            &format!(
                "state_dir: /s\nnode_name: n\nelasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n  index: \"{index}\"\n"
            ),
            &|_| None,
        )
        .unwrap()
    };
    let cfg = route("logs-{kubernetes.namespace}-{sluice.dataset|default}-%Y.%m.%d");
    let input = cri(0, "hello");
    let p = pod(r#""sluice.io/dataset":"Nginx-Access""#);
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), Some(&p)).unwrap();
    assert_eq!(run.documents[0].index, "logs-shop-nginx_access-2026.11.24");
    let run = run_bytes(&cfg, Path::new(PATH), input.as_bytes(), None).unwrap();
    assert_eq!(run.documents[0].index, "logs-shop-default-2026.11.24");
}
