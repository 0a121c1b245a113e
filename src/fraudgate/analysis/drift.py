"""Drift of live traffic against a training reference: PSI and the two-sample KS statistic.

A `DriftReference` is what training stores with a model version (JSON, in the registry): per
column (the 30 contract features, then ``score``) the inner quantile bin edges of the training
data, the training share of each bin, and a sorted sample for the KS statistic. Live rows are
binned with the same edges, so the PSI compares like with like; a quantile edge repeated by a
feature with few distinct values (counts, flags) collapses into one bin.

* PSI = sum over bins of (live - ref) * ln(live / ref), shares floored at ``PSI_FLOOR`` so an empty
  bin gives a large, finite value. Usual reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major
  (``DriftThresholds``'s defaults).
* KS = sup |F_ref(x) - F_live(x)| over the pooled values (scipy's ``ks_2samp`` statistic).

The score column is compared at the precision the server answers it: FP32 (`as_answered`), on
both sides. A tree ensemble's scores take few distinct values, and a quantile edge is one of them
with many rows on it; an FP64 edge against FP32-rounded live scores moves all those rows into the
next bin (and breaks the KS statistic's ties), so the reference is built from, and stored with,
FP32 score values, and the live scores are rounded the same way whatever a caller passes (FP64, or
a JSON client's shortest decimal of the FP32 value).

numpy only (the server computes these in the background; scipy is not loaded there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORE_COLUMN = "score"
DEFAULT_BINS = 10
DEFAULT_SAMPLE = 1000
PSI_FLOOR = 1e-4  # a bin's share is at least this in the PSI (empty bins stay finite)
DEFAULT_PSI_WARNING = 0.1
DEFAULT_PSI_ALERT = 0.25
REFERENCE_FORMAT = 1
_MAX_BINS = 100
_MAX_SAMPLE = 10_000
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class DriftReferenceError(ValueError):
    """A stored drift reference is malformed (the message names the field)."""


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """PSI levels: ``warning`` (moderate shift) and ``alert`` (major shift)."""

    psi_warning: float = DEFAULT_PSI_WARNING
    psi_alert: float = DEFAULT_PSI_ALERT


@dataclass(frozen=True, slots=True)
class ColumnReference:
    """One column's reference: inner bin edges (bins = len(edges) + 1), their training
    shares, and a sorted sample of training values (for the KS statistic)."""

    name: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    sample: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One column's drift on a live sample."""

    column: str
    psi: float
    ks_statistic: float
    rows: int


@dataclass(frozen=True, slots=True)
class DriftReference:
    """Every column's reference: the features in contract order, then ``score``."""

    columns: tuple[ColumnReference, ...]
    rows: int  # training rows it was computed from

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.name != SCORE_COLUMN)

    def column(self, name: str) -> ColumnReference:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": REFERENCE_FORMAT,
            "rows": self.rows,
            "columns": [
                {
                    "name": c.name,
                    "edges": list(c.edges),
                    "shares": list(c.shares),
                    "sample": list(c.sample),
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, n_features: int) -> DriftReference:
        """Validate a stored reference: ``n_features`` named feature columns then ``score``,
        bounded (at most ``_MAX_BINS`` bins and ``_MAX_SAMPLE`` sample values per column)."""
        if not isinstance(data, dict) or data.get("format") != REFERENCE_FORMAT:
            received = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise DriftReferenceError(
                f"drift reference.format: expected {REFERENCE_FORMAT}, received {received!r}"
            )
        columns = data.get("columns")
        if not isinstance(columns, list) or len(columns) != n_features + 1:
            count = len(columns) if isinstance(columns, list) else columns
            raise DriftReferenceError(
                f"drift reference.columns: expected {n_features} features and {SCORE_COLUMN!r}, "
                f"received {count!r} columns"
            )
        parsed = []
        for i, c in enumerate(columns):
            where = f"drift reference.columns[{i}]"
            name = c.get("name") if isinstance(c, dict) else None
            expected_score = i == n_features
            if (
                not isinstance(name, str)
                or not _COLUMN_NAME.fullmatch(name)
                or (name == SCORE_COLUMN) != expected_score
            ):
                raise DriftReferenceError(
                    f"{where}.name: expected a feature name (letters, digits, '_'; "
                    f"{SCORE_COLUMN!r} last), received {str(name)[:80]!r}"
                )
            assert isinstance(c, dict)
            edges = _floats(c.get("edges"), f"{where}.edges", _MAX_BINS - 1)
            shares = _floats(c.get("shares"), f"{where}.shares", _MAX_BINS)
            sample = _floats(c.get("sample"), f"{where}.sample", _MAX_SAMPLE)
            if len(shares) != len(edges) + 1 or any(s < 0 for s in shares):
                raise DriftReferenceError(
                    f"{where}.shares: expected {len(edges) + 1} shares >= 0 (one per bin), "
                    f"received {len(shares)}"
                )
            if list(edges) != sorted(edges) or not sample:
                raise DriftReferenceError(
                    f"{where}: expected ascending edges and a non-empty sample"
                )
            if expected_score:  # a reference stored before the scores were FP32: round it
                edges, sample = _answered(edges), _answered(sample)
            parsed.append(ColumnReference(name, edges, shares, tuple(sorted(sample))))
        if len({c.name for c in parsed}) != len(parsed):
            raise DriftReferenceError("drift reference.columns: expected distinct names")
        rows = data.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise DriftReferenceError(
                f"drift reference.rows: expected an integer >= 1, received {rows!r}"
            )
        return cls(tuple(parsed), rows)


def _answered(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(float(v) for v in as_answered(values)) if values else values


def _floats(value: Any, where: str, limit: int) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) > limit:
        raise DriftReferenceError(f"{where}: expected a list of at most {limit} numbers")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise DriftReferenceError(f"{where}: expected finite numbers, received {item!r}")
        out.append(float(item))
    return tuple(out)


def as_answered(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    """Scores as the server answers them (FP32 on the wire), as float64 values."""
    return np.asarray(scores, dtype=np.float32).astype(np.float64)


def column_reference(
    name: str,
    values: np.ndarray,
    bins: int,
    sample: int,
    rng: np.random.Generator,
    *,
    fp32: bool = False,
) -> ColumnReference:
    """Quantile edges (repeated edges collapsed), training shares and a sorted sample;
    ``fp32``: values and edges rounded to FP32 (the score, see the module docstring)."""
    values = as_answered(values) if fp32 else np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    quantiles = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]) if values.size else []
    quantiles = as_answered(quantiles) if fp32 else np.asarray(quantiles, dtype=np.float64)
    edges = np.unique(quantiles)
    if values.size:  # an edge at the maximum would leave the last bin empty
        edges = edges[edges < values.max()]
    counts = bin_counts(values, edges)
    total = max(int(counts.sum()), 1)
    keep = values if values.size <= sample else rng.choice(values, sample, replace=False)
    return ColumnReference(
        name,
        tuple(float(e) for e in edges),
        tuple(float(c) / total for c in counts),
        tuple(float(v) for v in np.sort(keep)),
    )


def drift_reference(
    features: np.ndarray,
    scores: np.ndarray,
    feature_names: Sequence[str],
    *,
    bins: int = DEFAULT_BINS,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> DriftReference:
    """The reference of a training window: ``features`` [n, len(feature_names)], ``scores``
    the model's scores of comparable (out-of-sample) rows (kept at FP32, as answered)."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ValueError(
            f"features: expected shape [n, {len(feature_names)}], received {features.shape}"
        )
    rng = np.random.default_rng(seed)
    columns = [
        column_reference(name, features[:, i], bins, sample, rng)
        for i, name in enumerate(feature_names)
    ]
    columns.append(column_reference(SCORE_COLUMN, scores, bins, sample, rng, fp32=True))
    return DriftReference(tuple(columns), int(features.shape[0]))


def bin_counts(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rows per bin: bin i holds edges[i-1] < v <= edges[i] (the first and last are open)."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def psi(
    reference_shares: Sequence[float] | np.ndarray, live_counts: Sequence[int] | np.ndarray
) -> float:
    """Population Stability Index of live counts against reference shares (same bins)."""
    live = np.asarray(live_counts, dtype=np.float64)
    total = live.sum()
    if total <= 0:
        return math.nan
    actual = np.maximum(live / total, PSI_FLOOR)
    expected = np.maximum(np.asarray(reference_shares, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_statistic(reference_sorted: Sequence[float] | np.ndarray, live: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (sup of the ECDF difference over the pooled
    values). One merge of the two sorted samples (a stable sort of two sorted runs is a merge)
    and two running counts, instead of a binary search per pooled value: the server recomputes
    it for 31 columns of up to 10,000 rows."""
    ref = np.asarray(reference_sorted, dtype=np.float64)
    data = np.sort(np.asarray(live, dtype=np.float64))
    m, n = ref.size, data.size
    if m == 0 or n == 0:
        return math.nan
    pooled = np.concatenate([ref, data])
    order = np.argsort(pooled, kind="stable")
    from_ref = order < m
    gap = np.cumsum(from_ref) / m - np.cumsum(~from_ref) / n
    values = pooled[order]
    last = np.empty(m + n, dtype=bool)  # the last of each run of equal values (the ECDFs' steps)
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    last[-1] = True
    return float(np.max(np.abs(gap[last])))


@dataclass(frozen=True, slots=True)
class PreparedColumn:
    """A `ColumnReference` as arrays, converted once (the server recomputes drift on every
    refresh; converting 1,000-value tuples each time cost more than the PSI)."""

    name: str
    edges: np.ndarray
    shares: np.ndarray
    sample: np.ndarray


def prepare(reference: DriftReference) -> tuple[PreparedColumn, ...]:
    return tuple(
        PreparedColumn(
            c.name,
            np.asarray(c.edges, dtype=np.float64),
            np.asarray(c.shares, dtype=np.float64),
            np.asarray(c.sample, dtype=np.float64),
        )
        for c in reference.columns
    )


def ks_at_edges(reference: ColumnReference, live_counts: Sequence[int] | np.ndarray) -> float:
    """The KS statistic from binned live counts (`bin_counts` at the reference's edges): the
    ECDF difference at the edges only, against the reference sample's ECDF. A lower bound of
    ``ks_statistic(reference.sample, live)`` (the sup over fewer points; NaN without edges or
    live values), what a database that returns only counts can give."""
    live = np.asarray(live_counts, dtype=np.float64)
    total = live.sum()
    if total <= 0 or not reference.edges:
        return math.nan
    sample = np.asarray(reference.sample, dtype=np.float64)
    edges = np.asarray(reference.edges, dtype=np.float64)
    cdf_live = np.cumsum(live)[:-1] / total  # share of live values <= each edge
    cdf_ref = np.searchsorted(sample, edges, side="right") / sample.size
    return float(np.max(np.abs(cdf_ref - cdf_live)))


def column_drift(reference: ColumnReference | PreparedColumn, live: np.ndarray) -> DriftResult:
    """PSI and KS of one column's live values (non-finite values left out)."""
    live = np.asarray(live, dtype=np.float64)
    live = live[np.isfinite(live)]
    return DriftResult(
        reference.name,
        psi(reference.shares, bin_counts(live, reference.edges)),
        ks_statistic(reference.sample, live),
        int(live.size),
    )


def drift(
    reference: DriftReference,
    features: np.ndarray,
    scores: np.ndarray,
    prepared: Sequence[PreparedColumn] | None = None,
) -> list[DriftResult]:
    """Every column's drift: ``features`` [n, n_features] live rows, ``scores`` their scores;
    ``prepared``: `prepare(reference)`, when the caller keeps it."""
    columns: Sequence[ColumnReference | PreparedColumn] = prepared or reference.columns
    out = []
    for i, column in enumerate(columns):
        values = as_answered(scores) if column.name == SCORE_COLUMN else features[:, i]
        out.append(column_drift(column, values))
    return out


def level(value: float, thresholds: DriftThresholds) -> str:
    """``stable``, ``warning`` or ``alert`` for a PSI (``unknown`` when it is NaN)."""
    if math.isnan(value):
        return "unknown"
    if value >= thresholds.psi_alert:
        return "alert"
    return "warning" if value >= thresholds.psi_warning else "stable"
