//! The encoder's tests: documents byte for byte, escaping, ids, per-file metadata fragments.

use super::*;
use std::time::Duration;

fn ctx() -> FileContext {
    let pod = PodRef {
        namespace: "shop".into(),
        pod_name: "web-1".into(),
        pod_uid: Some("uid-1".into()),
        container_name: "app".into(),
        container_id: Some("abc".into()),
    };
    let node = NodeFields {
        node_name: "node-a".into(),
        cluster_name: Some("prod".into()),
        fluentd: None,
    };
    FileContext::new(
        Fingerprint(42),
        Path::new("/var/log/containers/x.log"),
        Some(&pod),
        None,
        &node,
    )
}

fn encode_one(ev: Event<'_>) -> (serde_json::Value, serde_json::Value) {
    let mut enc = Encoder::new(
        IndexPattern::parse("i", "logs-%Y.%m.%d").unwrap(),
        Some("json".into()),
    );
    let mut body = Vec::new();
    let item = enc.encode(&mut body, &ctx(), &ev);
    assert_eq!(item.end as usize, body.len());
    assert_eq!(*body.last().unwrap(), b'\n');
    let action = serde_json::from_slice(&body[item.start as usize..item.doc as usize]).unwrap();
    let doc = serde_json::from_slice(&body[item.doc as usize..item.end as usize]).unwrap();
    (action, doc)
}

fn plain(message: &[u8]) -> Event<'_> {
    Event {
        timestamp: b"2026-11-24T23:30:00.123456789-02:00",
        stream: Stream::Stderr,
        message,
        start: 77,
        truncated: false,
        malformed: false,
    }
}

#[test]
fn api_metadata_is_rendered_into_the_tail() {
    use crate::kubernetes::meta::ContainerMeta;
    let pod = PodRef {
        namespace: "shop".into(),
        pod_name: "web-1".into(),
        pod_uid: None,
        container_name: "app".into(),
        container_id: None,
    };
    let meta = PodMeta {
        namespace: "shop".into(),
        name: "web-1".into(),
        uid: "u-9".into(),
        ip: Some("10.1.2.3".into()),
        labels: vec![("app_kubernetes_io/name".into(), "web".into())],
        annotations: vec![("team".into(), "a\"b".into())],
        workload: Some(Workload::CronJob(
            "nightly".into(),
            "nightly-29012345".into(),
        )),
        containers: vec![ContainerMeta {
            name: "app".into(),
            image: Some("nginx:1.27".into()),
            id: Some("cid".into()),
            ..ContainerMeta::default()
        }],
        ..PodMeta::default()
    };
    let ns = vec![("env".into(), "prod".into())];
    let node = NodeFields {
        node_name: "n".into(),
        cluster_name: None,
        fluentd: None,
    };
    let api = PodFields {
        pod: &meta,
        namespace_labels: &ns,
    };
    let c = FileContext::new(
        Fingerprint(1),
        Path::new("/p"),
        Some(&pod),
        Some(api),
        &node,
    );
    let mut enc = Encoder::new(IndexPattern::parse("i", "logs").unwrap(), None);
    let mut body = Vec::new();
    let item = enc.encode(&mut body, &c, &plain(b"x"));
    let doc: serde_json::Value =
        serde_json::from_slice(&body[item.doc as usize..item.end as usize]).unwrap();
    let k = &doc["kubernetes"];
    assert_eq!(k["pod"]["uid"], "u-9");
    assert_eq!(k["pod"]["ip"], "10.1.2.3");
    assert_eq!(k["labels"]["app_kubernetes_io/name"], "web");
    assert_eq!(k["annotations"]["team"], "a\"b");
    assert_eq!(k["namespace_labels"]["env"], "prod");
    assert_eq!(k["cronjob"]["name"], "nightly");
    assert_eq!(k["job"]["name"], "nightly-29012345");
    assert_eq!(doc["container"]["id"], "cid");
    assert_eq!(doc["container"]["image"]["name"], "nginx:1.27");
}

#[test]
fn document_has_the_ecs_fields_and_index_of_the_event_date() {
    let (action, doc) = encode_one(plain(b"hello \"world\""));
    // 23:30 at -02:00 is 01:30 UTC the next day.
    assert_eq!(action["create"]["_index"], "logs-2026.11.25");
    assert_eq!(action["create"]["_id"].as_str().unwrap().len(), 22);
    assert_eq!(doc["@timestamp"], "2026-11-24T23:30:00.123456789-02:00");
    assert_eq!(doc["message"], "hello \"world\"");
    assert_eq!(doc["log"]["iostream"], "stderr");
    assert_eq!(doc["log"]["offset"], 77);
    assert_eq!(doc["log"]["file"]["path"], "/var/log/containers/x.log");
    assert_eq!(doc["kubernetes"]["namespace"], "shop");
    assert_eq!(doc["kubernetes"]["pod"]["name"], "web-1");
    assert_eq!(doc["kubernetes"]["pod"]["uid"], "uid-1");
    assert_eq!(doc["kubernetes"]["container"]["name"], "app");
    assert_eq!(doc["kubernetes"]["node"]["name"], "node-a");
    assert_eq!(doc["container"]["id"], "abc");
    assert_eq!(doc["orchestrator"]["cluster"]["name"], "prod");
    assert_eq!(doc["host"]["name"], "node-a");
    assert_eq!(doc["agent"]["name"], "sluice");
    assert!(doc.get("tags").is_none());
}

#[test]
fn json_app_log_is_lifted_and_kept() {
    let (_, doc) = encode_one(plain(
        br#"{"level":"warn","msg":"disk low","free":{"gb":3}}"#,
    ));
    assert_eq!(doc["message"], "disk low");
    assert_eq!(doc["log"]["level"], "warn");
    assert_eq!(doc["json"]["free"]["gb"], 3);
    // Moved, not copied: each value is stored once.
    assert_eq!(doc["json"].get("msg"), None, "{doc}");
    assert_eq!(doc["json"].get("level"), None, "{doc}");
}

#[test]
fn lifted_keys_are_moved_also_through_the_limits_and_kept_with_keep_lifted() {
    let long = "v".repeat(appjson::VALUE_LIMIT + 10);
    let line = format!(r#"{{"msg":"big","caller":"a.go:7","time":"x","blob":"{long}"}}"#);
    let (_, doc) = encode_one(plain(line.as_bytes()));
    assert_eq!(doc["message"], "big");
    assert_eq!(doc["json"].get("msg"), None, "{doc}");
    // Not moved: what is written from them is not their text.
    assert_eq!(doc["json"]["caller"], "a.go:7");
    assert_eq!(doc["json"]["time"], "x");
    assert_eq!(
        doc["json"]["blob"].as_str().unwrap().len(),
        appjson::VALUE_LIMIT
    );
    // The original, whole, where the limits changed something.
    assert_eq!(doc["event"]["original"], line);

    let mut enc = Encoder::new(
        IndexPattern::parse("i", "logs-%Y.%m.%d").unwrap(),
        Some("json".into()),
    )
    .keep_lifted(true);
    let mut body = Vec::new();
    let item = enc.encode(&mut body, &ctx(), &plain(br#"{"level":"warn","msg":"m"}"#));
    let doc: serde_json::Value =
        serde_json::from_slice(&body[item.doc as usize..item.end as usize]).unwrap();
    assert_eq!(doc["json"]["msg"], "m");
    assert_eq!(doc["json"]["level"], "warn");
    assert_eq!(doc["message"], "m");
}

#[test]
fn malformed_and_truncated_are_tagged_and_kept() {
    let mut ev = plain(b"\xffgarbage");
    ev.malformed = true;
    ev.truncated = true;
    let (_, doc) = encode_one(ev);
    assert_eq!(doc["tags"], serde_json::json!(["truncated", "malformed"]));
    assert_eq!(doc["message"], "\u{fffd}garbage");
}

#[test]
fn ids_are_deterministic_and_distinct() {
    for s in [IdScheme::SeedOffset, IdScheme::Hash] {
        assert_eq!(document_id(s, 1, 10), document_id(s, 1, 10));
        assert_ne!(document_id(s, 1, 10), document_id(s, 1, 11));
        assert_ne!(document_id(s, 1, 10), document_id(s, 2, 10));
        assert_ne!(document_id(s, 1 << 32, 0), document_id(s, 1, 0));
        assert_ne!(document_id(s, 0, 1 << 40), document_id(s, 0, 1));
        assert!(
            document_id(s, 9, 9)
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        );
    }
}

#[test]
fn seed_offset_ids_of_a_file_share_a_prefix() {
    let seed = 0x9e37_79b9_7f4a_7c15;
    let ids: Vec<[u8; 22]> = [0u64, 1, 155, 4096, 1 << 20, 1 << 33, u64::MAX]
        .iter()
        .map(|&o| document_id(IdScheme::SeedOffset, seed, o))
        .collect();
    // 64 bits of seed: the first 10 characters (60 bits) never change within a file.
    assert!(ids.iter().all(|id| id[..10] == ids[0][..10]), "{ids:?}");
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    // Consecutive lines differ only at the end.
    let (a, b) = (
        document_id(IdScheme::SeedOffset, seed, 1000),
        document_id(IdScheme::SeedOffset, seed, 1155),
    );
    assert_eq!(a[..19], b[..19]);
    assert_ne!(a, b);
    assert_ne!(document_id(IdScheme::SeedOffset, seed + 1, 0), ids[0]);
    assert_ne!(
        document_id(IdScheme::SeedOffset, seed ^ (1 << 63), 0)[..10],
        ids[0][..10]
    );
}

#[test]
fn hashed_ids_are_the_ones_earlier_versions_wrote() {
    // `sluice test --path-as PATH` of version 9ed1470 printed this `_id` for LINE at offset 0: a
    // file that version began keeps exactly these ids to its end.
    const PATH: &str = "/var/log/containers/web-7d4b9c-x2x_shop_app-\
        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log";
    const LINE: &[u8] = b"2026-12-07T10:00:00.000000001Z stdout F {\"level\":\"info\",\
        \"msg\":\"request served\",\"status\":200,\"latency_ms\":12}\n";
    let fp = Fingerprint::of_head(LINE).unwrap();
    let source = crate::kubernetes::path::source_identity(Path::new(PATH), Path::new(PATH));
    let seed = id_seed(Some(&source), fp);
    assert_eq!(
        std::str::from_utf8(&document_id(IdScheme::Hash, seed, 0)).unwrap(),
        "RWpKdsQ6aWVtspE9fEfJuQ"
    );
    assert_ne!(
        document_id(IdScheme::SeedOffset, seed, 0),
        document_id(IdScheme::Hash, seed, 0)
    );
}

#[test]
fn the_source_separates_files_that_start_with_the_same_line() {
    let fp = Fingerprint(7);
    let a = id_seed(Some(b"pods\0shop\0uid-1\0app\x000"), fp);
    let b = id_seed(Some(b"pods\0shop\0uid-2\0app\x000"), fp);
    assert_ne!(a, b);
    assert_eq!(a, id_seed(Some(b"pods\0shop\0uid-1\0app\x000"), fp));
    assert_ne!(
        a,
        id_seed(Some(b"pods\0shop\0uid-1\0app\x000"), Fingerprint(8))
    );
    assert_eq!(
        id_seed(None, fp),
        fp.0,
        "no source: the ids of earlier versions"
    );
    let c = ctx().identify(b"pods\0shop\0uid-1\0app\x000");
    assert_eq!(
        c.id_seed,
        id_seed(Some(b"pods\0shop\0uid-1\0app\x000"), c.fingerprint)
    );
}

#[test]
fn rfc3339_formatting_of_known_instants() {
    let mut out = Vec::new();
    format_rfc3339(
        SystemTime::UNIX_EPOCH + Duration::new(951_782_400 + 3_723, 5),
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2000-02-29T01:02:03.000000005Z"
    );
}

mod fluentd_shape {
    use super::*;
    use crate::kubernetes::meta::ContainerMeta;

    const CID: &str = "5e1f0c4a9d2b7c3e8f6a1b0d4c9e2f7a3b8d6c1e0f5a4b9c2d7e3f8a6b1c0d5e";

    fn pod() -> PodRef {
        PodRef {
            namespace: "shop".into(),
            pod_name: "web-7d4b9c-x2x9z".into(),
            pod_uid: None,
            container_name: "nginx".into(),
            container_id: Some(CID.into()),
        }
    }

    fn node() -> NodeFields {
        NodeFields {
            node_name: "node-a".into(),
            cluster_name: Some("prod".into()),
            fluentd: Some(FluentdNode {
                master_url: Some("https://10.96.0.1:443/api".into()),
            }),
        }
    }

    fn path() -> String {
        format!("/var/log/containers/web-7d4b9c-x2x9z_shop_nginx-{CID}.log")
    }

    fn encode(
        ctx: &FileContext,
        ev: &Event<'_>,
        json: Option<&str>,
    ) -> (serde_json::Value, serde_json::Value) {
        let mut enc = Encoder::new(
            IndexPattern::parse("i", "logstash-%Y.%m.%d").unwrap(),
            json.map(String::from),
        )
        .fluentd_shape(true);
        let mut body = Vec::new();
        let item = enc.encode(&mut body, ctx, ev);
        assert_eq!(item.end as usize, body.len());
        let action = serde_json::from_slice(&body[item.start as usize..item.doc as usize]).unwrap();
        let doc = serde_json::from_slice(&body[item.doc as usize..item.end as usize]).unwrap();
        (action, doc)
    }

    fn ev(message: &[u8]) -> Event<'_> {
        Event {
            timestamp: b"2026-11-24T23:30:00.123456789Z",
            stream: Stream::Stdout,
            message,
            start: 77,
            truncated: false,
            malformed: false,
        }
    }

    #[test]
    fn path_only_documents_have_the_filters_path_fields() {
        let ctx = FileContext::new(
            Fingerprint(42),
            Path::new(&path()),
            Some(&pod()),
            None,
            &node(),
        );
        let (action, doc) = encode(&ctx, &ev(b"GET / 200"), None);
        assert_eq!(action["create"]["_index"], "logstash-2026.11.24");
        let want = serde_json::json!({
            "@timestamp": "2026-11-24T23:30:00.123456789+00:00",
            "log": "GET / 200",
            "stream": "stdout",
            "docker": {"container_id": CID},
            "kubernetes": {
                "container_name": "nginx",
                "namespace_name": "shop",
                "pod_name": "web-7d4b9c-x2x9z",
                "host": "node-a",
            },
            "tag": format!("kubernetes.var.log.containers.web-7d4b9c-x2x9z_shop_nginx-{CID}.log"),
        });
        assert_eq!(doc, want);
    }

    #[test]
    fn api_metadata_takes_the_filters_names() {
        let meta = PodMeta {
            namespace: "shop".into(),
            name: "web-7d4b9c-x2x9z".into(),
            uid: "u-9".into(),
            ip: Some("10.1.2.3".into()),
            labels: vec![("app_kubernetes_io/name".into(), "web".into())],
            annotations: vec![("team".into(), "a".into())],
            containers: vec![ContainerMeta {
                name: "nginx".into(),
                image: Some("nginx:1.27".into()),
                id: Some(CID.into()),
                status_image: Some("docker.io/library/nginx:1.27".into()),
                image_id: Some("docker.io/library/nginx@sha256:abc".into()),
            }],
            ..PodMeta::default()
        };
        let ns = vec![("env".into(), "prod".into())];
        let api = PodFields {
            pod: &meta,
            namespace_labels: &ns,
        };
        let ctx = FileContext::new(
            Fingerprint(42),
            Path::new(&path()),
            Some(&pod()),
            Some(api),
            &node(),
        );
        let (_, doc) = encode(&ctx, &ev(b"x"), None);
        let k = &doc["kubernetes"];
        assert_eq!(k["container_image"], "docker.io/library/nginx:1.27");
        assert_eq!(
            k["container_image_id"],
            "docker.io/library/nginx@sha256:abc"
        );
        assert_eq!(k["pod_id"], "u-9");
        assert_eq!(k["pod_ip"], "10.1.2.3");
        assert_eq!(k["labels"]["app_kubernetes_io/name"], "web");
        assert_eq!(k["namespace_labels"]["env"], "prod");
        assert_eq!(k["master_url"], "https://10.96.0.1:443/api");
        // Annotations only with the filter's annotation_match; sluice's ECS fields never.
        assert!(k.get("annotations").is_none());
        for ecs in ["message", "host", "agent", "container", "orchestrator"] {
            assert!(doc.get(ecs).is_none(), "{ecs} in {doc}");
        }
    }

    #[test]
    fn ids_and_index_are_the_ecs_shapes() {
        let ctx = FileContext::new(
            Fingerprint(42),
            Path::new(&path()),
            Some(&pod()),
            None,
            &node(),
        )
        .identify(b"src");
        let (action, _) = encode(&ctx, &ev(b"x"), None);
        let ecs = FileContext::new(
            Fingerprint(42),
            Path::new(&path()),
            Some(&pod()),
            None,
            &NodeFields {
                fluentd: None,
                ..node()
            },
        )
        .identify(b"src");
        let id = document_id(IdScheme::CURRENT, ecs.id_seed, 77);
        assert_eq!(action["create"]["_id"], std::str::from_utf8(&id).unwrap());
    }

    #[test]
    fn json_app_logs_keep_log_and_go_under_the_target() {
        let ctx = FileContext::new(
            Fingerprint(42),
            Path::new(&path()),
            Some(&pod()),
            None,
            &node(),
        );
        let line = br#"{"level":"info","msg":"hi"}"#;
        let (_, doc) = encode(&ctx, &ev(line), Some("json"));
        assert_eq!(doc["log"], std::str::from_utf8(line).unwrap());
        assert_eq!(doc["json"]["msg"], "hi");
        assert!(doc.get("msg").is_none());
        let (_, doc) = encode(&ctx, &ev(line), None);
        assert!(doc.get("json").is_none());
    }

    #[test]
    fn tags_say_what_happened() {
        let ctx = FileContext::new(
            Fingerprint(42),
            Path::new("/plain.log"),
            None,
            None,
            &node(),
        );
        let mut e = ev(b"\x01cut");
        e.truncated = true;
        let (_, doc) = encode(&ctx, &e, None);
        assert_eq!(doc["tags"], serde_json::json!(["truncated"]));
        assert_eq!(doc["log"], "\u{1}cut");
        assert_eq!(doc["tag"], "kubernetes.plain.log");
        let odd = FileContext::new(
            Fingerprint(42),
            Path::new("/tmp/.x//a.log"),
            None,
            None,
            &node(),
        );
        let (_, doc) = encode(&odd, &ev(b"y"), None);
        assert_eq!(
            doc["tag"], "kubernetes.tmp.x.a.log",
            "in_tail squeezes dots"
        );
        assert!(doc.get("kubernetes").is_none());
    }

    #[test]
    fn master_url_as_the_daemonset_builds_it() {
        use crate::kubernetes::config::Source;
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("10.96.0.1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_string()),
            _ => None,
        };
        assert_eq!(
            FluentdNode::new(Some(&Source::InCluster), &env)
                .master_url
                .as_deref(),
            Some("https://10.96.0.1:443/api")
        );
        let url = Source::Url {
            url: "https://k:6443/".into(),
            token_file: None,
            ca_file: None,
        };
        assert_eq!(
            FluentdNode::new(Some(&url), &env).master_url.as_deref(),
            Some("https://k:6443/api")
        );
        assert_eq!(FluentdNode::new(None, &env).master_url, None);
    }
}
