"""JSON request bodies parsed strictly, with errors worded for people.

One parser for the API and the local gateway, so both refuse the same documents with the same
words. Duplicate keys are refused (Python keeps the last one silently, other parsers the first:
two parsers that disagree on one document are a known source of security bugs), and so are the
NaN/Infinity constants that are not JSON at all.
"""

from __future__ import annotations

import json
from typing import Any

from fanout_kit.schemas import quoted

__all__ = ["JsonBodyError", "loads", "quoted"]


class JsonBodyError(ValueError):
    """A body that is not the strict JSON we accept; the message is for the client."""


# json's messages, said as a person would.
_MESSAGES = (
    ("Expecting value", "expected a value"),
    ("Expecting property name enclosed in double quotes", "expected a field name in double quotes"),
    ("Expecting ':' delimiter", "expected ':' after a field name"),
    ("Expecting ',' delimiter", "expected ',' or the end of the object or list"),
    ("Extra data", "unexpected text after the JSON value"),
    ("Unterminated string", "a string is not closed"),
    ("Invalid control character", "a control character in a string must be escaped"),
    ("Invalid \\uXXXX escape", "a \\u escape needs four hex digits"),
    ("Invalid \\escape", "a backslash escape is not valid"),
)


def _human(exc: json.JSONDecodeError) -> str:
    for prefix, said in _MESSAGES:
        if exc.msg.startswith(prefix):
            return f"{said} at line {exc.lineno}, column {exc.colno}"
    return f"{exc.msg[:1].lower()}{exc.msg[1:]} at line {exc.lineno}, column {exc.colno}"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise JsonBodyError(f"duplicate field {quoted(key)}: each field may appear once")
        seen[key] = value
    return seen


def _constant(name: str) -> Any:
    raise JsonBodyError(f"body is not valid JSON: {name} is not a JSON value")


def loads(text: str) -> Any:
    """Parse a request body; raises JsonBodyError with a message naming the problem."""
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except RecursionError:
        raise JsonBodyError("body is nested too deeply") from None
    except JsonBodyError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonBodyError(f"body is not valid JSON: {_human(exc)}") from None
    except ValueError:
        # int() refuses numbers of more than 4300 digits (sys.get_int_max_str_digits) with a ValueError.
        raise JsonBodyError("body is not valid JSON: a number has too many digits") from None
