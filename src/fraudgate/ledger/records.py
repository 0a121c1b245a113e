"""What the ledger stores and returns: plain dataclasses, no database types.

One per-row decision record, `Decision`; the server, the journal, the writer and the store move
decisions in columns, `DecisionBatch` (one per model per loop tick: no object per row), whose
journal object (`DecisionBatch.to_json` / `from_json`) is the journal's line format.

Times are UTC epoch seconds (floats) everywhere, so records compare and serialise trivially and
SQLite and PostgreSQL store them identically (double precision).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Any, Literal, TypeAlias, TypeVar

import orjson

# the ledger produces the analysis' sufficient statistics; one type for both
from fraudgate.analysis.counts import ConfusionCounts, LatencyHistogram, PairedCounts
from fraudgate.protocol.limits import (  # noqa: F401  (the label sources: re-exported)
    DEFAULT_LABEL_SOURCE,
    LABEL_SOURCES,
    MAX_QUOTED_CHARS,
    preview,
)
from fraudgate.weights import WeightChange  # noqa: F401  (one type, shared with experiments)

Role = Literal["served", "mirror"]
ROLES: tuple[str, ...] = ("served", "mirror")


@dataclass(frozen=True, slots=True)
class Decision:
    """One model's verdict on one transaction.

    ``role`` is ``"served"`` for the model whose answer went back to the caller and ``"mirror"``
    for a shadow model that scored a copy of the request. ``routing_key_hash`` is a hash of the
    card/customer id the router used (never the raw key). ``event_time`` is when the transaction
    happened (the analysis' clock: label maturity and days count from it); None means the
    decision time (the store records ``decided_at`` then).
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
    event_time: float | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Decision.role: expected one of {ROLES}, received {self.role!r}")


DECISION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Decision))
# Fields a journal line may lack (written before they existed): read as None.
OPTIONAL_JOURNAL_FIELDS: tuple[str, ...] = ("event_time",)
MIRROR_KEY = "mirror"  # a batch's mirror entries, in its journal object

_T = TypeVar("_T")
# A column of a `DecisionBatch`: one value per row (a list or tuple of n), or one value shared by
# every row of the batch (the model, the role, the decision time).
Column: TypeAlias = list[_T] | tuple[_T, ...] | _T


@dataclass(frozen=True, slots=True)
class MirrorModel:
    """What a shipper needs to load and score exactly the model a server deployed as a mirror.

    ``uri`` pins the registry version (``models:/<name>/<version>``), so a moved alias does not
    change what scores the copies; ``runtime`` is the runtime kind the server used, ``version``
    the serving version it reported."""

    name: str
    version: str
    uri: str
    tracking_uri: str
    runtime: str
    threshold: float
    # its journal object, serialised once: a server journals the same model every tick
    _json: orjson.Fragment = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        data = {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "tracking_uri": self.tracking_uri,
            "runtime": self.runtime,
            "threshold": self.threshold,
        }
        object.__setattr__(self, "_json", orjson.Fragment(orjson.dumps(data)))

    def to_json(self) -> orjson.Fragment:
        """The model's journal object (pre-serialised JSON that orjson embeds as is)."""
        return self._json

    @classmethod
    def from_json(cls, data: object) -> MirrorModel:
        """A journaled mirror model; ValueError (naming the field) if it is malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"mirror.model: expected an object, received {preview(data)}")
        for name in _MIRROR_MODEL_TEXT:
            value = data.get(name)
            if not isinstance(value, str):
                raise ValueError(f"mirror.model.{name}: expected a string, received {value!r}")
        threshold = data.get("threshold")
        if not isinstance(threshold, int | float) or isinstance(threshold, bool):
            raise ValueError(f"mirror.model.threshold: expected a number, received {threshold!r}")
        return cls(
            name=data["name"],
            version=data["version"],
            uri=data["uri"],
            tracking_uri=data["tracking_uri"],
            runtime=data["runtime"],
            threshold=float(threshold),
        )


_MIRROR_MODEL_TEXT = ("name", "version", "uri", "tracking_uri", "runtime")


@dataclass(slots=True)
class MirrorEntry:
    """Mirror copies of some rows of a served batch, journaled for the shipper to score.

    ``rows``: indices into the batch (None: every row); ``x``: their features, a base64
    little-endian FP32 matrix of ``n_features`` columns (see `fraudgate.ledger.mirror`)."""

    model: MirrorModel
    rows: list[int] | None
    n_features: int
    x: str

    def copies(self, n: int) -> int:
        """How many copies this entry holds in a batch of ``n`` rows."""
        return n if self.rows is None else len(self.rows)

    def to_json(self) -> dict[str, Any]:
        """The entry's journal object: ``{"model": {...}, "rows", "n_features", "x"}``."""
        return {
            "model": self.model.to_json(),
            "rows": self.rows,
            "n_features": self.n_features,
            "x": self.x,
        }

    @classmethod
    def from_json(cls, data: object) -> MirrorEntry:
        """A journaled mirror entry; ValueError (naming the field) if it is malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"mirror: expected an object, received {preview(data)}")
        rows = data.get("rows")
        if rows is not None and not (
            isinstance(rows, list) and all(type(row) is int for row in rows)
        ):
            raise ValueError(f"mirror.rows: expected null or row indices, received {preview(rows)}")
        n_features = data.get("n_features")
        if type(n_features) is not int or n_features < 1:
            raise ValueError(f"mirror.n_features: expected an int >= 1, received {n_features!r}")
        x = data.get("x")
        if not isinstance(x, str):
            raise ValueError(f"mirror.x: expected a base64 string, received {preview(x)}")
        return cls(MirrorModel.from_json(data.get("model")), rows, n_features, x)


@dataclass(slots=True)
class DecisionBatch:
    """The decisions of one model's runtime call, in columns: what the server builds per loop
    tick, the journal holds (one JSON object per batch) and the store inserts.

    Each decision field is a `Column`: a list (or tuple) of ``n``, one per row, or a single
    value shared by every row. Columns cost the hot path a list append per value instead of an
    object per row. ``mirror``: the features of the rows copied to mirror models, for the
    shipper to score (served batches journaled with ``acknowledge: journal`` only).
    ``event_time``: the transactions' event times (the request parameter ``event_time``);
    None (or a None row) means the decision time, so a journal line without it reads as
    ``decided_at``.
    """

    n: int
    request_id: Column[str]
    transaction_id: Column[str]
    decided_at: Column[float]
    experiment: Column[str | None]
    arm: Column[str | None]
    role: Column[Role]
    model_name: Column[str]
    model_version: Column[str]
    score: Column[float]
    threshold: Column[float]
    is_fraud_decision: Column[bool]
    latency_ms: Column[float]
    amount: Column[float | None] = None
    routing_key_hash: Column[str | None] = None
    event_time: Column[float | None] = None
    mirror: Sequence[MirrorEntry] = ()

    @classmethod
    def of(cls, decisions: Sequence[Decision]) -> DecisionBatch:
        """The batch of ``decisions`` (every field a tuple of one value per decision)."""
        if not decisions:
            return cls(0, *([()] * len(DECISION_FIELDS)))
        batch = cls(len(decisions), *zip(*map(_decision_fields, decisions), strict=True))
        if all(e is None for e in batch.event_time):  # type: ignore[union-attr]
            batch.event_time = None  # the decision time (and the journal line stays as it was)
        return batch

    def columns(self) -> tuple[Any, ...]:
        """The decision fields' columns, in DECISION_FIELDS order."""
        return _decision_fields(self)

    def decisions(self) -> list[Decision]:
        """The batch's rows as `Decision` records."""
        n = self.n
        columns = [v if isinstance(v, list | tuple) else repeat(v, n) for v in self.columns()]
        return [Decision(*values) for values in zip(*columns, strict=True)]

    def mirror_copies(self) -> int:
        """How many mirror copies the batch's mirror entries hold."""
        return sum(entry.copies(self.n) for entry in self.mirror)

    def to_json(self) -> dict[str, Any]:
        """The batch's journal object: ``{"n": rows, field: column, ..., "mirror": [entries]}``
        (``"mirror"`` only when there are entries)."""
        data: dict[str, Any] = {
            "n": self.n,
            "request_id": self.request_id,
            "transaction_id": self.transaction_id,
            "decided_at": self.decided_at,
            "experiment": self.experiment,
            "arm": self.arm,
            "role": self.role,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "score": self.score,
            "threshold": self.threshold,
            "is_fraud_decision": self.is_fraud_decision,
            "latency_ms": self.latency_ms,
            "amount": self.amount,
            "routing_key_hash": self.routing_key_hash,
        }
        if self.event_time is not None:  # absent = the decision time (older lines lack it)
            data["event_time"] = self.event_time
        if self.mirror:
            data[MIRROR_KEY] = [entry.to_json() for entry in self.mirror]
        return data

    @classmethod
    def from_json(
        cls,
        data: object,
        on_bad_mirror: Callable[[object, ValueError], None] | None = None,
    ) -> DecisionBatch:
        """A batch from its journal object; ValueError (naming the field) if it is malformed.

        A malformed mirror entry raises too, unless ``on_bad_mirror(entry, error)`` is given:
        then the entry is dropped and reported to it (the shipper still ships the served rows).
        """
        n = data.get("n") if isinstance(data, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"batch.n: expected a row count, received {n!r}")
        assert isinstance(data, dict)
        columns: list[Any] = []
        for name in DECISION_FIELDS:
            if name not in data:
                if name in OPTIONAL_JOURNAL_FIELDS:
                    columns.append(None)
                    continue
                raise ValueError(f"batch.{name}: missing")
            value = data[name]
            if isinstance(value, list | tuple) and len(value) != n:
                raise ValueError(f"batch.{name}: expected {n} values, received {len(value)}")
            columns.append(value)
        batch = cls(n, *columns)
        raw = data.get(MIRROR_KEY)
        if raw:
            entries: list[MirrorEntry] = []
            for item in raw if isinstance(raw, list) else [raw]:
                try:
                    entries.append(MirrorEntry.from_json(item))
                except ValueError as exc:
                    if on_bad_mirror is None:
                        raise
                    on_bad_mirror(item, exc)
            batch.mirror = entries
        return batch


# the decision fields of a Decision (its values) or of a DecisionBatch (its columns), in C
_decision_fields: Callable[[Decision | DecisionBatch], tuple[Any, ...]] = operator.attrgetter(
    *DECISION_FIELDS
)


@dataclass(frozen=True, slots=True)
class Label:
    """The truth about one transaction, known days later.

    ``label_time`` is when the label became known (``known_at``: the analysis as of T counts
    only labels with ``label_time <= T``); ``source`` says how: ``investigation`` (an alert
    was checked), ``chargeback`` (a missed fraud came back) or ``manual``.
    """

    transaction_id: str
    is_fraud: bool
    label_time: float
    amount: float | None = None
    source: str = DEFAULT_LABEL_SOURCE

    def __post_init__(self) -> None:
        if self.source not in LABEL_SOURCES:
            raise ValueError(
                f"Label.source: expected one of {LABEL_SOURCES}, received {self.source!r}"
            )

    @property
    def known_at(self) -> float:
        """When the label became known (epoch seconds): ``label_time``."""
        return self.label_time


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
class ExperimentAction:
    """One recorded act on an experiment: a promotion, a rollback, a rollout step.

    ``action``: ``promote`` | ``rollback`` | ``rollout_start`` | ``rollout_step`` |
    ``rollout_end``. ``detail`` holds what the act left behind (the serving state: champion,
    aliases, weights; a rollout's step) and the evaluation it was based on, as JSON.
    """

    experiment: str
    at: float
    actor: str
    action: str
    reason: str
    detail: dict[str, Any] = field(hash=False)
    id: int = 0


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """A rollout as the ledger holds it: its plan and the step it is at (see ``rollouts``).

    ``step`` is the index of the step in force (-1: started, no step applied yet); ``baseline``
    the counters read when that step began (the controller's, to measure the step alone).
    """

    id: int
    experiment: str
    actor: str
    status: str  # running | promoted | rolled_back | stopped
    plan: dict[str, Any] = field(hash=False)
    step: int
    step_started_at: float
    baseline: dict[str, Any] = field(hash=False)
    started_at: float
    updated_at: float


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


# -- the evaluation's counts (LedgerStore.experiment_counts): sums that add together ----------

SECONDS_PER_DAY = 86_400.0


def _merge_days(a: Sequence[Any], b: Sequence[Any]) -> tuple[Any, ...]:
    """Per-day records of two windows or replicas, added where they share a day, by day."""
    merged: dict[int, Any] = {row.day: row for row in a}
    for row in b:
        merged[row.day] = merged[row.day] + row if row.day in merged else row
    return tuple(merged[day] for day in sorted(merged))


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One arm's confusion counts of the transactions whose event time falls on ``day``
    (UTC days since the epoch: ``event_time // 86400``); ``unlabelled`` are the pending ones."""

    day: int
    counts: ConfusionCounts

    def __add__(self, other: DayCounts) -> DayCounts:
        if not isinstance(other, DayCounts) or other.day != self.day:
            return NotImplemented
        return DayCounts(self.day, self.counts + other.counts)


@dataclass(frozen=True, slots=True)
class PairedDay:
    """The paired counts of the transactions whose event time falls on ``day``."""

    day: int
    counts: PairedCounts

    def __add__(self, other: PairedDay) -> PairedDay:
        if not isinstance(other, PairedDay) or other.day != self.day:
            return NotImplemented
        return PairedDay(self.day, self.counts + other.counts)


@dataclass(frozen=True, slots=True)
class ArmCounts:
    """One arm's served decisions, counted in the database (see ``experiment_counts``).

    ``counts``: one per transaction, labels as of T, unlabelled transactions older than the
    maturity window counted as legitimate, younger ones ``unlabelled`` (pending). ``units``:
    distinct randomisation units (routing key hashes; the SRM's sample): added across windows
    it counts a unit once per window, so merge only disjoint replicas' or pass the whole
    window. ``latency``: every served decision's latency. ``first_event`` / ``last_event``:
    the window's event-time range (inf / -inf when empty).
    """

    arm: str
    counts: ConfusionCounts = ConfusionCounts()
    units: int = 0
    latency: LatencyHistogram = LatencyHistogram()
    by_day: tuple[DayCounts, ...] = ()
    first_event: float = math.inf
    last_event: float = -math.inf

    def __add__(self, other: ArmCounts) -> ArmCounts:
        if not isinstance(other, ArmCounts) or other.arm != self.arm:
            return NotImplemented
        return ArmCounts(
            self.arm,
            self.counts + other.counts,
            self.units + other.units,
            self.latency + other.latency,
            _merge_days(self.by_day, other.by_day),
            min(self.first_event, other.first_event),
            max(self.last_event, other.last_event),
        )


@dataclass(frozen=True, slots=True)
class ExperimentCounts:
    """Everything the evaluation reads from the ledger for one experiment, window and as-of T.

    ``arms``: per arm (served decisions), by arm name. ``paired``: the transactions that both
    ``champion`` (a) and ``challenger`` (b) scored, served or mirrored, split fraud / legit /
    pending by the same rules as the arms; ``paired_by_day`` the same per event day. Adds
    with ``+`` across windows and replicas of one experiment at one as-of time.
    """

    experiment: str
    champion: str
    challenger: str
    as_of: float
    maturity_s: float
    arms: tuple[ArmCounts, ...] = ()
    paired: PairedCounts = PairedCounts()
    paired_by_day: tuple[PairedDay, ...] = ()

    def arm(self, name: str) -> ArmCounts:
        """The arm's counts (empty counts when it has no decisions in the window)."""
        for arm in self.arms:
            if arm.arm == name:
                return arm
        return ArmCounts(name)

    def __add__(self, other: ExperimentCounts) -> ExperimentCounts:
        if not isinstance(other, ExperimentCounts):
            return NotImplemented
        mine = (self.experiment, self.champion, self.challenger, self.as_of, self.maturity_s)
        theirs = (other.experiment, other.champion, other.challenger, other.as_of)
        if mine[:4] != theirs or self.maturity_s != other.maturity_s:
            raise ValueError(
                "ExperimentCounts: expected the same experiment, champion, challenger, as_of "
                f"and maturity to add, received {mine} and {(*theirs, other.maturity_s)}"
            )
        arms = {arm.arm: arm for arm in self.arms}
        for arm in other.arms:
            arms[arm.arm] = arms[arm.arm] + arm if arm.arm in arms else arm
        return ExperimentCounts(
            *mine,
            arms=tuple(arms[name] for name in sorted(arms)),
            paired=self.paired + other.paired,
            paired_by_day=_merge_days(self.paired_by_day, other.paired_by_day),
        )
