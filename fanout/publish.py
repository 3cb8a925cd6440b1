"""`fanout publish [FILE|-] [--consumer NAME] [--raw]`: a crafted CloudEvent, published on the running local stack.

The event is checked here first (one line naming the problem, nothing sent), then handed to the
stack's operations endpoint (POST /_local/publish), which checks it again and publishes it as the
producers do (the project's publisher: the topic, with the `type` and `subject` message attributes),
or sends it to one consumer's queue only. `--raw` sends the bytes as they are, unchecked, to see how
a consumer handles a poison message.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fanout import localenv

# What the local stack's gateway accepts in one request body.
MAX_BYTES = 64 * 1024


class PublishError(Exception):
    """Why nothing was published; one line."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise PublishError(f"the event has the key {key!r} twice")
        seen[key] = value
    return seen


def check(data: bytes, source: str) -> dict[str, Any]:
    """The CloudEvent in `data`, valid for its type's schema; PublishError naming the problem otherwise."""
    from fanout_kit import events

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PublishError(f"{source} is not UTF-8 text (byte {exc.start})") from None
    try:
        event = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise PublishError(f"{source} is not JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(event, dict):
        raise PublishError(f"{source} must hold one JSON object (a CloudEvent), got {type(event).__name__}")
    try:
        events.validate(event)
    except events.InvalidEvent as exc:
        raise PublishError(f"{source} is not a valid CloudEvent: {exc}") from None
    return event


def read(path: str | None) -> tuple[bytes, str]:
    """(bytes, what to call them in errors) from FILE, or stdin for '-' or no FILE."""
    if path in (None, "-"):
        data, source = sys.stdin.buffer.read(MAX_BYTES + 1), "stdin"
    else:
        try:
            with Path(path).open("rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise PublishError(f"{path}: {exc.strerror or exc}") from None
        source = path
    if len(data) > MAX_BYTES:
        raise PublishError(f"{source} is larger than {MAX_BYTES // 1024} KiB, the most the local stack takes")
    if not data.strip():
        raise PublishError(f"{source} is empty")
    return data, source


def send(api_url: str, data: bytes, consumer: str | None, raw: bool) -> dict[str, Any]:
    query = urlencode({k: v for k, v in (("consumer", consumer), ("raw", "1" if raw else None)) if v})
    request = urllib.request.Request(  # noqa: S310 (the local stack's http://127.0.0.1 URL)
        f"{api_url}/_local/publish" + (f"?{query}" if query else ""),
        data=data,
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message")
        except ValueError:
            message = None
        raise PublishError(message or f"the local stack answered {exc.code}") from None
    except OSError:
        raise PublishError(f"no local stack at {api_url}; start it with `make run`") from None


def cmd_publish(args: argparse.Namespace) -> None:
    data, source = read(args.file)
    if not args.raw:
        check(data, source)
    answer = send(localenv.for_cli().api_url, data, args.consumer, args.raw)
    sys.stdout.write(f"{answer['id']}\n")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "publish",
        help="publish a CloudEvent (JSON, from FILE or stdin) on the running local stack",
        description="Validates the CloudEvent (its type's schema, envelope included) and publishes it as the "
        "producers do: on the topic, with the type and subject message attributes. With --consumer it goes "
        "to that consumer's queue only. --raw sends the bytes unchecked (a poison message). Prints the event id.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="the event's JSON (default, or '-': stdin)")
    p.add_argument("--consumer", metavar="NAME", help="send it to this consumer's queue only")
    p.add_argument("--raw", action="store_true", help="send the bytes as they are, unchecked")
    p.set_defaults(func=cmd_publish)
