"""The bounds every caller-sent text meets (fraudgate.protocol.limits)."""

from __future__ import annotations

import pytest

from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.limits import (
    MAX_ACTOR_CHARS,
    MAX_ID_CHARS,
    MAX_QUOTED_CHARS,
    check_actor,
    check_id,
    preview,
    text_problem,
)


@pytest.mark.parametrize("value", ["tx-1", "ü€😀 card", "x" * MAX_ID_CHARS, 42])
def test_acceptable_ids_pass(value: object) -> None:
    assert check_id(value, "id") == str(value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("x" * (MAX_ID_CHARS + 1), f"expected at most {MAX_ID_CHARS} characters, received 201"),
        ("a\x00b", "U+0000 at position 1"),
        ("tab\there", "U+0009 at position 3"),
        ("del\x7f", "U+007F"),
        ("c1\x85", "U+0085"),
        ("lone\ud800", "U+D800"),
        ("", "non-empty"),
        ("   ", "non-empty"),
        (None, "expected a string, received NoneType"),
        (True, "expected a string, received bool"),
        (1.5, "expected a string, received float"),
    ],
)
def test_bad_ids_name_the_field_and_the_problem(value: object, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_id(value, "parameters.transaction_id")
    assert caught.value.message.startswith("parameters.transaction_id: ")
    assert problem in caught.value.message


def test_actor_bound() -> None:
    assert check_actor("alice") == "alice"
    assert text_problem("a" * (MAX_ACTOR_CHARS + 1), MAX_ACTOR_CHARS) is not None
    with pytest.raises(InvalidInput, match="actor: expected at most 100 characters"):
        check_actor("a" * 100_000)


def test_preview_quotes_at_most_the_bound_and_says_the_length() -> None:
    assert preview("short") == "'short'"
    long = preview("n" * 100_000)
    assert len(long) < MAX_QUOTED_CHARS + 40
    assert long.endswith("... (100000 characters)")
    assert len(preview(list(range(10_000)))) == MAX_QUOTED_CHARS
