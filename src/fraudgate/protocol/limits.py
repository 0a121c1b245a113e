"""The bounds on every text a caller sends, in one place, for every transport and for the ledger.

Why one module: a value the server accepts must also be one the ledger can store (PostgreSQL
refuses NUL characters and strings longer than a column), else one request can stop the shipper.
So the serving core checks ids, routing keys and actors here before answering, and the ledger
checks labels and admin actors with the same functions.

Bounds (characters): ids (request id, transaction id) and routing keys 200, actors 100, reasons
500. Allowed characters: any printable Unicode; no control characters (C0, DEL, C1) and no lone
surrogates (they cannot be encoded as UTF-8). Error messages quote a received value at most
`MAX_QUOTED_CHARS` characters (`preview`), so an error can never echo a huge input back.
"""

from __future__ import annotations

import re
from typing import Any

from fraudgate.protocol.errors import InvalidInput

MAX_ID_CHARS = 200  # request ids, transaction ids (the ledger's String(200) columns)
MAX_ROUTING_KEY_CHARS = 200
MAX_ACTOR_CHARS = 100
MAX_REASON_CHARS = 500
MAX_MODEL_NAME_CHARS = 128  # the config's model-name rule
MAX_QUOTED_CHARS = 200  # how much of a received value an error message quotes

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def preview(value: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length said when cut."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str | bytes) else ""
    return text[: max(limit - 3, 0)] + "..." + size


def text_problem(value: Any, max_chars: int) -> str | None:
    """Why ``value`` is not an acceptable text of at most ``max_chars`` characters (or None)."""
    if not isinstance(value, str):
        return f"expected a string, received {type(value).__name__}"
    if not value.strip():
        return "expected a non-empty string, received an empty one"
    if len(value) > max_chars:
        return f"expected at most {max_chars} characters, received {len(value)}"
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        return (
            "expected printable characters (no control characters), received "
            f"U+{ord(bad.group()):04X} at position {bad.start()}"
        )
    return None


def check_text(value: Any, where: str, max_chars: int) -> str:
    """``value`` if it is an acceptable text, else InvalidInput naming ``where``."""
    problem = text_problem(value, max_chars)
    if problem is not None:
        raise InvalidInput(f"{where}: {problem}")
    return value


def check_id(value: Any, where: str) -> str:
    """A request or transaction id: an integer (turned into its string) or a bounded text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return check_text(value, where, MAX_ID_CHARS)


def check_actor(value: Any, where: str = "actor") -> str:
    return check_text(value, where, MAX_ACTOR_CHARS)


def check_reason(value: Any, where: str = "reason") -> str:
    return check_text(value, where, MAX_REASON_CHARS)
