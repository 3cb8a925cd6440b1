"""Text shown to a person (terminal output, log lines): control characters made visible.

A message field holding `\\x1b]0;owned\\x07` would otherwise retitle or clear the user's terminal, and
a raw newline in a logged path would forge a log line. Printable text, tabs included, passes unchanged.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

# Cc, Cf, Cs, Zl, Zp: controls (C0, DEL, C1), format characters (bidi overrides, zero-width...),
# surrogates, line and paragraph separators. Tab is a control but harmless; it is kept.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(value: Any) -> str:
    """str(value) with every control, format (bidi overrides...) or surrogate character escaped."""
    text = value if isinstance(value, str) else str(value)
    return _sub(text, _escape)


def _sub(text: str, escape: Callable[[str], str], keep: str = "\t") -> str:
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(escape(ch) if ch not in keep and unicodedata.category(ch) in _UNSAFE else ch for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable_json(document: Any, *, indent: int | None = None) -> str:
    """json.dumps for a terminal: the same JSON value, UTF-8 text readable, unsafe characters as \\u escapes."""
    # Valid JSON still: json.dumps already escapes C0 controls inside strings, so a raw newline is
    # indentation, and the characters left to escape can only sit inside strings.
    return _sub(json.dumps(document, ensure_ascii=False, indent=indent), _json_escape, keep="\t\n")


def plural(count: int, word: str) -> str:
    """'1 message', '2 messages': a count with its noun, for what a person reads."""
    return f"{count} {word}{'' if count == 1 else 's'}"
