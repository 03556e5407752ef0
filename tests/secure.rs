//! Credentials and TLS against the real Elasticsearch behind nginx (TLS-terminating and checking
//! the `Authorization` header; see `support/nginx.rs`): the right credentials work, wrong ones
//! lose nothing and never appear in the log, the custom CA is trusted, a server certificate from
//! another CA is refused.

#[path = "support/endpoints.rs"]
mod endpoints;
#[path = "support/nginx.rs"]
mod nginx;
mod support;

use std::time::Duration;

use endpoints::config_full;
use nginx::{Nginx, Pki, basic};
use support::{Agent, Es, Node, assert_exactly, lines, unique};

const WAIT: Duration = Duration::from_secs(180);
const RIGHT: &str = "right-pass-4f1c";
const WRONG: &str = "wrong-pass-9b7e";
const API_KEY: &str = "YXBpa2V5OnRlc3Q=";
const TOKEN: &str = "bearer-token-77aa";

fn accepted() -> Vec<String> {
    vec![
        basic("sluice", RIGHT),
        format!("ApiKey {API_KEY}"),
        format!("Bearer {TOKEN}"),
    ]
}

#[test]
fn wrong_password_loses_nothing_and_is_never_logged_then_the_fixed_file_heals() {
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let proxy = Nginx::start(tmp.path(), &pki, &es.url, &accepted());
    let node = Node::new();
    let index = unique("secure-basic");
    let pattern = format!("{index}-*");
    let password = tmp.path().join("password");
    std::fs::write(&password, format!("{WRONG}\n")).unwrap();
    let config = config_full(
        &node,
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        &format!(
            "  auth:\n    username: sluice\n    password_file: {}\n  tls:\n    ca_file: {}\n",
            password.display(),
            pki.ca.display()
        ),
        "",
    );
    let expected = lines(&node, "web-1", 300);
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        es.count(&pattern),
        0,
        "nothing passes with a wrong password"
    );
    assert!(proxy.count_status(401) > 0, "the proxy refused requests");
    let log = agent.log_text();
    assert!(log.contains("401"), "the 401 is logged:\n{log}");
    assert!(
        !log.contains(WRONG) && !log.contains(RIGHT),
        "a secret appears in the log:\n{log}"
    );

    // The Secret is fixed (as a rotated Kubernetes Secret would be): no restart needed.
    std::fs::write(&password, RIGHT).unwrap();
    let n = expected.len() as u64;
    assert_eq!(
        es.wait_count(&pattern, n, WAIT),
        n,
        "agent log:\n{}",
        agent.log_text()
    );
    let log = agent.log_text();
    agent.stop();
    assert!(!log.contains(RIGHT) && !log.contains(WRONG));
    assert_exactly(&es, &pattern, &expected);
    eprintln!(
        "scenario wrong-password-then-fixed: {n} lines written, {n} documents found; nginx 401s: {}",
        proxy.count_status(401)
    );
}

#[test]
fn api_key_and_bearer_token_are_sent() {
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let proxy = Nginx::start(tmp.path(), &pki, &es.url, &accepted());
    let token = tmp.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    for (name, auth) in [
        ("apikey", format!("    api_key: {API_KEY}\n")),
        (
            "bearer",
            format!("    bearer_token_file: {}\n", token.display()),
        ),
    ] {
        let node = Node::new();
        let index = unique(&format!("secure-{name}"));
        let pattern = format!("{index}-*");
        let config = config_full(
            &node,
            &format!("{index}-%Y.%m.%d"),
            std::slice::from_ref(&proxy.url),
            &format!("  auth:\n{auth}  tls:\n    ca_file: {}\n", pki.ca.display()),
            "",
        );
        let expected = lines(&node, "web-1", 50);
        let agent = Agent::start(&config);
        let n = expected.len() as u64;
        assert_eq!(
            es.wait_count(&pattern, n, WAIT),
            n,
            "{name}: agent log:\n{}",
            agent.log_text()
        );
        let log = agent.log_text();
        agent.stop();
        assert!(!log.contains(API_KEY) && !log.contains(TOKEN), "{log}");
        assert_exactly(&es, &pattern, &expected);
    }
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let proxy = Nginx::start(tmp.path(), &pki, &es.url, &accepted());
    let node = Node::new();
    let index = unique("secure-badca");
    let config = config_full(
        &node,
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        &format!(
            "  auth:\n    api_key: {API_KEY}\n  tls:\n    ca_file: {}\n",
            pki.other_ca.display()
        ),
        "",
    );
    lines(&node, "web-1", 20);
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(es.count(&format!("{index}-*")), 0);
    let log = agent.log_text();
    assert!(
        log.to_lowercase().contains("certificate"),
        "the TLS refusal is logged:\n{log}"
    );
    assert_eq!(proxy.count_status(200), 0, "no request got through");
    agent.kill();
}

#[test]
fn a_client_certificate_is_presented_when_configured() {
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let proxy = Nginx::start_with(tmp.path(), &pki, &es.url, &accepted(), true);
    let node = Node::new();
    let index = unique("secure-mtls");
    let pattern = format!("{index}-*");
    let config = config_full(
        &node,
        &format!("{index}-%Y.%m.%d"),
        std::slice::from_ref(&proxy.url),
        &format!(
            "  auth:\n    api_key: {API_KEY}\n  tls:\n    ca_file: {}\n    client_cert_file: {}\n    client_key_file: {}\n",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
        "",
    );
    let expected = lines(&node, "web-1", 50);
    let agent = Agent::start(&config);
    let n = expected.len() as u64;
    assert_eq!(
        es.wait_count(&pattern, n, WAIT),
        n,
        "agent log:\n{}",
        agent.log_text()
    );
    agent.stop();
    assert_exactly(&es, &pattern, &expected);
}

#[test]
fn without_the_required_client_certificate_nothing_is_dead_lettered_and_the_fix_delivers_all() {
    let es = Es::new();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let proxy = Nginx::start_with(tmp.path(), &pki, &es.url, &accepted(), true);
    let node = Node::new();
    let index = unique("secure-nocert");
    let pattern = format!("{index}-*");
    let tls = format!(
        "  auth:\n    api_key: {API_KEY}\n  tls:\n    ca_file: {}\n",
        pki.ca.display()
    );
    let eps = std::slice::from_ref(&proxy.url);
    let config = config_full(&node, &format!("{index}-%Y.%m.%d"), eps, &tls, "");
    let expected = lines(&node, "web-1", 100);
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_secs(4));
    let log = agent.log_text();
    agent.kill();
    assert_eq!(es.count(&pattern), 0, "nginx requires a client certificate");
    assert!(proxy.count_status(400) > 0, "nginx answered 400");
    // Regression: a proxy's 400 split the batch and sent every line to the dead-letter index.
    assert!(
        !log.contains("dead-letter"),
        "lines were dead-lettered for a proxy's 400:\n{log}"
    );

    let with_cert = format!(
        "{tls}    client_cert_file: {}\n    client_key_file: {}\n",
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let config = config_full(&node, &format!("{index}-%Y.%m.%d"), eps, &with_cert, "");
    let agent = Agent::start(&config);
    let n = expected.len() as u64;
    assert_eq!(es.wait_count(&pattern, n, WAIT), n, "{}", agent.log_text());
    agent.stop();
    assert_exactly(&es, &pattern, &expected);
}
