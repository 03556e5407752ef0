"""A SigV4-verifying proxy in front of a real Elasticsearch, with moto's STS in the same process.

Used by tests/sigv4.rs (through tests/support/sigv4.rs); run with the Python of moto's virtualenv
(`scripts/moto python`). It checks every request the way Amazon OpenSearch Service does, with an
implementation independent of the agent's (botocore's SigV4Auth), then forwards the request,
byte for byte, to Elasticsearch. A missing, malformed, mis-scoped, expired or wrong signature, a
body whose SHA-256 differs from `x-amz-content-sha256`, an unknown access key or a wrong session
token get a 403 with an AWS-style JSON error, and are not forwarded.

Keys it knows: the static ones given with --key (access key, secret, optional session token), and
every key moto's STS issued (AssumeRoleWithWebIdentity: IRSA), looked up in moto's in-memory
backend, which is why both run in this one process.

On start it prints one JSON line: {"proxy": "http://127.0.0.1:P", "sts": "http://127.0.0.1:Q"}.
With --fail-bulks N the first N valid `_bulk` requests get a 503 instead of being forwarded, so the
endpoint is marked down, probed, and the batch retried.

GET /__sigv4/stats (unsigned) answers the counters: verified (by path; of which gzipped),
failed_bulks, forwarded, rejected (and by kind:
missing, malformed, scope, unsigned_header, expired, payload_hash, unknown_key, bad_token,
mismatch), and the access keys of the verified requests.
It never prints a secret; rejections are logged to stderr with their reason.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import sys
import threading
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends

ALGORITHM = "AWS4-HMAC-SHA256"
# Headers every signed request must cover: aoss requires the payload hash.
REQUIRED_SIGNED = ("host", "x-amz-content-sha256", "x-amz-date")


class Rejection(Exception):
    """`code` is the AWS error type (x-amzn-ErrorType); `kind` what the stats count."""

    def __init__(self, code, kind, message):
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.message = message


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.verified = 0
        self.verified_paths = {}
        self.gzipped = 0
        self.failed_bulks = 0
        self.forwarded = 0
        self.rejected = {}
        self.keys_seen = set()

    def reject(self, kind):
        with self.lock:
            self.rejected[kind] = self.rejected.get(kind, 0) + 1

    def snapshot(self):
        with self.lock:
            return {
                "verified": self.verified,
                "gzipped": self.gzipped,
                "verified_paths": dict(self.verified_paths),
                "failed_bulks": self.failed_bulks,
                "forwarded": self.forwarded,
                "rejected": sum(self.rejected.values()),
                "rejected_by_kind": dict(self.rejected),
                "access_keys": sorted(self.keys_seen),
            }


def sts_issued(access_key):
    """(secret, session token) of a key moto's STS handed out, or None."""
    for account_id in list(sts_backends.keys()):
        for backend in list(sts_backends[account_id].values()):
            role = backend.get_assumed_role_from_access_key(access_key)
            if role is not None:
                return role.secret_access_key, role.session_token
    return None


def parse_authorization(value):
    if not value:
        raise Rejection("MissingAuthenticationTokenException", "missing", "Missing Authentication Token")
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise Rejection("IncompleteSignatureException", "malformed", f"Unsupported algorithm {algorithm!r}")
    fields = {}
    for part in rest.split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        credential, signed, signature = (
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
        )
    except KeyError as e:
        raise Rejection("IncompleteSignatureException", "malformed", f"Authorization header requires {e}")
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise Rejection("IncompleteSignatureException", "malformed", f"Malformed credential scope {credential!r}")
    return scope, signed.split(";"), signature


def canonical_params(query):
    """The query as the server reads it: split, percent-decoded (no `+` rule), in order. botocore
    encodes these pairs strictly (everything but A-Z a-z 0-9 - _ . ~), as the spec says."""
    if not query:
        return []
    pairs = []
    for pair in query.split("&"):
        k, _, v = pair.partition("=")
        pairs.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
    return pairs


def verify(method, raw_path, headers, body, cfg):
    """Raises Rejection unless the request carries a valid signature; returns the access key."""
    scope, signed_headers, signature = parse_authorization(headers.get("authorization"))
    access_key, day, region, service, _ = scope
    if region != cfg.region:
        raise Rejection("InvalidSignatureException", "scope", f"Credential should be scoped to a valid region, not '{region}'.")
    if service != cfg.service:
        raise Rejection("InvalidSignatureException", "scope", f"Credential should be scoped to correct service: '{cfg.service}'.")
    for h in REQUIRED_SIGNED:
        if h not in signed_headers:
            raise Rejection("InvalidSignatureException", "unsigned_header", f"'{h}' must be a signed header.")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Rejection("IncompleteSignatureException", "malformed", f"Bad x-amz-date {amz_date!r}")
    if amz_date[:8] != day:
        raise Rejection("InvalidSignatureException", "scope", "Credential scope date does not match x-amz-date.")
    now = datetime.datetime.now(datetime.timezone.utc)
    if abs((now - signed_at).total_seconds()) > cfg.max_skew:
        raise Rejection(
            "InvalidSignatureException",
            "expired",
            f"Signature expired: {amz_date} is now earlier than the allowed {cfg.max_skew} s "
            f"(now {now.strftime('%Y%m%dT%H%M%SZ')}).",
        )
    if headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
        raise Rejection("XAmzContentSHA256Mismatch", "payload_hash", "The provided 'x-amz-content-sha256' header does not match what was computed.")
    known = cfg.keys.get(access_key) or sts_issued(access_key)
    if known is None:
        raise Rejection("UnrecognizedClientException", "unknown_key", "The security token included in the request is invalid.")
    secret, token = known
    if token is not None and headers.get("x-amz-security-token") != token:
        raise Rejection("UnrecognizedClientException", "bad_token", "The security token included in the request is invalid.")
    path, _, query = raw_path.partition("?")
    request = AWSRequest(
        method=method,
        url=f"http://{headers.get('host', '')}{path}",
        headers={h: headers.get(h, "") for h in signed_headers},
        data=body,
        params=canonical_params(query),
    )
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key, secret, token), service, region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        raise Rejection(
            "InvalidSignatureException",
            "mismatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.\n\nThe Canonical String for "
            f"this request should have been\n'{canonical}'",
        )
    return access_key


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cfg = None
    stats = None

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/__sigv4/stats":
            return self._reply(200, json.dumps(self.stats.snapshot()).encode())
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            key = verify(self.command, self.path, headers, body, self.cfg)
        except Rejection as r:
            self.stats.reject(r.kind)
            print(f"sigv4-proxy: 403 {r.code} ({r.kind}) {self.command} {self.path}: {r.message.splitlines()[0]}", file=sys.stderr, flush=True)
            return self._reply(403, json.dumps({"message": r.message}).encode(), extra=[("x-amzn-errortype", r.code)])
        gzipped = headers.get("content-encoding") == "gzip"
        path = self.path.partition("?")[0]
        with self.stats.lock:
            self.stats.verified += 1
            self.stats.verified_paths[path] = self.stats.verified_paths.get(path, 0) + 1
            self.stats.gzipped += gzipped
            self.stats.keys_seen.add(key)
            fail = path.endswith("/_bulk") and self.stats.failed_bulks < self.cfg.fail_bulks
            self.stats.failed_bulks += fail
        if fail:
            # After the check: the agent's retry (and its probe) must be signed anew to pass.
            print(f"sigv4-proxy: verified {self.command} {self.path}, answered 503 (--fail-bulks)", file=sys.stderr, flush=True)
            return self._reply(503, b'{"error":"injected by the test proxy (--fail-bulks)"}')
        fwd = {k: headers[k] for k in ("content-type", "content-encoding") if k in headers}
        conn = http.client.HTTPConnection(self.cfg.es_host, self.cfg.es_port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body if body else None, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as e:
            return self._reply(502, json.dumps({"message": f"proxy: {e}"}).encode())
        finally:
            conn.close()
        with self.stats.lock:
            self.stats.forwarded += 1
        print(f"sigv4-proxy: verified {self.command} {self.path} ({len(body)} bytes{', gzip' if gzipped else ''}) -> {resp.status}", file=sys.stderr, flush=True)
        self._reply(resp.status, data, resp.getheader("content-type", "application/json"))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def parse_key(s):
    parts = s.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError("--key ACCESS_KEY:SECRET[:SESSION_TOKEN]")
    return parts[0], (parts[1], parts[2] if len(parts) == 3 else None)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--es", required=True, help="Elasticsearch URL, http://HOST:PORT")
    p.add_argument("--region", required=True)
    p.add_argument("--service", default="es")
    p.add_argument("--key", action="append", type=parse_key, default=[])
    p.add_argument("--max-skew", type=float, default=300.0, help="seconds (AWS: 5 minutes)")
    p.add_argument("--fail-bulks", type=int, default=0, help="answer 503 to the first N valid _bulk requests")
    cfg = p.parse_args()
    es = urllib.parse.urlsplit(cfg.es)
    cfg.es_host, cfg.es_port = es.hostname, es.port or 80
    cfg.keys = dict(cfg.key)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    _, sts_port = moto.get_host_and_port()

    Handler.cfg = cfg
    Handler.stats = Stats()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(json.dumps({"proxy": f"http://127.0.0.1:{server.server_address[1]}", "sts": f"http://127.0.0.1:{sts_port}"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
