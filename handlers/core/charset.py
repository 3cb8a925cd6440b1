"""What every subscriber can carry: SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
#x10000-#x10FFFF in a message, and refuses the whole message otherwise (moto does not check this)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

# The complement of SQS's allowed set, as characters of a Python str (lone surrogates included).
_NOT_SQS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_safe(text: str) -> bool:
    return _NOT_SQS.search(text) is None


def escape_json_for_sqs(document: str) -> str:
    r"""JSON text with every character SQS refuses written as a \uXXXX escape: the same JSON value.

    Only valid on json.dumps output, where such characters can only sit inside strings.
    """
    return _NOT_SQS.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def is_identifier_text(text: str) -> bool:
    """No control character (C0, DEL, C1), no format character (bidi overrides, zero-width), no
    unpaired surrogate, nothing SQS refuses: text that is safe to put in events, logs and terminals."""
    return sqs_safe(text) and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text)


def sqs_json(document: Any) -> str:
    """Compact JSON that every subscriber (SQS above all) can carry: UTF-8 text kept as it is, and
    only the characters SQS refuses (U+FFFE, U+FFFF, unpaired surrogates) written as escapes."""
    return escape_json_for_sqs(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
