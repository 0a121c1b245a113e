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
MAX_MODEL_NAME_CHARS = 128  # see MODEL_NAME
MAX_QUOTED_CHARS = 200  # how much of a received value an error message quotes

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# The one rule for model names, shared by the config (models[].name), the experiment spec
# (experiment, candidate and mirror names) and models loaded by name at run time. It is the
# config's long-standing rule, a superset of the Kubernetes DNS-1123 labels the experiment spec
# used to demand, so every config that was valid stays valid.
MODEL_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_MODEL_NAME_CHARS - 1}}}$")
MODEL_NAME_RULE = (
    f"letters, digits, '.', '_' or '-' (at most {MAX_MODEL_NAME_CHARS}, starting with a letter "
    "or digit)"
)
# How a label became known (a label's ``source``): the feedback API, the ledger and the client
# accept exactly these.
LABEL_SOURCES: tuple[str, ...] = ("investigation", "chargeback", "manual")
DEFAULT_LABEL_SOURCE = "manual"
# ``<name>_<digits>`` addresses one version of ``<name>`` (Seldon's convention, e.g.
# ``fraud-v1-baseline_1``); `split_versioned_name` reads it.
_VERSIONED = re.compile(r"^(?P<name>.+)_(?P<version>[0-9]+)$")


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


def model_name_problem(value: Any) -> str | None:
    """Why ``value`` is not a model name under `MODEL_NAME` (None when it is one)."""
    if isinstance(value, str) and MODEL_NAME.match(value):
        return None
    return f"expected {MODEL_NAME_RULE}, received {preview(value)}"


def split_versioned_name(requested: str) -> tuple[str, str | None]:
    """``"fraud-v1-baseline_1"`` -> ``("fraud-v1-baseline", "1")``; other names -> ``(name, None)``.

    A ``_<digits>`` suffix is a version when what precedes it is a model name. Names that end in
    such a suffix may still be served (a config may have one); an experiment refuses them as its
    own names, so a request its router sees is never ambiguous.
    """
    match = _VERSIONED.match(requested)
    if match and MODEL_NAME.match(match["name"]):
        return match["name"], match["version"]
    return requested, None
