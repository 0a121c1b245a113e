"""The report's monitoring counts, aggregated in SQL: score sums (CBPE) and score histograms.

Two queries over the experiment's decisions of the report's window (the same filter as
`LedgerStore.experiment_counts`: the experiment, ``event_time <= T``), each one GROUP BY with
sums, so only grouped rows leave the database:

* `score_sums`: per model, role and event day, the decisions, the flagged ones, and the summed
  scores of the flagged and of the passed decisions -- the sufficient statistics of the
  label-free expected precision and recall (`fraudgate.analysis.estimated`: E[TP] = the flagged
  decisions' summed scores). Per *decision*: a retried transaction counts once per decision
  here, once per transaction in the label-joined counts.
* `score_histograms`: per model and role, the decisions per bin of that model's drift reference
  (a CASE over the reference's inner edges: bin i holds ``edges[i-1] < score <= edges[i]``, as
  `fraudgate.analysis.drift.bin_counts`), for the PSI against the training reference.

Scores are stored as the FP32 values the server answered (exact in a DOUBLE), and the edges
are FP32 values too (`fraudgate.analysis.drift`), so the SQL comparison bins every score as
numpy does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from fraudgate.analysis.estimated import ExpectedCounts
from fraudgate.ledger.records import SECONDS_PER_DAY
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


def _day(event_time: Any, backend: str) -> Any:
    """UTC day number of an event time (floor; see `fraudgate.ledger.counting`)."""
    if backend == "postgresql":
        return sa.cast(sa.func.floor(event_time / SECONDS_PER_DAY), sa.BigInteger)
    return sa.cast(event_time / SECONDS_PER_DAY, sa.Integer)


def score_sums(conn: sa.Connection, backend: str, where: Sequence[Any]) -> list[ScoreSums]:
    """Per (model, role, event day): decisions, flagged, and the flagged / passed score sums."""
    d = decisions
    day = _day(d.c.event_time, backend).label("day")
    flagged = d.c.is_fraud_decision
    query = (
        sa.select(
            d.c.model_name,
            d.c.role,
            day,
            sa.func.count().label("n"),
            sa.func.sum(sa.case((flagged, 1), else_=0)).label("flagged"),
            sa.func.sum(sa.case((flagged, d.c.score), else_=0.0)).label("flagged_score"),
            sa.func.sum(sa.case((flagged, 0.0), else_=d.c.score)).label("passed_score"),
        )
        .where(*where)
        .group_by(d.c.model_name, d.c.role, day)
        .order_by(d.c.model_name, d.c.role, day)
    )
    out = []
    for row in conn.execute(query):
        n, flagged_n = int(row.n), int(row.flagged or 0)
        expected = ExpectedCounts(
            float(flagged_n),
            float(n - flagged_n),
            float(row.flagged_score or 0.0),
            float(row.passed_score or 0.0),
        )
        out.append(ScoreSums(row.model_name, row.role, int(row.day), expected))
    return out


def score_histograms(
    conn: sa.Connection, where: Sequence[Any], edges: Mapping[str, Sequence[float]]
) -> list[ScoreHistogram]:
    """Per model of ``edges`` (model name -> its reference's inner bin edges) and role: the
    decisions per bin, one query per model."""
    d = decisions
    out = []
    for model, model_edges in edges.items():
        bounds = tuple(float(e) for e in model_edges)
        if bounds:
            whens = [(d.c.score <= edge, i) for i, edge in enumerate(bounds)]
            index: Any = sa.case(*whens, else_=len(bounds))
        else:
            index = sa.literal(0)
        bin_ = index.label("bin")
        query = (
            sa.select(d.c.role, bin_, sa.func.count().label("n"))
            .where(*where, d.c.model_name == model)
            .group_by(d.c.role, bin_)
        )
        per_role: dict[str, list[int]] = {}
        for row in conn.execute(query):
            counts = per_role.setdefault(row.role, [0] * (len(bounds) + 1))
            counts[int(row.bin)] += int(row.n)
        for role in sorted(per_role):
            out.append(ScoreHistogram(model, role, bounds, tuple(per_role[role])))
    return out


@dataclass(frozen=True, slots=True)
class MonitoringCounts:
    """What `LedgerStore.monitoring_counts` read for the report, as of ``as_of``."""

    experiment: str
    as_of: float
    sums: tuple[ScoreSums, ...]
    histograms: tuple[ScoreHistogram, ...]
