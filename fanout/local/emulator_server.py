"""moto's server behind a guard: `python -m fanout.local.emulator_server HOST PORT STATE_DIR`.

moto answers any origin with CORS headers, takes any credentials, and acts on plain GETs under
/moto-api/ (start recording every request, replay a recording, reset its RNG). Without this guard
any other user of the machine could drive the stack (and have it run their code), and any site open
in the developer's browser could read and write all local data. So, in front of moto's WSGI app (the
same process, no extra hop), the guard refuses with 403 and no CORS header:
- a request not signed (SigV4, Authorization header) with this run's keys (random per run, kept in
  the state dir, readable only by its user): the access key id must be the run's and the signature
  must verify, computed with botocore's own signer over the request as received (the payload hash is
  the signed X-Amz-Content-SHA256 header where the SDK sends one, as S3 does; the body otherwise).
  Presigned URLs (query-string auth) are refused: nothing of the stack uses them;
- anything under /moto-api/ (the stack needs none of it);
- a request that carries `Origin`, `Referer` or any `Sec-Fetch-*` header (browsers send them, SDKs
  and the CLI never do), or a Host other than this endpoint's own (DNS rebinding).
moto's own files (a recording) go to the state dir, never to the current directory.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
KEY_ENV = "FANOUT_EMULATOR_ACCESS_KEY_ID"
SECRET_ENV = "FANOUT_EMULATOR_SECRET_ACCESS_KEY"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;._-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
FROM_PAGES = "the local AWS endpoint refuses requests from web pages (Origin, Referer, Sec-Fetch-* or Host header)"
MOTO_API = "the local AWS endpoint does not serve moto's /moto-api/ routes"
BAD_SIGNATURE = "the request's SigV4 signature does not match this run's credentials"
WRONG_KEY = (
    'the local AWS endpoint accepts only the credentials of its own run; set them with eval "$(.venv/bin/fanout env)"'
)


def access_key_id(environ: dict[str, Any]) -> str | None:
    """The access key id a SigV4 request names (Authorization header, or X-Amz-Credential of a presigned URL)."""
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    if header:
        found = _CREDENTIAL.search(header) if header.startswith("AWS4-HMAC-SHA256 ") else None
        return found.group(1) if found else None
    credential = parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential")
    return credential[-1].split("/", 1)[0] if credential else None


def _signed_headers(environ: dict[str, Any], names: list[str]) -> dict[str, str] | None:
    """The signed headers as received (WSGI keeps Content-Type and Content-Length apart), or None if one is missing."""
    headers = {}
    for name in names:
        key = name.upper().replace("-", "_")
        value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
        if value is None:
            return None
        headers[name] = str(value)
    return headers


def _body(environ: dict[str, Any]) -> bytes:
    """Read the body for hashing, and leave it for moto to read again."""
    import io

    stream = environ["wsgi.input"]
    length = str(environ.get("CONTENT_LENGTH") or "")
    body = (
        stream.read(int(length)) if length.isdigit() else stream.read() if environ.get("wsgi.input_terminated") else b""
    )
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def signature_matches(environ: dict[str, Any], key_id: str, secret: str) -> bool:
    """Whether the Authorization header is a SigV4 signature of this request with this run's keys."""
    import hmac

    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    found = _SIGV4.fullmatch(str(environ.get("HTTP_AUTHORIZATION", "")).strip())
    if found is None or found["key"] != key_id:
        return False
    headers = _signed_headers(environ, found["signed"].split(";"))
    if headers is None or "x-amz-date" not in headers or "host" not in headers:
        return False
    target = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
    # S3 (and any SDK that sends it) signs the payload hash as a header: the body need not be read.
    body = b"" if "x-amz-content-sha256" in headers else _body(environ)
    request = AWSRequest(method=str(environ["REQUEST_METHOD"]), url=f"http://{headers['host']}{target}", data=body)
    for name, value in headers.items():
        request.headers[name] = value
    request.context["timestamp"] = headers["x-amz-date"]
    signer = (S3SigV4Auth if found["service"] == "s3" else SigV4Auth)(
        Credentials(key_id, secret), found["service"], found["region"]
    )
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, found["signature"])


def _refusal(environ: dict[str, Any], message: str) -> tuple[bytes, str]:
    # In the shape the caller's SDK parses, so the CLI or boto3 shows the message itself.
    wants_json = "HTTP_X_AMZ_TARGET" in environ or "json" in str(environ.get("CONTENT_TYPE", ""))
    if wants_json:
        import json

        return json.dumps({"__type": "AccessDeniedException", "message": message}).encode(), "application/json"
    body = f"<ErrorResponse><Error><Code>AccessDenied</Code><Message>{message}</Message></Error></ErrorResponse>"
    return body.encode(), "text/xml"


def refusal(environ: dict[str, Any], own_hosts: frozenset[str], key_id: str, secret: str) -> str | None:
    """Why the guard refuses this request, or None to hand it to moto."""
    if environ.get("HTTP_HOST", "").strip().lower() not in own_hosts:
        return FROM_PAGES
    if any(k == "HTTP_ORIGIN" or k == "HTTP_REFERER" or k.startswith("HTTP_SEC_FETCH_") for k in environ):
        return FROM_PAGES
    if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
        return MOTO_API
    if access_key_id(environ) != key_id or "HTTP_AUTHORIZATION" not in environ:
        return WRONG_KEY
    try:
        return None if signature_matches(environ, key_id, secret) else BAD_SIGNATURE
    except Exception:  # anything malformed in what was signed is a request we do not serve
        return BAD_SIGNATURE


def guard(app: WsgiApp, port: int, key_id: str, secret: str) -> WsgiApp:
    # 127.0.0.1, localhost or [::1] with this port: SDKs address S3 path-style on these names.
    own = frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        why = refusal(environ, own, key_id, secret)
        if why is not None:
            body, ctype = _refusal(environ, why)
            start_response("403 Forbidden", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return guarded


def main(argv: list[str]) -> None:
    host, port, state_dir = argv[0], int(argv[1]), argv[2]
    key_id, secret = os.environ.pop(KEY_ENV, ""), os.environ.pop(SECRET_ENV, "")
    if not key_id or not secret:
        sys.exit(f"{KEY_ENV} and {SECRET_ENV} must be set: the emulated endpoint does not run without its keys")
    # No CORS headers from moto at all: nothing here is for browsers.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    os.environ.setdefault("MOTO_PORT", str(port))
    # moto's recorder writes to the current directory unless told otherwise: the state dir (0700) instead.
    os.environ["MOTO_RECORDER_FILEPATH"] = str(Path(state_dir) / "moto_recording")
    os.chdir(state_dir)
    import signal

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    # As moto.server.main does: SIGTERM ends the process cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, guard(app, port, key_id, secret), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
