"""The analysis' sufficient statistics: counts that add together, stdlib only.

The ledger produces these and the server exports them, so this module imports nothing heavy:
the statistics over them (`fraudgate.analysis.classification`, `.proportions`, `.compare`, ...)
import scipy/statsmodels. Every record here is frozen and adds with ``+``, so replicas, time
windows and batches merge without rows (GrowthBook's sufficient-statistics habit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

_Counts = TypeVar("_Counts", bound=Any)


def _add_fields(a: _Counts, b: _Counts) -> _Counts:
    """Field-wise sum of two records of one counts type (they merge without rows)."""
    return type(a)(*(getattr(a, f.name) + getattr(b, f.name) for f in fields(a)))


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class ConfusionCounts:
    """Sufficient statistics of one model's decisions against the labels (positive = fraud).

    Counts add together (``a + b``) so replicas, time windows and batches merge without rows.
    ``unlabelled`` decisions have no label yet (``unlabelled_flagged`` of them were flagged);
    the ``*_amount`` fields sum transaction amounts per cell for business-impact estimates and
    the ``*_amount_sq`` fields sum squared amounts, the second moments that intervals on
    amount-weighted metrics (value detection rate, cost) need.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unlabelled: int = 0
    unlabelled_flagged: int = 0
    tp_amount: float = 0.0
    fp_amount: float = 0.0
    fn_amount: float = 0.0
    tn_amount: float = 0.0
    tp_amount_sq: float = 0.0
    fp_amount_sq: float = 0.0
    fn_amount_sq: float = 0.0
    tn_amount_sq: float = 0.0

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        if not isinstance(other, ConfusionCounts):
            return NotImplemented
        return _add_fields(self, other)

    @property
    def frauds(self) -> int:
        """Labelled frauds (the recall's denominator)."""
        return self.tp + self.fn

    @property
    def alerts(self) -> int:
        """Every flagged decision, labelled or not: the alert rate needs no labels."""
        return self.tp + self.fp + self.unlabelled_flagged

    @property
    def alert_rate(self) -> float:
        return self.alerts / self.total if self.total else float("nan")

    @property
    def labelled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def total(self) -> int:
        return self.labelled + self.unlabelled

    @property
    def precision(self) -> float:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else float("nan")

    @property
    def recall(self) -> float:
        positives = self.tp + self.fn
        return self.tp / positives if positives else float("nan")

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else float("nan")

    def precision_interval(self, alpha: float = 0.05) -> Interval:
        """Wilson interval of the precision (imports the statistics only when asked)."""
        from fraudgate.analysis.proportions import proportion_interval

        return proportion_interval(self.tp, self.tp + self.fp, alpha)

    def recall_interval(self, alpha: float = 0.05) -> Interval:
        """Wilson interval of the recall."""
        from fraudgate.analysis.proportions import proportion_interval

        return proportion_interval(self.tp, self.tp + self.fn, alpha)

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


_CELLS = ("both", "only_a", "only_b", "neither")  # PairedTable's cells, in field order


@dataclass(frozen=True, slots=True)
class PairedTable:
    """Two models' decisions on the same transactions: who flagged what (a = champion).

    The four cells of the paired 2x2 table; ``*_amount`` and ``*_amount_sq`` sum the
    transactions' amounts and squared amounts per cell (for amount-weighted paired metrics).
    """

    both: int = 0
    only_a: int = 0
    only_b: int = 0
    neither: int = 0
    both_amount: float = 0.0
    only_a_amount: float = 0.0
    only_b_amount: float = 0.0
    neither_amount: float = 0.0
    both_amount_sq: float = 0.0
    only_a_amount_sq: float = 0.0
    only_b_amount_sq: float = 0.0
    neither_amount_sq: float = 0.0

    def __add__(self, other: PairedTable) -> PairedTable:
        if not isinstance(other, PairedTable):
            return NotImplemented
        return _add_fields(self, other)

    @property
    def total(self) -> int:
        return self.both + self.only_a + self.only_b + self.neither

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b

    @property
    def flagged_a(self) -> int:
        return self.both + self.only_a

    @property
    def flagged_b(self) -> int:
        return self.both + self.only_b

    @classmethod
    def from_flags(
        cls, flagged_a: Iterable[bool], flagged_b: Iterable[bool], amounts: Iterable[float] = ()
    ) -> PairedTable:
        """Count a table from per-transaction flags (tests, offline evaluation)."""
        cells = dict.fromkeys(_CELLS, 0)
        sums = dict.fromkeys(cells, 0.0)
        squares = dict.fromkeys(cells, 0.0)
        amount_list = list(amounts)
        for i, (a, b) in enumerate(zip(flagged_a, flagged_b, strict=True)):
            cell = ("neither", "only_b", "only_a", "both")[2 * bool(a) + bool(b)]
            cells[cell] += 1
            if amount_list:
                sums[cell] += amount_list[i]
                squares[cell] += amount_list[i] ** 2
        return cls(
            *(cells[k] for k in _CELLS),
            *(sums[k] for k in _CELLS),
            *(squares[k] for k in _CELLS),
        )


@dataclass(frozen=True, slots=True)
class PairedCounts:
    """The shadow's paired record: champion (a) and challenger (b) on the same transactions.

    Split by label: ``fraud`` and ``legit`` are labelled transactions, ``pending`` have no
    matured label yet. Recall compares on ``fraud``, the alert rate on all three.
    """

    fraud: PairedTable = PairedTable()
    legit: PairedTable = PairedTable()
    pending: PairedTable = PairedTable()

    def __add__(self, other: PairedCounts) -> PairedCounts:
        if not isinstance(other, PairedCounts):
            return NotImplemented
        return _add_fields(self, other)

    @property
    def transactions(self) -> PairedTable:
        """Every paired transaction, labelled or not (the alert rate's table)."""
        return self.fraud + self.legit + self.pending


# Latency buckets: fixed, log-spaced, the same everywhere, so histograms from any replica or
# window add cell by cell. Bucket 0 holds values below LATENCY_LOW_MS, the last one values at
# or above the top edge; in between each bucket spans a factor LATENCY_GROWTH (10**(1/20),
# about 12%), so a percentile read at a bucket's geometric middle is within about 6%.
LATENCY_LOW_MS = 0.01
LATENCY_GROWTH = 10 ** (1 / 20)
LATENCY_BUCKETS = 7 * 20 + 2  # 0.01 ms .. 100 s, plus underflow and overflow


def latency_bucket(value_ms: float) -> int:
    """Index of the bucket a latency (milliseconds) falls in."""
    if not value_ms >= LATENCY_LOW_MS:  # also catches nan
        return 0
    index = 1 + int(math.floor(math.log(value_ms / LATENCY_LOW_MS) / math.log(LATENCY_GROWTH)))
    index = min(index, LATENCY_BUCKETS - 1)
    # guard the floor against rounding at an exact edge
    low, high = latency_bucket_edges(index)
    if value_ms < low:
        index -= 1
    elif value_ms >= high:
        index += 1
    return index


def latency_bucket_edges(index: int) -> tuple[float, float]:
    """[low, high) of a bucket in milliseconds (0 and inf for the open ends)."""
    if index <= 0:
        return (0.0, LATENCY_LOW_MS)
    if index >= LATENCY_BUCKETS - 1:
        return (LATENCY_LOW_MS * LATENCY_GROWTH ** (LATENCY_BUCKETS - 2), math.inf)
    return (
        LATENCY_LOW_MS * LATENCY_GROWTH ** (index - 1),
        LATENCY_LOW_MS * LATENCY_GROWTH**index,
    )


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Latency counts in fixed log-spaced buckets (see ``latency_bucket``); adds together.

    ``buckets`` has ``LATENCY_BUCKETS`` counts; ``sum_ms`` and ``max_ms`` keep the mean and the
    worst case exact. Percentiles come from ``fraudgate.analysis.latency``.
    """

    buckets: tuple[int, ...] = (0,) * LATENCY_BUCKETS
    sum_ms: float = 0.0
    max_ms: float = 0.0

    def __post_init__(self) -> None:
        if len(self.buckets) != LATENCY_BUCKETS:
            raise ValueError(
                f"LatencyHistogram.buckets: expected {LATENCY_BUCKETS} counts, "
                f"got {len(self.buckets)}"
            )

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return LatencyHistogram(
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.sum_ms + other.sum_ms,
            max(self.max_ms, other.max_ms),
        )

    @property
    def count(self) -> int:
        return sum(self.buckets)

    @classmethod
    def from_values(cls, values_ms: Iterable[float]) -> LatencyHistogram:
        """Histogram of latencies in milliseconds."""
        buckets = [0] * LATENCY_BUCKETS
        total, worst = 0.0, 0.0
        for value in values_ms:
            buckets[latency_bucket(value)] += 1
            total += value
            worst = max(worst, value)
        return cls(tuple(buckets), total, worst)
