"""fanout.text: what the CLI prints and the gateway logs for a person cannot drive a terminal, and
JSON output stays the same JSON value."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanout.text import printable, printable_json

DANGEROUS = ("\x1b", "\x07", "\x00", "\r", "\n", "\x7f", "\x9b", "\u202e", "\u2028", "\u200b", "\ud800", "\U000e0001")


@pytest.mark.parametrize("ch", DANGEROUS)
def test_printable_escapes_terminal_controls(ch: str) -> None:
    out = printable(f"a{ch}b")
    assert ch not in out and out.startswith("a") and out.endswith("b"), ascii(out)


def test_printable_keeps_readable_text() -> None:
    text = "Zoë 用户 🙂 tab\there, plain ascii"
    assert printable(text) == text
    assert printable("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07"


@given(st.text())
def test_printable_json_is_the_same_json_with_nothing_unsafe(text: str) -> None:
    out = printable_json({"k": text, "list": [text]}, indent=2)
    assert json.loads(out) == {"k": text, "list": [text]}
    unsafe = [ch for ch in out if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
    assert not unsafe, ascii(out)


@given(st.text())
def test_printable_leaves_nothing_unsafe(text: str) -> None:
    unsafe = [ch for ch in printable(text) if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
    assert not unsafe
