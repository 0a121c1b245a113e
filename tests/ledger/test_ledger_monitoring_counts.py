"""`LedgerStore.monitoring_counts` on both backends against numpy on the same decisions: the
CBPE's score sums per model, role and day, and the score histograms over a drift reference's
FP32 edges (scores sitting exactly on an edge included); and its one-pass query against the
two queries (sums, then one per model) it replaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from fraudgate.analysis.drift import SCORE_COLUMN, bin_counts, drift_reference
from fraudgate.analysis.estimated import ExpectedCounts, expected_counts
from fraudgate.data.contract import FEATURE_NAMES, N_FEATURES
from fraudgate.ledger import Decision, LedgerStore
from fraudgate.ledger.day_cache import sql_day
from fraudgate.ledger.monitoring_counts import ScoreHistogram, ScoreSums
from fraudgate.ledger.schema import decisions

DAY = 86_400.0
T0 = 1_700_006_400.0  # a UTC midnight
MODELS = {"m1": 0.5, "m2": 0.3}  # name -> threshold


@dataclass(frozen=True)
class Written:
    """What was written, as arrays (one entry per decision)."""

    model: np.ndarray
    role: np.ndarray
    day: np.ndarray
    event: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    experiment: np.ndarray


def discrete_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    """A tree ensemble's kind of scores: few distinct FP32 values, many rows on each."""
    values = np.random.default_rng(0).beta(1, 6, size=25).astype(np.float32)  # always these
    return rng.choice(values, size=n, p=rng.dirichlet(np.ones(25)))


def fill(store: LedgerStore, rng: np.random.Generator, n: int = 3000) -> Written:
    """Served and mirror decisions of two models over 6 days; a tenth in another experiment."""
    model = rng.choice(list(MODELS), size=n)
    role = np.where(rng.random(n) < 0.3, "mirror", "served")
    event = T0 + rng.random(n) * 6 * DAY
    score = discrete_scores(rng, n)
    threshold = np.array([MODELS[m] for m in model], dtype=np.float32)
    flagged = score >= threshold
    experiment = np.where(rng.random(n) < 0.1, "other", "ab")
    store.record_decisions(
        [
            Decision(
                f"r{i}",
                f"t{i}",
                float(event[i]),
                str(experiment[i]),
                str(model[i]),
                str(role[i]),
                str(model[i]),
                "1",
                float(score[i]),
                float(threshold[i]),
                bool(flagged[i]),
                1.0,
                10.0,
                None,
                float(event[i]),
            )  # fmt: skip
            for i in range(n)
        ]
    )
    day = np.floor(event / DAY).astype(int)
    return Written(model, role, day, event, score, flagged, experiment)


def test_score_sums_and_histograms_equal_numpys(store: LedgerStore) -> None:
    rng = np.random.default_rng(3)
    written = fill(store, rng)
    t = T0 + 4.5 * DAY  # the last day and a half are after T: not counted
    training = discrete_scores(np.random.default_rng(4), 5000)  # the same 25 values
    references = {
        m: drift_reference(np.zeros((len(training), N_FEATURES)), training, FEATURE_NAMES).column(
            SCORE_COLUMN
        )
        for m in MODELS
    }
    edges = {m: ref.edges for m, ref in references.items()}
    counts = store.monitoring_counts("ab", as_of=t, edges=edges)
    window = (written.experiment == "ab") & (written.event <= t)
    on_edge = np.isin(written.score[window], np.float32(edges["m1"]))
    assert on_edge.mean() > 0.1  # the `<=` of the bins matters
    expected_keys = set()
    for model in MODELS:
        for role in ("served", "mirror"):
            for day in np.unique(written.day[window]):
                mask = (
                    window
                    & (written.model == model)
                    & (written.role == role)
                    & (written.day == day)
                )
                if mask.any():
                    expected_keys.add((model, role, int(day)))
                    got = next(
                        s
                        for s in counts.sums
                        if (s.model, s.role, s.day) == (model, role, int(day))
                    )
                    want = expected_counts(written.score[mask], written.flagged[mask])
                    assert (got.expected.flagged, got.expected.passed) == (
                        want.flagged,
                        want.passed,
                    )
                    assert got.expected.flagged_score == pytest.approx(want.flagged_score, 1e-12)
                    assert got.expected.passed_score == pytest.approx(want.passed_score, 1e-12)
            mask = window & (written.model == model) & (written.role == role)
            histogram = next(h for h in counts.histograms if (h.model, h.role) == (model, role))
            assert histogram.edges == edges[model]
            scores = written.score[mask].astype(np.float64)
            assert list(histogram.counts) == list(bin_counts(scores, edges[model]))
    assert {(s.model, s.role, s.day) for s in counts.sums} == expected_keys
    assert len(counts.histograms) == 4 and counts.as_of == t
    # no edges asked: no histogram; an unknown experiment: nothing
    assert store.monitoring_counts("ab", as_of=t).histograms == ()
    empty = store.monitoring_counts("nope", as_of=t, edges=edges)
    assert empty.sums == () and empty.histograms == ()


def two_queries(
    conn: sa.Connection, backend: str, where: list[Any], edges: dict[str, tuple[float, ...]]
) -> tuple[list[ScoreSums], list[ScoreHistogram]]:
    """The monitoring counts as read before the one-pass query: one GROUP BY model, role, day
    for the sums, then one query per model of ``edges`` with a CASE over its edges."""
    d = decisions
    day = sql_day(d.c.event_time, backend).label("day")
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
    sums = []
    for row in conn.execute(query):
        n, flagged_n = int(row.n), int(row.flagged or 0)
        expected = ExpectedCounts(
            float(flagged_n),
            float(n - flagged_n),
            float(row.flagged_score or 0.0),
            float(row.passed_score or 0.0),
        )
        sums.append(ScoreSums(row.model_name, row.role, int(row.day), expected))
    histograms = []
    for model, bounds in edges.items():
        whens = [(d.c.score <= edge, i) for i, edge in enumerate(bounds)]
        index: Any = sa.case(*whens, else_=len(bounds)) if bounds else sa.literal(0)
        bin_ = index.label("bin")
        per_model = (
            sa.select(d.c.role, bin_, sa.func.count().label("n"))
            .where(*where, d.c.model_name == model)
            .group_by(d.c.role, bin_)
        )
        per_role: dict[str, list[int]] = {}
        for row in conn.execute(per_model):
            counts = per_role.setdefault(row.role, [0] * (len(bounds) + 1))
            counts[int(row.bin)] += int(row.n)
        for role in sorted(per_role):
            histograms.append(ScoreHistogram(model, role, bounds, tuple(per_role[role])))
    return sums, histograms


def test_one_pass_equals_the_two_queries(store: LedgerStore) -> None:
    """Two referenced models (one of them also with no edges: a single bin) and one without a
    reference, both roles, six days, flagged and passed decisions, scores on the edges: the
    one-pass rows give the two queries' counts exactly and their score sums to rounding."""
    rng = np.random.default_rng(11)
    fill(store, rng)
    n = 400  # a model without a drift reference, both roles, flagged and passed
    event = T0 + rng.random(n) * 5 * DAY
    score = discrete_scores(rng, n)
    store.record_decisions(
        [
            Decision(
                f"x{i}",
                f"x{i}",
                float(event[i]),
                "ab",
                "m3",
                "mirror" if i % 3 else "served",
                "m3",
                "1",
                float(score[i]),
                0.2,
                bool(score[i] >= 0.2),
                1.0,
                10.0,
                None,
                float(event[i]),
            )  # fmt: skip
            for i in range(n)
        ]
    )
    training = discrete_scores(np.random.default_rng(4), 5000)
    column = drift_reference(np.zeros((len(training), N_FEATURES)), training, FEATURE_NAMES)
    m1_edges = column.column(SCORE_COLUMN).edges  # values of the scores: rows on the edges
    assert len(m1_edges) > 2
    t = T0 + 4.5 * DAY
    where = [decisions.c.experiment == "ab", decisions.c.event_time <= t]
    for edges in ({"m1": m1_edges, "m2": m1_edges[::2]}, {"m2": (), "m1": m1_edges}, {}):
        with store._engine.connect() as conn:
            want_sums, want_histograms = two_queries(conn, store.backend, where, edges)
        got = store.monitoring_counts("ab", as_of=t, edges=edges)
        assert got.histograms == tuple(want_histograms)
        assert {h.model for h in got.histograms} == set(edges)
        assert [(s.model, s.role, s.day) for s in got.sums] == [
            (s.model, s.role, s.day) for s in want_sums
        ]
        assert {s.model for s in got.sums} == {"m1", "m2", "m3"}
        assert {s.role for s in got.sums} == {"served", "mirror"}
        assert len({s.day for s in got.sums}) >= 4
        assert sum(s.expected.flagged for s in got.sums if s.model == "m3") > 0
        assert sum(s.expected.flagged for s in got.sums if s.model != "m3") > 0
        for mine, theirs in zip(got.sums, want_sums, strict=True):
            assert (mine.expected.flagged, mine.expected.passed) == (
                theirs.expected.flagged,
                theirs.expected.passed,
            )
            assert mine.expected.flagged_score == pytest.approx(
                theirs.expected.flagged_score, rel=1e-12
            )
            assert mine.expected.passed_score == pytest.approx(
                theirs.expected.passed_score, rel=1e-12
            )
