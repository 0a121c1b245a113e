"""What the ledger stores and returns: plain frozen dataclasses, no database types.

Times are UTC epoch seconds (floats) everywhere, so records compare and serialise trivially and
SQLite and PostgreSQL store them identically (double precision).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal

# the ledger produces the analysis' sufficient statistics; one type for both
from fraudgate.analysis.counts import ConfusionCounts  # noqa: F401
from fraudgate.protocol.limits import MAX_QUOTED_CHARS, preview

Role = Literal["served", "mirror"]
ROLES: tuple[str, ...] = ("served", "mirror")


@dataclass(frozen=True, slots=True)
class Decision:
    """One model's verdict on one transaction.

    ``role`` is ``"served"`` for the model whose answer went back to the caller and ``"mirror"``
    for a shadow model that scored a copy of the request. ``routing_key_hash`` is a hash of the
    card/customer id the router used (never the raw key).
    """

    request_id: str
    transaction_id: str
    decided_at: float
    experiment: str | None
    arm: str | None
    role: Role
    model_name: str
    model_version: str
    score: float
    threshold: float
    is_fraud_decision: bool
    latency_ms: float
    amount: float | None = None
    routing_key_hash: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Decision.role: expected one of {ROLES}, received {self.role!r}")


# A decision as the writer and the store move it: a plain tuple of the Decision's fields, in
# DECISION_FIELDS order. The server builds these directly on its hot path (no object per row);
# `decision_row` turns a Decision into one.
DecisionRow = tuple[Any, ...]
DECISION_FIELDS: tuple[str, ...] = tuple(Decision.__slots__)  # type: ignore[attr-defined]
decision_row: Callable[[Decision], DecisionRow] = operator.attrgetter(*DECISION_FIELDS)

# A batch of decisions in columns, as the server builds them per loop tick and the journal holds
# them: ``{"n": rows, field: value, ...}`` for every DECISION_FIELDS field, where a value is
# either a list (or tuple) of n, one per row, or a single value shared by every row (the model,
# the role, the decision time of the batch). Columns cost the hot path a list append per value
# instead of a tuple per row.
DecisionBatch = dict[str, Any]


def batch_rows(batch: DecisionBatch) -> list[DecisionRow]:
    """The rows of a decision batch; ValueError (naming the field) if it is malformed."""
    n = batch.get("n") if isinstance(batch, dict) else None
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"batch.n: expected a row count, received {n!r}")
    columns: list[Any] = []
    for name in DECISION_FIELDS:
        if name not in batch:
            raise ValueError(f"batch.{name}: missing")
        value = batch[name]
        if isinstance(value, list | tuple):
            if len(value) != n:
                raise ValueError(f"batch.{name}: expected {n} values, received {len(value)}")
            columns.append(value)
        else:
            columns.append(repeat(value, n))
    return list(zip(*columns, strict=False))  # the repeats are endless, the lists have n


def rows_batch(rows: Sequence[DecisionRow]) -> DecisionBatch:
    """A decision batch of ``rows`` (every field a list): the inverse of `batch_rows`."""
    batch: DecisionBatch = {"n": len(rows)}
    for index, name in enumerate(DECISION_FIELDS):
        batch[name] = [row[index] for row in rows]
    return batch


@dataclass(frozen=True, slots=True)
class Label:
    """The truth about one transaction, known days later (chargeback, investigation)."""

    transaction_id: str
    is_fraud: bool
    label_time: float
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class LabelResult:
    """Outcome of one ``upsert_labels`` call.

    ``inserted + updated + unchanged`` equals the number of labels sent. Labels whose transaction
    has no recorded decision are stored anyway (they are counted in ``inserted``/``updated``) and
    their ids are also listed in ``unknown_transaction_ids``, so the caller can tell the sender.
    """

    inserted: int
    updated: int
    unchanged: int
    unknown_transaction_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelChange:
    """One audited change of an existing label (old value -> new value, when, by whom)."""

    transaction_id: str
    old: Label
    new: Label
    changed_at: float
    actor: str


@dataclass(frozen=True, slots=True)
class WeightChange:
    """One live change of an experiment's traffic weights."""

    experiment: str
    weights: dict[str, float] = field(hash=False)
    actor: str
    at: float


@dataclass(frozen=True, slots=True)
class AdminAction:
    """One audited model-management action: a load (reload, threshold change) or an unload.

    ``detail`` says what changed, e.g. ``{"uri": ..., "threshold": {"old": .., "new": ..},
    "version": {"old": .., "new": ..}, "mlflow_version": ..}``.
    """

    at: float
    actor: str
    action: str  # "load" | "unload"
    model: str
    detail: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """Confusion counts of one (model_name, model_version, role)."""

    model_name: str
    model_version: str
    role: Role
    counts: ConfusionCounts


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row of a label batch or file was rejected.

    ``row`` is the 1-based data row (the header of a CSV file is not counted). One row may produce
    several errors, one per bad field.
    """

    row: int
    field: str
    expected: str
    received: object

    def __str__(self) -> str:
        return (
            f"row {self.row}: {self.field}: expected {self.expected}, "
            f"received {preview(self.received)}"
        )

    def to_dict(self) -> dict[str, object]:
        received = self.received
        if not isinstance(received, str | int | float | bool | type(None)):
            received = repr(received)
        if isinstance(received, str) and len(received) > MAX_QUOTED_CHARS:
            received = preview(received)  # an answer never echoes a huge input back
        return {
            "row": self.row,
            "field": self.field,
            "expected": self.expected,
            "received": received,
            "message": str(self),
        }
