"""`LedgerStore.monitoring_counts` on both backends against numpy on the same decisions: the
CBPE's score sums per model, role and day, and the score histograms over a drift reference's
FP32 edges (scores sitting exactly on an edge included)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from fraudgate.analysis.drift import SCORE_COLUMN, bin_counts, drift_reference
from fraudgate.analysis.estimated import expected_counts
from fraudgate.data.contract import FEATURE_NAMES, N_FEATURES
from fraudgate.ledger import Decision, LedgerStore

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
