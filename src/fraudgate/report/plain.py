"""Records as JSON-ready values: what ``report.json`` and the dashboard's API both send.

Stdlib only (no rich, no numpy), so the server can use it without loading the terminal renderer.
"""

from __future__ import annotations

import enum
import math
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any


def plain(value: Any) -> Any:
    """JSON-ready: dataclasses by field, enums by value, tuples as lists, nan/inf as null."""
    if isinstance(value, enum.Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def iso(epoch: float | None) -> str | None:
    """UTC epoch seconds as ISO-8601 (``...Z``); None for None or a non-finite time."""
    if epoch is None or not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
