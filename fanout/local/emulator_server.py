"""moto's server behind a guard against web pages: `python -m fanout.local.emulator_server HOST PORT`.

moto answers any origin with CORS headers and takes a fake SigV4 header, so without this any site
open in the developer's browser could read and write all local data. SDKs and the AWS CLI never send
`Origin`, and always send the Host they were pointed at; a browser's cross-site request carries an
Origin, and a DNS-rebinding page a foreign Host. Both are refused with 403 and no CORS header, in
front of moto's WSGI app (the same process, no extra hop).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
REFUSAL = b'{"message": "the local AWS endpoint refuses requests from web pages (Origin or Host header)"}'


def guard(app: WsgiApp, port: int) -> WsgiApp:
    # 127.0.0.1, localhost or [::1] with this port: SDKs address S3 path-style on these names.
    own = frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "HTTP_ORIGIN" in environ or environ.get("HTTP_HOST", "").strip().lower() not in own:
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/json"), ("Content-Length", str(len(REFUSAL)))],
            )
            return [REFUSAL]
        return app(environ, start_response)

    return guarded


def main(argv: list[str]) -> None:
    host, port = argv[0], int(argv[1])
    # No CORS headers from moto at all: nothing here is for browsers.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    os.environ.setdefault("MOTO_PORT", str(port))
    import signal

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    # As moto.server.main does: SIGTERM ends the process cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, guard(app, port), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
