"""Typed results of client calls (frozen dataclasses, no transport types)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ScoreResult:
    """The answer to one inference request.

    ``probability``/``is_fraud`` are a float/bool for a single row (``score([30 floats])``) and
    ``[n]`` arrays for a matrix. ``model_name``/``model_version`` name the model that actually
    scored (an experiment may route to another model than the one addressed); ``route`` is the
    ``x-seldon-route`` header (``:fraud-v2-candidate_1:``) when the server sent one.
    """

    probability: float | np.ndarray
    is_fraud: bool | np.ndarray | None
    model_name: str
    model_version: str
    request_id: str | None
    route: str | None = None
    experiment: str | None = None
    routing_key_hash: str | None = None
    latency_ms: float = 0.0
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def probabilities(self) -> np.ndarray:
        """Always a float32 ``[n]`` array."""
        return np.atleast_1d(np.asarray(self.probability, dtype=np.float32))

    @property
    def decisions(self) -> np.ndarray | None:
        return None if self.is_fraud is None else np.atleast_1d(np.asarray(self.is_fraud, bool))

    @property
    def n(self) -> int:
        return int(self.probabilities.shape[0])


def _iso(value: Any) -> str | float:
    """label_time as the wire wants it: datetimes to ISO-8601 UTC, numbers/strings unchanged."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        return _iso(value.to_pydatetime())
    return value


@dataclass(frozen=True)
class Label:
    """The truth about one transaction. ``label_time``: datetime, ISO text or epoch seconds;
    ``source``: how it became known (``investigation``, ``chargeback`` or ``manual``; None: the
    server's default, ``manual``). The server validates both."""

    transaction_id: str
    is_fraud: bool
    label_time: datetime | str | float
    amount: float | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return label_to_json(self)


def label_to_json(label: Any) -> dict[str, Any]:
    """A `Label`, a ledger ``Label`` or a mapping -> the feedback API's row object."""
    if isinstance(label, Mapping):
        row = dict(label)
        if "label_time" in row:
            row["label_time"] = _iso(row["label_time"])
        return row
    row = {
        "transaction_id": label.transaction_id,
        "is_fraud": bool(label.is_fraud),
        "label_time": _iso(label.label_time),
    }
    amount = getattr(label, "amount", None)
    if amount is not None and not (isinstance(amount, float) and math.isnan(amount)):
        row["amount"] = float(amount)
    source = getattr(label, "source", None)
    if source is not None:
        row["source"] = source
    return row


@dataclass(frozen=True)
class RejectedRow:
    """A label row the server refused: 1-based row number in the batch, field and reason."""

    row: int
    field: str
    message: str
    expected: Any = None
    received: Any = None


@dataclass(frozen=True)
class FeedbackResult:
    """Outcome of `send_labels` (summed over the batches it was sent in).

    The server lists at most the first 100 unknown ids and rejected fields of each batch;
    ``unknown_count`` and ``rejected_count`` are the full counts (never below the lists' lengths).
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    unknown_transaction_ids: tuple[str, ...] = ()
    rejected: tuple[RejectedRow, ...] = ()
    unknown_count: int = 0
    rejected_count: int = 0

    def __post_init__(self) -> None:
        if self.unknown_count < len(self.unknown_transaction_ids):
            object.__setattr__(self, "unknown_count", len(self.unknown_transaction_ids))
        if self.rejected_count < len(self.rejected):
            object.__setattr__(self, "rejected_count", len(self.rejected))

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __add__(self, other: FeedbackResult) -> FeedbackResult:
        return FeedbackResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.unknown_transaction_ids + other.unknown_transaction_ids,
            self.rejected + other.rejected,
            self.unknown_count + other.unknown_count,
            self.rejected_count + other.rejected_count,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], row_offset: int = 0) -> FeedbackResult:
        rejected = tuple(
            RejectedRow(
                row=int(r.get("row", 0)) + row_offset,
                field=str(r.get("field", "")),
                message=str(r.get("message", "")),
                expected=r.get("expected"),
                received=r.get("received"),
            )
            for r in data.get("rejected", []) or []
        )
        unknown = tuple(data.get("unknown_transaction_ids", []) or [])
        return cls(
            inserted=int(data.get("inserted", 0)),
            updated=int(data.get("updated", 0)),
            unchanged=int(data.get("unchanged", 0)),
            unknown_transaction_ids=unknown,
            rejected=rejected,
            unknown_count=int(data.get("unknown_count", len(unknown))),
            rejected_count=int(data.get("rejected_count", len(rejected))),
        )


@dataclass(frozen=True)
class WeightChange:
    """One recorded change of an experiment's weights."""

    at: str
    actor: str
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    generation: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WeightChange:
        generation = data.get("generation")
        return cls(
            at=str(data.get("at", "")),
            actor=str(data.get("actor", "")),
            old=dict(data.get("old") or {}),
            new=dict(data.get("new") or {}),
            generation=None if generation is None else int(generation),
        )


@dataclass(frozen=True)
class ExperimentInfo:
    """`GET /admin/experiments/{name}`: the spec (as its config mapping), generation, history."""

    spec: Mapping[str, Any]
    generation: int
    history: tuple[WeightChange, ...]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def weights(self) -> dict[str, int]:
        return {c["name"]: int(c["weight"]) for c in self.spec.get("candidates", [])}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExperimentInfo:
        return cls(
            spec=dict(data.get("experiment") or {}),
            generation=int(data.get("generation", 0)),
            history=tuple(WeightChange.from_json(h) for h in data.get("history", []) or []),
        )


@dataclass(frozen=True)
class ActionResult:
    """`POST /admin/experiments/{name}/promote|rollback`: the act as done and recorded.

    ``before``/``state``: the serving state (champion, challenger, versions, aliases, weights,
    promoted) before and after, as the server answers it.
    """

    action: str
    experiment: str
    at: str
    actor: str
    reason: str
    before: Mapping[str, Any]
    state: Mapping[str, Any]

    @property
    def weights(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in dict(self.state.get("weights", {})).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionResult:
        return cls(
            action=str(data.get("action", "")),
            experiment=str(data.get("experiment", "")),
            at=str(data.get("at", "")),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
            before=dict(data.get("before") or {}),
            state=dict(data.get("state") or {}),
        )
