//! SigV4 for one built request: pure (credentials and time passed in), so it is tested against
//! signatures computed by botocore.
//!
//! What is signed is the request as it will go out: its method, URL, the headers it carries now
//! (`content-type`, `content-encoding`), `host` (from the URL, as hyper will send it) and the
//! SHA-256 of its body bytes, the gzip'd ones when compression is on. The body is hashed in
//! place, never copied. Headers the client adds later (`accept`, `content-length`) stay out of the
//! signature, as the SDKs leave them out.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign as sigv4_sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::header::{HeaderName, HeaderValue};

/// Adds the SigV4 headers to `req` (replacing any from an earlier signature).
pub fn sign(
    req: &mut reqwest::Request,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity: Identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    // `x-amz-content-sha256`: OpenSearch Serverless requires it; the managed service accepts it.
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let instructions = {
        let body: &[u8] = match req.body() {
            None => &[],
            Some(b) => b
                .as_bytes()
                .ok_or("cannot sign a streamed request body (its bytes are not known yet)")?,
        };
        let mut headers = Vec::with_capacity(req.headers().len());
        for (name, value) in req.headers() {
            if is_signature_header(name) {
                continue;
            }
            let value = value
                .to_str()
                .map_err(|_| format!("cannot sign the request: header {name} is not text"))?;
            headers.push((name.as_str(), value));
        }
        let signable = SignableRequest::new(
            req.method().as_str(),
            req.url().as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _signature) = sigv4_sign(signable, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        instructions
    };
    let (headers, _query) = instructions.into_parts();
    for h in headers {
        let name = HeaderName::from_static(h.name());
        let mut value = HeaderValue::from_str(h.value())
            // The error names the header, never its value (a session token).
            .map_err(|_| format!("the signed header {name} is not a valid header value"))?;
        // The signature is useless without the secret, but a replay within its validity is not:
        // keep it, and the session token, out of any debug output.
        value.set_sensitive(h.sensitive() || name == reqwest::header::AUTHORIZATION);
        req.headers_mut().insert(name, value);
    }
    Ok(())
}

/// Headers written by signing; an earlier signature's are not signed over again.
fn is_signature_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization" | "x-amz-date" | "x-amz-content-sha256" | "x-amz-security-token"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2026-11-24T10:00:00Z.
    const AT: u64 = 1_795_514_400;

    /// `gzip.compress(b'{"create":{"_index":"logs","_id":"a"}}\n{"message":"hello"}\n',
    /// compresslevel=1, mtime=0)` in Python.
    const GZIPPED: [u8; 75] = [
        31, 139, 8, 0, 0, 0, 0, 0, 4, 3, 171, 86, 74, 46, 74, 77, 44, 73, 85, 178, 170, 86, 138,
        207, 204, 75, 73, 173, 80, 178, 82, 202, 201, 79, 47, 86, 210, 1, 242, 83, 128, 156, 68,
        165, 218, 90, 174, 106, 165, 220, 212, 226, 226, 196, 116, 160, 58, 165, 140, 212, 156,
        156, 124, 165, 90, 46, 0, 106, 218, 241, 17, 59, 0, 0, 0,
    ];

    fn bulk_request() -> reqwest::Request {
        let url = "http://127.0.0.1:9200/_bulk?filter_path=errors,items.*.status,items.*.error";
        let mut req = reqwest::Request::new(reqwest::Method::POST, url.parse().unwrap());
        let h = req.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-ndjson"),
        );
        h.insert("content-encoding", HeaderValue::from_static("gzip"));
        *req.body_mut() = Some(bytes::Bytes::from_static(&GZIPPED).into());
        req
    }

    fn header<'a>(req: &'a reqwest::Request, name: &str) -> &'a str {
        req.headers()[name].to_str().unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Expected values computed by botocore's SigV4Auth (the proxy of tests/sigv4.rs does the
    /// same at run time), over the gzip'd bytes.
    #[test]
    fn gzipped_bulk_request_signature_matches_botocore() {
        let creds = Credentials::new(
            AKID,
            SECRET,
            Some("session-token-example".into()),
            None,
            "t",
        );
        let mut req = bulk_request();
        sign(&mut req, &creds, "eu-west-1", "es", at(AT)).unwrap();
        assert_eq!(
            header(&req, "x-amz-content-sha256"),
            "db44de45aa8803e935fa03b356414af9c1941441eb5b911a12b0ce738ec1353e",
            "the hash of the gzip'd body, as sent"
        );
        assert_eq!(header(&req, "x-amz-date"), "20261124T100000Z");
        assert_eq!(
            header(&req, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/eu-west-1/es/aws4_request, \
             SignedHeaders=content-encoding;content-type;host;x-amz-content-sha256;x-amz-date;\
             x-amz-security-token, \
             Signature=dd741771c6ceb2143c30b9421bd5fd8f8ef39b738d141ad947af6b2d1cf82374"
        );
        assert!(req.headers()["authorization"].is_sensitive());
        assert!(req.headers()["x-amz-security-token"].is_sensitive());
        assert_eq!(
            req.body().and_then(|b| b.as_bytes()),
            Some(&GZIPPED[..]),
            "body untouched"
        );
    }

    #[test]
    fn empty_get_for_serverless_matches_botocore() {
        let creds = Credentials::new(AKID, SECRET, None, None, "t");
        let url = "https://search-logs-abc.eu-west-1.es.amazonaws.com/_cluster/health?local=true";
        let mut req = reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap());
        sign(&mut req, &creds, "eu-west-1", "aoss", at(AT)).unwrap();
        assert!(header(&req, "authorization").ends_with(
            "/aoss/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=507a8b92a56a575bdef0739fe79916049af269a08eb83fd4021a6f7d4292477b"
        ));
        assert!(!req.headers().contains_key("x-amz-security-token"));
    }

    #[test]
    fn signing_again_replaces_the_old_signature_with_a_fresh_date() {
        let creds = Credentials::new(AKID, SECRET, Some("tok-9f3e".into()), None, "t");
        let mut req = bulk_request();
        sign(&mut req, &creds, "eu-west-1", "es", at(AT)).unwrap();
        let first = header(&req, "authorization").to_string();
        sign(&mut req, &creds, "eu-west-1", "es", at(AT + 61)).unwrap();
        assert_eq!(header(&req, "x-amz-date"), "20261124T100101Z");
        let second = header(&req, "authorization");
        assert_ne!(first, second);
        assert_eq!(req.headers().get_all("authorization").iter().count(), 1);
        // The old signature's headers were not signed over.
        assert!(second.contains(
            "SignedHeaders=content-encoding;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
        ));
    }

    #[test]
    fn the_secret_never_appears_in_the_request() {
        let creds = Credentials::new(AKID, SECRET, Some("tok-9f3e".into()), None, "t");
        let mut req = bulk_request();
        sign(&mut req, &creds, "eu-west-1", "es", at(AT)).unwrap();
        for (_, v) in req.headers() {
            assert!(!v.to_str().unwrap().contains(SECRET));
        }
        assert!(!format!("{req:?}").contains("tok-9f3e"), "token in Debug");
    }
}
