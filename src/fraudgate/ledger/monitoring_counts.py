"""The report's monitoring counts, aggregated in SQL: score sums (CBPE) and score histograms.

One query over the experiment's decisions of the report's window (the same filter as
`LedgerStore.experiment_counts`: the experiment, ``event_time <= T``), one GROUP BY with sums
(`monitoring_rows`), so only grouped rows leave the database; from its rows:

* the score sums: per model, role and event day, the decisions, the flagged ones, and the
  summed scores of the flagged and of the passed decisions -- the sufficient statistics of the
  label-free expected precision and recall (`fraudgate.analysis.estimated`: E[TP] = the flagged
  decisions' summed scores). Per *decision*: a retried transaction counts once per decision
  here, once per transaction in the label-joined counts.
* the score histograms: per model and role, the decisions per bin of that model's drift
  reference (a CASE over the reference's inner edges: bin i holds ``edges[i-1] < score <=
  edges[i]``, as `fraudgate.analysis.drift.bin_counts`), for the PSI against the training
  reference.

Scores are stored as the FP32 values the server answered (exact in a DOUBLE), and the edges
are FP32 values too (`fraudgate.analysis.drift`), so the SQL comparison bins every score as
numpy does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from fraudgate.analysis.estimated import ExpectedCounts
from fraudgate.ledger.day_cache import Begin, DayCache, signature, sql_day
from fraudgate.ledger.schema import decisions


@dataclass(frozen=True, slots=True)
class ScoreSums:
    """One model's decisions of one role on one event day: the CBPE's counters."""

    model: str
    role: str
    day: int
    expected: ExpectedCounts


@dataclass(frozen=True, slots=True)
class ScoreHistogram:
    """One model's decisions of one role per bin of its reference's edges
    (``len(edges) + 1`` counts)."""

    model: str
    role: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def monitoring_rows(
    conn: sa.Connection,
    backend: str,
    where: Sequence[Any],
    edges: Mapping[str, Sequence[float]],
    cache: DayCache | None = None,
    begin: Begin | None = None,
) -> tuple[list[ScoreSums], list[ScoreHistogram]]:
    """The score sums per (model, role, event day) and, per model of ``edges`` (model name ->
    its reference's inner bin edges) and role, the histogram -- from ONE pass over the
    decisions: GROUP BY model, role and a packed integer key of (day, flag, bin), the bin a
    CASE over the row's own model's edges (-1 for a model without edges), each group's count
    and summed score. The sums add the groups over bins, the histograms over days and flags.

    One statement instead of one per model plus one: each is a scan of the experiment's
    decisions and (SQLite) a sort of them for the GROUP BY, cheapest with the integer key
    first (the strings are compared only between rows of equal keys). The counts are those of
    separate queries exactly; a score sum is the exact sum (``math.fsum``) of the groups' SQL
    sums, so it may differ from one SQL ``sum`` over the same decisions by the rounding of the
    partial sums (a few ulps).

    With ``cache`` (and ``begin``, its write transaction), the days it holds are read from it
    and the closed days counted now stored (`fraudgate.ledger.day_cache`; per decision, so no
    transaction spans days here)."""
    d = decisions
    models = {m: tuple(float(e) for e in model_edges) for m, model_edges in edges.items()}
    # bin + 1 in 0 .. len(edges) + 1: the key's last digit in base ``span``
    span = max((len(b) for b in models.values()), default=0) + 2
    whens = [(d.c.model_name == m, _bin(d.c.score, bounds)) for m, bounds in models.items()]
    index: Any = sa.case(*whens, else_=-1) if whens else sa.literal(-1)
    flagged = sa.cast(d.c.is_fraud_decision, sa.Integer)
    key = ((sql_day(d.c.event_time, backend) * 2 + flagged) * span + (index + 1)).label("k")
    query = (
        sa.select(
            d.c.model_name,
            d.c.role,
            key,
            sa.func.count().label("n"),
            sa.func.sum(d.c.score).label("score"),
        )
        .where(*where, *(cache.where(d.c.event_time) if cache is not None else ()))
        .group_by(key, d.c.role, d.c.model_name)
    )
    rows = [
        (row.model_name, row.role, int(row.k), int(row.n), float(row.score or 0.0))
        for row in conn.execute(query)
    ]
    if cache is not None and begin is not None:
        rows += _with_cache(cache, begin, rows, span)
    cells: dict[tuple[str, str, int], _Cell] = {}
    bins: dict[tuple[str, str], list[int]] = {}
    for model, role, k, n, score in rows:
        rest, shifted = divmod(k, span)
        day, flag = divmod(rest, 2)
        cell = cells.setdefault((model, role, day), _Cell())
        cell.add(bool(flag), n, score)
        if shifted > 0:  # a model of ``edges``
            counts = bins.setdefault((model, role), [0] * (len(models[model]) + 1))
            counts[shifted - 1] += n
    sums = [
        ScoreSums(model, role, day, cells[(model, role, day)].expected())
        for model, role, day in sorted(cells)
    ]
    histograms = [
        ScoreHistogram(model, role, bounds, tuple(bins[(model, role)]))
        for model, bounds in models.items()
        for role in sorted(r for m, r in bins if m == model)
    ]
    return sums, histograms


def cache_signature(edges: Mapping[str, Sequence[float]]) -> str:
    """The monitoring rows' cache signature: they depend on the references' edges."""
    return signature(
        "monitoring", edges={m: [float(e) for e in bounds] for m, bounds in edges.items()}
    )


_MonitoringRow = tuple[str, str, int, int, float]  # model, role, packed key, n, summed score


def _with_cache(
    cache: DayCache, begin: Begin, rows: Sequence[_MonitoringRow], span: int
) -> list[_MonitoringRow]:
    """Store the closed days among the rows counted now; the cached days' rows."""
    new: dict[int, list[_MonitoringRow]] = {}
    for row in rows:
        new.setdefault(row[2] // span // 2, []).append(row)
    storable = cache.storable(new, ())
    cache.save(begin, {day: new[day] for day in storable})
    return [
        (str(m), str(r), int(k), int(n), float(score))
        for entry in cache.days.values()
        for m, r, k, n, score in entry
    ]


def _bin(score: Any, bounds: tuple[float, ...]) -> Any:
    """The bin index of ``score`` (bin i holds ``edges[i-1] < score <= edges[i]``)."""
    if not bounds:
        return sa.literal(0)
    return sa.case(*[(score <= edge, i) for i, edge in enumerate(bounds)], else_=len(bounds))


@dataclass(slots=True)
class _Cell:
    """One (model, role, day)'s groups, added up: decisions and score sums per flag."""

    flagged: int = 0
    passed: int = 0
    flagged_scores: list[float] = field(default_factory=list)
    passed_scores: list[float] = field(default_factory=list)

    def add(self, flagged: bool, n: int, score: float) -> None:
        if flagged:
            self.flagged += n
            self.flagged_scores.append(score)
        else:
            self.passed += n
            self.passed_scores.append(score)

    def expected(self) -> ExpectedCounts:
        return ExpectedCounts(
            float(self.flagged),
            float(self.passed),
            math.fsum(self.flagged_scores),
            math.fsum(self.passed_scores),
        )


@dataclass(frozen=True, slots=True)
class MonitoringCounts:
    """What `LedgerStore.monitoring_counts` read for the report, as of ``as_of``."""

    experiment: str
    as_of: float
    sums: tuple[ScoreSums, ...]
    histograms: tuple[ScoreHistogram, ...]
