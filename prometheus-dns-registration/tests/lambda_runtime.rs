//! The `bootstrap` binary under a stand-in for the Lambda Runtime API (plain HTTP on
//! 127.0.0.1): a failing resync must be reported to the runtime as an invocation error, and
//! the process must then ask for the next event instead of exiting (the Go service exited, so
//! AWS never retried). Needs moto (`MOTO_URL`) for Route53.

mod common;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the stand-in runtime saw.
#[derive(Debug)]
enum Seen {
    Next,
    Error {
        path: String,
        error_type: String,
        body: String,
    },
    // Only printed (Debug) when an assertion fails.
    #[allow(dead_code)]
    Response {
        path: String,
        body: String,
    },
}

const EVENT: &str = r#"{"version":"0","id":"e1","detail-type":"AWS API Call via CloudTrail","source":"aws.route53","account":"123456789012","time":"2026-11-24T16:00:00Z","region":"us-east-1","resources":[],"detail":{"eventName":"ChangeResourceRecordSets","requestParameters":{"hostedZoneId":"ZNOSUCHZONE"}}}"#;

/// Serves HTTP/1.1 requests on one connection: the first `GET …/next` gets the event, later
/// ones never get an answer (as when no event is pending); POSTs are recorded and acknowledged.
async fn serve(
    sock: tokio::net::TcpStream,
    seen: mpsc::UnboundedSender<Seen>,
    handed_out: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let (read, mut write) = sock.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            read.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        read.read_exact(&mut body).await.unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );

        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = seen.send(Seen::Next);
            if handed_out.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // No more events: hold the request open, like the real runtime between events.
                std::future::pending::<()>().await;
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-1\r\n\
                 lambda-runtime-deadline-ms: 9999999999999\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:pdr\r\n\
                 content-length: {}\r\n\r\n{EVENT}",
                EVENT.len()
            );
            write.write_all(reply.as_bytes()).await.unwrap();
        } else {
            let _ = seen.send(if path.ends_with("/error") {
                Seen::Error {
                    path,
                    error_type: header("lambda-runtime-function-error-type").unwrap_or_default(),
                    body,
                }
            } else {
                Seen::Response { path, body }
            });
            write
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_failed_resync_is_reported_to_the_runtime_and_the_process_waits_for_the_next_event() {
    let moto = common::moto_url();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(sock, tx.clone(), handed_out.clone()));
        }
    });

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_prometheus-dns-registration"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pdr")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/pdr")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_ENDPOINT_URL", &moto)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("PDR_HOSTED_ZONE_ID", "ZNOSUCHZONE")
        .env("PDR_KUBECONFIG", "/nonexistent/kubeconfig")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary (no arguments, as Lambda does)");

    let mut seen = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(s) = rx.recv().await {
            let done =
                matches!(s, Seen::Next) && seen.iter().any(|s| matches!(s, Seen::Error { .. }));
            seen.push(s);
            if done {
                return;
            }
        }
    })
    .await;
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().await.ok();
    server.abort();
    assert!(outcome.is_ok(), "timed out; the runtime saw {seen:?}");

    assert!(matches!(seen[0], Seen::Next), "{seen:?}");
    match &seen[1] {
        Seen::Error {
            path,
            error_type,
            body,
        } => {
            assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/error");
            assert_eq!(error_type, "unhandled");
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["errorType"], "Route53Error", "{body}");
            assert!(
                body["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("ZNOSUCHZONE"),
                "{body}"
            );
        }
        other => panic!("expected an invocation error, got {other:?} (all: {seen:?})"),
    }
    assert!(
        matches!(seen[2], Seen::Next),
        "after the error the process asks for the next event: {seen:?}"
    );
    assert!(
        still_running,
        "the process must not exit after a failed invocation"
    );
}
