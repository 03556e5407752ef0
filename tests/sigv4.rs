//! AWS SigV4 signing against the real Elasticsearch (or OpenSearch) behind a verifying proxy
//! (`support/sigv4_proxy.py`): botocore, an implementation independent of the agent's, checks
//! every request's signature as Amazon OpenSearch Service would (scope, freshness, payload hash,
//! session token) and refuses with a 403 what is not valid; moto's STS in the same process issues
//! the IRSA credentials. The real agent binary runs, so the rustls crypto providers of the AWS SDK
//! (aws-lc-rs) and of the agent's reqwest and kube clients (ring) meet in one process, as they
//! do in production.

#[path = "support/sigv4.rs"]
mod sigv4;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sigv4::{Key, Options, SigV4Proxy, aws_env, credentials_file};
use support::{Agent, Es, Node, assert_exactly, lines, unique};

const REGION: &str = "eu-west-1";
const WAIT: Duration = Duration::from_secs(180);
/// AWS's allowed clock skew.
const AWS_SKEW: Duration = Duration::from_secs(300);

const ENV_KEY: &str = "AKIASLUICEENV0000001";
const ENV_SECRET: &str = "envSecret/0c5b2f7e9d1a4b8c6e3f5a7d9b1c3e5f7a9b";
const ENV_TOKEN: &str = "envSessionToken-7f3a9c1e5b";

const FILE_KEY: &str = "AKIASLUICEFILE000001";
const RIGHT: &str = "rightSecret/4e8a2c6f0b9d7e5a3c1f8b6d4a2e0c9f";
const WRONG: &str = "wrongSecret/9b7e5c3a1f0d8b6e4c2a0f9d7b5e3c1a";

/// The keys the proxy accepts in each scenario.
const ENV_CREDENTIALS: Key = Key {
    id: ENV_KEY,
    secret: ENV_SECRET,
    token: Some(ENV_TOKEN),
};
const FILE_CREDENTIALS: Key = Key {
    id: FILE_KEY,
    secret: RIGHT,
    token: None,
};
const FILE_CREDENTIALS_WITH_TOKEN: Key = Key {
    token: Some(ENV_TOKEN),
    ..FILE_CREDENTIALS
};

/// The real Elasticsearch, a temporary directory, and the verifying proxy in front of the one and
/// writing its log into the other, knowing `keys` (and whatever moto's STS issues).
fn start(
    keys: &[Key],
    max_skew: Duration,
    fail_bulks: usize,
) -> (Es, tempfile::TempDir, SigV4Proxy) {
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        region: REGION,
        service: "es",
        keys,
        max_skew,
        fail_bulks,
    };
    let proxy = SigV4Proxy::start(tmp.path(), &es.url, &opts);
    (es, tmp, proxy)
}

/// The agent's config: SigV4, `compression` (gzip | none: the signed body differs) and `extra`
/// lines at the top level.
fn config(node: &Node, index: &str, proxy: &SigV4Proxy, compression: &str, extra: &str) -> PathBuf {
    node.config_full(
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        &format!("  compression: {compression}\n  auth:\n    aws:\n      region: {REGION}\n"),
        extra,
    )
}

/// A Kubernetes API URL where nothing listens: enough for the agent to build its kube client
/// (rustls on ring) beside the AWS SDK's (aws-lc-rs), the pairing that panics when no process
/// crypto provider is installed (ARCHITECTURE.md, "Two rustls crypto providers"); the watch then
/// just backs off.
fn unreachable_kubernetes() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("kubernetes:\n  url: https://127.0.0.1:{port}\n  metadata_wait: 1s\n")
}

/// Waits until every line of `expected` is in `pattern`, stops the agent (exit 0 required), and
/// checks each line is there exactly once and the agent's whole log holds none of `secrets` and
/// no panic. Returns how many documents were found, and that log.
fn deliver_all(
    es: &Es,
    pattern: &str,
    expected: &BTreeSet<String>,
    agent: Agent,
    proxy: &SigV4Proxy,
    secrets: &[&str],
) -> (u64, String) {
    let n = expected.len() as u64;
    let found = es.wait_count(pattern, n, WAIT);
    let (log, proxy_log) = (agent.log_text(), proxy.log_text());
    assert_eq!(found, n, "agent log:\n{log}\nproxy log:\n{proxy_log}");
    let path = agent.log.clone();
    agent.stop();
    let log = std::fs::read_to_string(path).unwrap_or_default();
    for s in secrets {
        assert!(
            !log.contains(s),
            "a secret appears in the agent's log:\n{log}"
        );
    }
    assert!(!log.contains("panicked"), "the agent panicked:\n{log}");
    assert_exactly(es, pattern, expected);
    (found, log)
}

/// Everything the agent sends goes through the signer: setup (GET, PUT with a JSON body), gzip'd
/// bulk requests, their retries after a 503 and the probe of the endpoint marked down by it. The
/// agent also builds a Kubernetes client here, so both rustls providers are in use at once.
#[test]
fn static_credentials_from_the_environment_sign_every_request_gzipped() {
    let (es, tmp, proxy) = start(&[ENV_CREDENTIALS], AWS_SKEW, 2);
    let node = Node::new();
    let index = unique("sigv4-env");
    let pattern = format!("{index}-*");
    let mut expected = lines(&node, "web-1", 600);
    let env = aws_env(
        tmp.path(),
        &[
            ("AWS_ACCESS_KEY_ID", ENV_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", ENV_SECRET.into()),
            ("AWS_SESSION_TOKEN", ENV_TOKEN.into()),
        ],
    );
    let config = config(&node, &index, &proxy, "gzip", &unreachable_kubernetes());
    let agent = Agent::start_with_env(&config, &env);
    assert_eq!(
        es.wait_count(&pattern, 600, WAIT),
        600,
        "{}",
        agent.log_text()
    );
    // A second wave, so more than one bulk request is signed and passes.
    expected.extend(lines(&node, "web-2", 600));
    let secrets = [ENV_SECRET, ENV_TOKEN];
    let (found, log) = deliver_all(&es, &pattern, &expected, agent, &proxy, &secrets);
    let n = expected.len();
    assert!(
        log.contains("index template"),
        "setup went through the proxy:\n{log}"
    );
    let stats = proxy.stats();
    assert_eq!(stats["rejected"], 0, "{stats}\n{}", proxy.log_text());
    assert_eq!(stats["access_keys"], serde_json::json!([ENV_KEY]));
    let paths = &stats["verified_paths"];
    assert_eq!(stats["failed_bulks"], 2, "{stats}");
    assert!(
        paths["/_bulk"].as_u64().unwrap() >= 4,
        "2 refused + 2 waves: {stats}"
    );
    assert!(stats["gzipped"].as_u64().unwrap() >= 4, "{stats}");
    assert!(
        paths["/_cluster/health"].as_u64().unwrap() >= 1,
        "the probe: {stats}"
    );
    // Setup's version detection (then /_nodes/_local on Elasticsearch, whose `GET /` is 405).
    assert!(paths["/"].as_u64().unwrap() >= 1, "setup: {stats}");
    eprintln!(
        "scenario env-credentials (gzip): {n} lines written, {found} documents found; proxy verified {} {}, rejected {}",
        stats["verified"], stats["verified_paths"], stats["rejected"]
    );
}

#[test]
fn irsa_web_identity_assumes_the_role_through_sts_and_signs_with_it() {
    // No static key: the proxy knows only what moto's STS hands out.
    let (es, tmp, proxy) = start(&[], AWS_SKEW, 0);
    let node = Node::new();
    let index = unique("sigv4-irsa");
    let pattern = format!("{index}-*");
    let expected = lines(&node, "web-1", 800);
    // What EKS's pod identity webhook injects for a ServiceAccount annotated with
    // eks.amazonaws.com/role-arn; the token is the projected ServiceAccount token.
    let token_file = tmp.path().join("web-identity-token");
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bG9nZ2luZzpzbHVpY2UifQ.c2lnbmF0dXJl";
    std::fs::write(&token_file, jwt).unwrap();
    let env = aws_env(
        tmp.path(),
        &[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/sluice-shipper".into(),
            ),
            ("AWS_ROLE_SESSION_NAME", "sluice-test".into()),
            ("AWS_ENDPOINT_URL_STS", proxy.sts.clone()),
        ],
    );
    // Uncompressed here: the bulk body is the sealed batch itself, signed without a copy.
    let agent = Agent::start_with_env(&config(&node, &index, &proxy, "none", ""), &env);
    let (found, _) = deliver_all(&es, &pattern, &expected, agent, &proxy, &[jwt]);
    let n = expected.len();
    let stats = proxy.stats();
    assert!(stats["verified"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}\n{}", proxy.log_text());
    assert_eq!(stats["gzipped"], 0, "compression: none: {stats}");
    // Temporary keys that moto's STS issued (ASIA…), found in its backend by the proxy.
    let keys = stats["access_keys"].as_array().unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.as_str().unwrap().starts_with("ASIA")),
        "{stats}"
    );
    eprintln!(
        "scenario irsa: {n} lines written, {found} documents found; STS keys used {keys:?}; proxy verified {}, rejected {}",
        stats["verified"], stats["rejected"]
    );
}

fn write_credentials(path: &Path, secret: &str) {
    // Replaced whole, as the kubelet swaps a mounted Secret's files.
    let tmp = path.with_extension("new");
    std::fs::write(
        &tmp,
        format!("[default]\naws_access_key_id = {FILE_KEY}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn missing_then_wrong_credentials_lose_nothing_and_the_fixed_file_heals_without_restart() {
    // A tight clock: a retry that reused an old signature would be refused as expired.
    let (es, tmp, proxy) = start(&[FILE_CREDENTIALS], Duration::from_secs(10), 0);
    let node = Node::new();
    let index = unique("sigv4-file");
    let pattern = format!("{index}-*");
    let expected = lines(&node, "web-1", 600);
    // The shared credentials file the chain reads; absent at first.
    let env = aws_env(tmp.path(), &[]);
    let credentials = credentials_file(tmp.path());
    let agent = Agent::start_with_env(&config(&node, &index, &proxy, "gzip", ""), &env);

    // 1. No credentials at all: a clear error, retried; nothing is sent.
    wait_until("the agent logs the missing credentials", WAIT, || {
        agent.log_text().contains("cannot load AWS credentials")
    });
    assert_eq!(proxy.count("verified") + proxy.count("rejected"), 0);

    // 2. A wrong secret: every request is refused (403) and retried.
    write_credentials(&credentials, WRONG);
    wait_until("the proxy refuses requests", WAIT, || {
        proxy.count("rejected") >= 3
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(es.count(&pattern), 0, "nothing passes with a wrong secret");
    let log = agent.log_text();
    assert!(log.contains("403"), "the 403 is logged:\n{log}");
    assert!(
        log.contains("Elasticsearch refused the AWS signature"),
        "the refusal makes the agent load its credentials again:\n{log}"
    );

    // 3. The file is fixed (a rotated Secret): picked up without a restart, nothing lost.
    write_credentials(&credentials, RIGHT);
    let (found, _) = deliver_all(&es, &pattern, &expected, agent, &proxy, &[RIGHT, WRONG]);
    let n = expected.len();
    let stats = proxy.stats();
    let by_kind = stats["rejected_by_kind"].as_object().unwrap();
    assert_eq!(
        by_kind.keys().collect::<Vec<_>>(),
        ["mismatch"],
        "refused for the wrong secret only, never as expired (every retry is signed anew): {stats}"
    );
    assert!(stats["verified"].as_u64().unwrap() > 0, "{stats}");
    eprintln!(
        "scenario missing-then-wrong-then-fixed: {n} lines written, {found} documents found; proxy verified {}, rejected {} {:?}",
        stats["verified"], stats["rejected"], by_kind
    );
}

/// The verifier is only worth its "rejected == 0" if it refuses what AWS refuses: checked here
/// with requests signed by the agent's own signing function, each spoilt in one way.
#[test]
fn the_verifying_proxy_refuses_what_aws_would_refuse() {
    use aws_credential_types::Credentials;
    use sluice::sink::elasticsearch::aws::sign::sign;
    let (_es, _tmp, proxy) = start(&[FILE_CREDENTIALS_WITH_TOKEN], AWS_SKEW, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let url: reqwest::Url = format!("{}/_cluster/health?local=true", proxy.url)
        .parse()
        .unwrap();
    let now = SystemTime::now();
    // Signed with (secret, session token, region, time), then the body replaced if given.
    let send = |signed: Option<(&str, Option<&str>, &str, SystemTime)>, body: Option<&[u8]>| {
        let mut req = reqwest::Request::new(reqwest::Method::GET, url.clone());
        if let Some((secret, token, region, at)) = signed {
            let creds = Credentials::new(FILE_KEY, secret, token.map(Into::into), None, "t");
            sign(&mut req, &creds, region, "es", at).unwrap();
        }
        if let Some(b) = body {
            *req.body_mut() = Some(b.to_vec().into());
        }
        rt.block_on(client.execute(req)).unwrap().status().as_u16()
    };
    let ok = Some(ENV_TOKEN);
    let ten_minutes_ago = now - Duration::from_secs(600);
    let cases = [
        ("valid", send(Some((RIGHT, ok, REGION, now)), None), 200),
        ("unsigned", send(None, None), 403),
        (
            "wrong secret",
            send(Some((WRONG, ok, REGION, now)), None),
            403,
        ),
        (
            "no session token",
            send(Some((RIGHT, None, REGION, now)), None),
            403,
        ),
        (
            "other region",
            send(Some((RIGHT, ok, "us-east-1", now)), None),
            403,
        ),
        (
            "ten minutes old",
            send(Some((RIGHT, ok, REGION, ten_minutes_ago)), None),
            403,
        ),
        (
            "body changed",
            send(Some((RIGHT, ok, REGION, now)), Some(b"{}")),
            403,
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}: {}", proxy.log_text());
    }
    let stats = proxy.stats();
    assert_eq!(stats["verified"], 1, "{stats}");
    let kinds = &stats["rejected_by_kind"];
    for k in [
        "missing",
        "mismatch",
        "bad_token",
        "scope",
        "expired",
        "payload_hash",
    ] {
        assert_eq!(kinds[k], 1, "{k}: {stats}");
    }
}
