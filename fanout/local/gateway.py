"""API Gateway (REST, Lambda proxy), emulated on 127.0.0.1.

For the routes with an authorizer it does what API Gateway does: a missing
Authorization header is 401 without calling the authorizer; otherwise the TOKEN
authorizer runs (its answer cached by token for the TTL), its IAM policy is evaluated
against the method ARN (explicit Deny wins, no Allow means 403), and the api handler
gets a REST v1 proxy event with the authorizer's context. Everything else goes to the
api handler unauthenticated, as the `ANY` fallback routes do on AWS, so it answers
404/405 itself. Besides the API it serves /healthz, the web app, and /_local/token.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import io
import json
import logging
import mimetypes
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fanout import tokens
from fanout.local.lambda_context import LocalContext
from fanout.localenv import ACCOUNT_ID
from fanout.text import printable
from handlers.core import jsonbody
from handlers.core.auth import Unauthorized, bearer_token
from handlers.core.jsonbody import quoted

log = logging.getLogger("fanout.local.gateway")
MAX_BODY = 64 * 1024
# A connection that sends nothing for this long is closed: idle or half-open sockets do not pin threads.
IDLE_TIMEOUT = 20.0
# The whole request head (request line and headers, or the wait for the next request on a kept-alive
# connection) must arrive within this, and a body within BODY_SECONDS: a client that sends a byte now
# and then holds its thread no longer than that.
HEAD_SECONDS = 10.0
BODY_SECONDS = 30.0
# Connections served at once (a thread each); beyond it a new connection gets 503 and is closed, so
# thousands of connections cannot exhaust threads or memory, and a stop stays quick.
MAX_CONNECTIONS = 512
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: 60\r\n\r\n"
    b'{"message": "the local stack has too many open connections"}'
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
API_ID, STAGE = "local", "local"
AUTHORIZED = {("POST", "/data"): "/data", ("GET", "/data"): "/data", ("GET", "/data/{id}"): "/data/{id}"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
Lambda = Callable[[dict[str, Any], Any], Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib default backlog of 5 resets connections under a burst of concurrent clients.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], slots: int) -> None:
        self.slots = threading.BoundedSemaphore(slots)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _busy(self, request: socket.socket) -> None:
        # From the accepting thread, so never blocking: one non-blocking send (it fits any socket buffer).
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(BUSY)
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer is not an error of ours; anything else is logged, one record.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        log.exception("gateway connection error")


class _Deadline:
    """The time by which the current read must be done (None: only the per-read idle timeout)."""

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.at: float | None = None

    def timeout(self) -> float:
        if self.at is None:
            return self.idle
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("request head or body not received in time")
        return min(self.idle, left)


class _DeadlineReader(io.RawIOBase):
    """A socket's raw reader whose every recv is bounded by what is left of the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self.sock.settimeout(self.deadline.timeout())
        return self.sock.recv_into(b)


@dataclass
class CachedPolicy:
    answer: dict[str, Any]
    expires: float


def match_resource(method: str, path: str) -> str | None:
    """The authorized API resource a request hits, e.g. ('GET', '/data/01H...') -> '/data/{id}'."""
    if (method, path) in AUTHORIZED:
        return AUTHORIZED[(method, path)]
    if method == "GET" and re.fullmatch(r"/data/[^/]+", path):
        return "/data/{id}"
    return None


def policy_allows(policy: dict[str, Any], method_arn: str) -> tuple[bool, bool]:
    """(allowed, explicitly_denied) for execute-api:Invoke on method_arn, IAM style."""

    def matches(statement: dict[str, Any]) -> bool:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            return False
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        return any(fnmatch.fnmatchcase(method_arn, r) for r in resources)

    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    denied = any(s.get("Effect") == "Deny" and matches(s) for s in statements)
    allowed = any(s.get("Effect") == "Allow" and matches(s) for s in statements)
    return allowed and not denied, denied


class Gateway:
    def __init__(
        self,
        *,
        port: int,
        region: str,
        authorizer: Lambda,
        api: Lambda,
        cache_ttl: int,
        jwt_secret: str,
        web_dir: Path | None,
        ready: Callable[[], bool] = lambda: True,
        info: dict[str, str] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        asyncapi: Callable[[], dict[str, Any]] | None = None,
        local: Callable[[str, str, str, bytes], Any] | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        # /_local/... (trace, figures, DLQs, replay) and /console: fanout.local.localapi.LocalApi.handle
        self.local = local
        self.info = info or {}
        # Called per request: the document follows the topology as it is now (live reload).
        self.asyncapi = asyncapi
        self.region = region
        self.authorizer = authorizer
        self.api = api
        self.cache_ttl = cache_ttl
        self.jwt_secret = jwt_secret
        self.web_dir = web_dir.resolve() if web_dir and web_dir.is_dir() else None
        self.ready = ready
        self.idle_timeout = idle_timeout
        self._cache: dict[str, CachedPolicy] = {}
        self._cache_lock = threading.Lock()
        self.stopping = False
        gateway = self

        class Handler(_RequestHandler):
            gw = gateway
            # StreamRequestHandler applies it to the socket: every read (request line, headers, body) and write.
            timeout = idle_timeout

        self.server = _Server(("127.0.0.1", port), Handler, max_connections)
        bound = self.server.server_address[1]
        # This stack's own names, as a browser on this machine writes them (Host has the port, Origin the scheme).
        self.hosts = frozenset(f"{h}:{bound}" for h in ("127.0.0.1", "localhost", "[::1]"))
        self.origins = frozenset(f"http://{h}" for h in self.hosts)
        self.thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        # Keep-alive connections have a thread each that would go on serving after shutdown() (which
        # only stops accepting): from now on they answer 503 and close, so a stop under load is quick.
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{API_ID}/{STAGE}/{method}{path}"

    def authorize(self, header: str, method_arn: str) -> dict[str, Any] | None:
        """The authorizer's answer (cached per token), or None when it says Unauthorized."""
        now = time.monotonic()
        # Keyed on the token itself, not the raw header: padding the header must not make new entries.
        try:
            token: str | None = bearer_token(header)
        except Unauthorized:
            token = None
        with self._cache_lock:
            cached = self._cache.get(token) if token else None
            if cached and cached.expires > now:
                return cached.answer
        # The authorizer gets the header as sent, as API Gateway's TOKEN authorizer does.
        event = {"type": "TOKEN", "authorizationToken": header, "methodArn": method_arn}
        try:
            answer = self.authorizer(event, LocalContext(function_name="authorizer", region=self.region))
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return None
            raise
        # Cached for the TTL even past the token's exp, exactly as API Gateway does: the api handler
        # refuses an expired token from the context's exp, on AWS and here alike.
        if self.cache_ttl and token:
            with self._cache_lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = CachedPolicy(answer, now + self.cache_ttl)
        return answer


class _RequestHandler(BaseHTTPRequestHandler):
    gw: Gateway
    protocol_version = "HTTP/1.1"
    server_version = "fanout-local"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Reads go through a deadline: the head (and the body) must arrive in time, not just each byte.
        self.deadline = _Deadline(self.timeout or IDLE_TIMEOUT)
        self.rfile.close()  # the stdlib's reader, nothing read from it yet
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.deadline))

    def _head_done(self) -> None:
        self.deadline.at = None
        self.connection.settimeout(self.deadline.idle)  # writes get the idle timeout, not what was left

    def handle_one_request(self) -> None:
        self.deadline.at = time.monotonic() + HEAD_SECONDS
        super().handle_one_request()

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers: the head is complete once it returns
        self._head_done()
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        # The request line is the client's text: escaped, so it cannot forge lines or drive a terminal.
        log.debug("%s %s", self.address_string(), printable(format % args))

    # One entry point for every method.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("X-Content-Type-Options", "nosniff")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        # Serialised as the api handler does (handlers/api.py _answer): one way to write JSON on this port.
        self._send(
            status,
            json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "backslashreplace"),
            headers,
        )

    def _read_body(self) -> bytes | None:
        """The body, or None after answering 413 (the connection is then closed). Framing is checked before."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            # Don't read a body we refuse; close so the client's remaining bytes go nowhere.
            self.close_connection = True
            self._json(413, {"message": f"body is larger than {MAX_BODY // 1024} KiB"})
            return None
        if not length:
            return b""
        self.deadline.at = time.monotonic() + BODY_SECONDS
        try:
            return self.rfile.read(length)
        finally:
            self._head_done()

    def _dispatch(self) -> None:
        if self.gw.stopping:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already be gone
                self._json(503, {"message": "the local stack is stopping"}, {"Connection": "close"})
            return
        try:
            # Before any route, so every handler (the API, the web app, /_local/..., the console) is covered.
            if self._refused():
                return
            self._route()
        except (TimeoutError, ConnectionError):
            # A client that stalls mid-body (the idle timeout) or hangs up: nobody left to answer.
            self.close_connection = True
        except Exception:
            if self.gw.stopping:  # the stop ended the function that was answering: not an error of the code
                self.close_connection = True
                self._json(503, {"message": "the local stack is stopping"}, {"Connection": "close"})
                return
            log.exception("gateway error on %s %s", self.command, printable(self.path))
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already be gone
                self._json(500, {"message": "Internal server error"})

    def _refused(self) -> bool:
        """Answer and close when the framing is ambiguous or the request comes from another site; True if so."""
        refusal = self._framing_error() or self._site_error()
        if refusal is None:
            return False
        # The body, if any, is left unread: closing keeps its bytes from being taken as a next request.
        self.close_connection = True
        self._json(*refusal)
        return True

    def _framing_error(self) -> tuple[int, dict[str, str]] | None:
        # Only Content-Length frames a body here; any Transfer-Encoding beside it is a smuggling vector.
        if self.headers.get_all("Transfer-Encoding") is not None:
            return 411, {"message": "Transfer-Encoding is not accepted; send the body with a Content-Length"}
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            # Two lengths make the body boundary ambiguous (request smuggling): refuse.
            return 400, {"message": "more than one Content-Length header"}
        # Digits only: int() would also take "+47", " 47", "4_7" and "٤٧".
        if lengths and not (lengths[0].isascii() and lengths[0].isdigit()):
            return 400, {"message": "Content-Length must be digits only"}
        return None

    def _site_error(self) -> tuple[int, dict[str, str]] | None:
        """Another site's request: a foreign Host (DNS rebinding) or, where it changes state, a foreign Origin."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.gw.hosts:
            return 403, {"message": "this local stack answers only requests for its own address (Host header)"}
        origins = self.headers.get_all("Origin")
        if origins is None or (len(origins) == 1 and origins[0].strip().lower() in self.gw.origins):
            return None
        path = self._path(urlsplit(self.path).path) or ""  # decoded: /%5flocal/ is /_local/ too
        local = path.startswith(("/_local/", "/console"))
        # The API routes are guarded by their bearer token and behave as on AWS; everything else local that
        # changes state (POST /_local/..., console actions) accepts only this stack's own pages.
        api = match_resource(self.command, path) is not None
        if local or (self.command not in SAFE_METHODS and not api):
            return 403, {"message": "requests from other sites are refused (Origin header)"}
        return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, oversized headers, unknown method) as JSON too."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self._json(code, {"message": message or HTTPStatus(code).phrase})

    def _path(self, raw: str) -> str | None:
        """The decoded path (UTF-8, percent-escapes resolved, one trailing slash dropped), or None if invalid."""
        try:
            # http.server reads the request line as Latin-1; the bytes on the wire are UTF-8.
            path = unquote(raw.encode("latin-1").decode("utf-8"), errors="strict")
        except (UnicodeError, ValueError):
            return None
        if "\x00" in path:
            return None
        return path.rstrip("/") if len(path) > 1 and path.endswith("/") else path or "/"

    def _fixed(self, path: str, body: bytes) -> bool:
        """Local-only endpoints; True when answered."""
        local: dict[str, Callable[[bytes], None]] = {
            "/healthz": lambda _: self._health(),
            "/config.json": lambda _: self._json(200, {"mode": "local"}, {"Cache-Control": "no-store"}),
            "/_local/stack": lambda _: self._json(200, self.gw.info, {"Cache-Control": "no-store"}),
            "/asyncapi.json": lambda _: self._asyncapi(),
        }
        if path == "/_local/token":
            self._local_token(body)
            return True
        if path not in local:
            return self._local_api(path, body)
        if self.command not in ("GET", "HEAD"):
            self._json(405, {"message": f"method {self.command} not allowed on {path}"}, {"Allow": "GET, HEAD"})
            return True
        local[path](b"")
        return True

    def _asyncapi(self) -> None:
        if self.gw.asyncapi is None:
            self._json(404, {"message": "no AsyncAPI document on this gateway"})
            return
        self._json(200, self.gw.asyncapi(), {"Cache-Control": "no-cache"})

    def _local_api(self, path: str, body: bytes) -> bool:
        if self.gw.local is None:
            return False
        answer = self.gw.local(self.command, path, urlsplit(self.path).query, body)
        if answer is None:
            return False
        self._send(answer.status, answer.body, answer.headers)
        return True

    def _health(self) -> None:
        ok = self.gw.ready()
        self._json(200 if ok else 503, {"status": "ok" if ok else "unavailable"})

    def _route(self) -> None:
        url = urlsplit(self.path)
        path = self._path(url.path)
        if path is None:
            self.close_connection = True
            self._json(400, {"message": "the request path is not valid UTF-8"})
            return
        body = self._read_body()
        if body is None or self._fixed(path, body):
            return
        resource = match_resource(self.command, path)
        if resource is None and self.command in ("GET", "HEAD") and self._static(path):
            return
        self._api(path, url.query, body, resource)

    def _local_token(self, body: bytes) -> None:
        if self.command != "POST":
            self._json(405, {"message": "use POST"}, {"Allow": "POST"})
            return
        try:
            # The API's parser: duplicate keys refused, errors in the same words.
            doc = jsonbody.loads(body.decode("utf-8") if body else "{}")
            if not isinstance(doc, dict):
                raise ValueError('body must be a JSON object like {"sub": "alice"}')
            unknown = sorted(set(doc) - {"sub", "roles"})
            if unknown:
                raise ValueError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(quoted, unknown))}")
            sub = doc.get("sub", "")
            roles = doc.get("roles", list(tokens.ROLES))
            if not isinstance(sub, str):
                raise ValueError('field "sub" must be a string')
            if not isinstance(roles, list):
                raise ValueError('field "roles" must be a list')
            token = tokens.mint(self.gw.jwt_secret, sub.strip(), roles, ttl=3600)
        except ValueError as exc:
            self._json(400, {"message": f"{exc} (this endpoint exists only on the local stack)"})
            return
        self._json(200, {"token": token, "expiresIn": 3600}, {"Cache-Control": "no-store"})

    def _static(self, path: str) -> bool:
        root = self.gw.web_dir
        if root is None:
            return False
        # Never a dotfile or anything in a dot directory (.env, .git/config), as the deploy skips them.
        if any(part.startswith(".") for part in path.split("/")):
            return False
        try:
            target = (root / (path.lstrip("/") or "index.html")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root) or not target.is_file():
                return False
            if any(part.startswith(".") for part in target.relative_to(root).parts):
                return False
        except (OSError, ValueError):
            return False
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        self._send(
            200,
            target.read_bytes(),
            {
                "Content-Type": ctype,
                "Content-Security-Policy": CSP,
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )
        return True

    def _api(self, path: str, query: str, body: bytes, resource: str | None) -> None:
        gw = self.gw
        context: dict[str, Any] = {}
        if resource is not None:
            header = self.headers.get("Authorization")
            if not header:
                self._json(401, {"message": "Unauthorized"})
                return
            method_arn = gw.method_arn(self.command, path)
            answer = gw.authorize(header, method_arn)
            if answer is None:
                self._json(401, {"message": "Unauthorized"})
                return
            allowed, denied = policy_allows(answer.get("policyDocument", {}), method_arn)
            if not allowed:
                reason = "with an explicit deny" if denied else ""
                self._json(403, {"message": f"User is not authorized to access this resource {reason}".strip()})
                return
            context = {**answer.get("context", {}), "principalId": answer.get("principalId")}
        event = self._proxy_event(path, query, body, resource, context)
        ctx = LocalContext(function_name="api", region=gw.region)
        result = gw.api(event, ctx)
        headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
        headers.update(result.get("headers") or {})
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
        self._send(int(result.get("statusCode", 200)), payload, headers)

    def _proxy_event(
        self, path: str, query: str, body: bytes, resource: str | None, authorizer: dict[str, Any]
    ) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True) if query else {}
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for k, v in self.headers.items():
            headers[k] = v
            multi_headers.setdefault(k, []).append(v)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            # API Gateway hands non-text payloads to Lambda base64-encoded.
            text, is_b64 = base64.b64encode(body).decode(), True
        path_params = {"id": path.rsplit("/", 1)[1]} if resource == "/data/{id}" else None
        now = time.time()
        return {
            "resource": resource or "/{proxy+}",
            "path": path,
            "httpMethod": self.command,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource or "/{proxy+}",
                "httpMethod": self.command,
                "path": f"/{STAGE}{path}",
                "stage": STAGE,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(now * 1000),
                "accountId": ACCOUNT_ID,
                "apiId": API_ID,
                "protocol": self.request_version,
                "identity": {"sourceIp": self.client_address[0], "userAgent": self.headers.get("User-Agent")},
                "authorizer": authorizer or None,
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }
