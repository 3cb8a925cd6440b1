"""A cursor verifies only for the user it was issued to, even when a sub holds the separator: the
signed input is length-prefixed, so no other (user, payload) split signs the same bytes."""

from __future__ import annotations

import pytest

from handlers.core import cursor

KEY = b"k" * 32
LAST = "01JB8ZJ9R7Y1V6Q2K3M4N5P6Q7"


def test_cursor_cannot_be_resplit_onto_another_user() -> None:
    # With `user\0payload` signed, the cursor of sub "alice\0X" is also a valid MAC for "alice" with the
    # payload "X\0..." . "ICAg" is base64 for three spaces, which JSON ignores; base64 decoding skips the
    # NUL and the "!", which are there to make the padding come out right.
    other = "alice\x00ICAg!!!"
    issued = cursor.encode(KEY, other, LAST)
    assert cursor.decode(KEY, other, issued) == LAST
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(KEY, "alice", "ICAg!!!\x00" + issued)


@pytest.mark.parametrize(("owner", "caller"), [("alice", "alice\x00"), ("a\x00b", "a"), ("bob", "bo")])
def test_cursor_is_refused_for_any_other_user(owner: str, caller: str) -> None:
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(KEY, caller, cursor.encode(KEY, owner, LAST))
