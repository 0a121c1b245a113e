"""The label-free (CBPE-style) estimate against the realised precision and recall.

A small simulation is trained as `fraudgate train` does; its holdout window (the window
`fraudgate replay` replays) is scored by each model and fed, request by request in batches of
1-32 rows, through the server's own recording (`observe_scores` into `ModelMetrics`, whose
counters `/metrics` exports). Every label of the holdout is known, so the realised figures are
exact.

Tolerance: even with perfectly calibrated scores the realised counts are random around the
estimate: given the flagged set, TP is a sum of independent Bernoulli(p) draws, so precision's
standard error is sqrt(sum p(1 - p)) / flagged; recall's is taken as the binomial
sqrt(r(1 - r) / frauds). The candidate, trained on data that includes the emerging pattern, must
be within 3 standard errors on both (a calibrated model fails this about 0.3% of the time). The
baseline, trained before the pattern emerged, is the known limit of the method (concept drift:
the new frauds get low scores, so they look legitimate to it): its estimated recall must be
above the realised one by more than 3 standard errors, which is why the estimate is shown
beside the realised figures and never replaces them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fraudgate.analysis.counts import ConfusionCounts
from fraudgate.data.features import compute_features
from fraudgate.data.simulator import SimulationConfig, simulate
from fraudgate.serving.metrics import ModelMetrics, observe_scores
from fraudgate.training.pipeline import train_and_compare
from fraudgate.training.windows import TrainingPlan

CFG = SimulationConfig(
    seed=11, days=40, transactions_per_day=3000, customers=2000, terminals=4000, emerging_day=22
)


@pytest.fixture(scope="module")
def trained():
    sim = simulate(CFG)
    features = compute_features(sim.transactions, sim.customers, sim.terminals)
    plan = TrainingPlan.for_simulation(CFG.days, CFG.emerging_day)
    return train_and_compare(features, CFG.start, plan, seed=CFG.seed, rounds=120)


def _served(scores: np.ndarray, threshold: float) -> ModelMetrics:
    """The scores through the server's recording, in requests of 1-32 rows."""
    metrics = ModelMetrics()
    rng = np.random.default_rng(0)
    fp32 = scores.astype(np.float32)
    flags = fp32 >= np.float32(threshold)
    start = 0
    while start < fp32.size:
        end = start + int(rng.choice([1, 1, 1, 4, 32]))
        observe_scores(metrics, fp32[start:end], flags[start:end].reshape(-1, 1))
        start = end
    return metrics


def _compare(trained, key: str):
    model = trained.models[key]
    y = trained.holdout_labels.astype(bool)
    scores, threshold = model.holdout_scores, model.threshold.threshold
    estimate = _served(scores, threshold).expected()
    flagged = scores.astype(np.float32) >= np.float32(threshold)
    realised = ConfusionCounts(
        tp=int(np.sum(flagged & y)),
        fp=int(np.sum(flagged & ~y)),
        fn=int(np.sum(~flagged & y)),
        tn=int(np.sum(~flagged & ~y)),
    )
    p = scores.astype(np.float32).astype(np.float64)
    se_precision = math.sqrt(float(np.sum(p[flagged] * (1 - p[flagged])))) / flagged.sum()
    r = realised.recall
    se_recall = math.sqrt(r * (1 - r) / realised.frauds)
    return estimate, realised, se_precision, se_recall


def test_the_estimate_counts_what_the_server_records(trained):
    model = trained.models["v2"]
    estimate = _served(model.holdout_scores, model.threshold.threshold).expected()
    p = model.holdout_scores.astype(np.float32).astype(np.float64)
    flagged = p >= np.float32(model.threshold.threshold)
    assert estimate.flagged == flagged.sum() and estimate.passed == (~flagged).sum()
    assert estimate.flagged_score == pytest.approx(p[flagged].sum(), rel=1e-9)
    assert estimate.passed_score == pytest.approx(p[~flagged].sum(), rel=1e-9)


def test_estimate_is_close_to_the_realised_figures_of_a_calibrated_model(trained):
    estimate, realised, se_precision, se_recall = _compare(trained, "v2")
    assert realised.frauds >= 100 and realised.tp + realised.fp >= 50
    assert abs(estimate.precision - realised.precision) <= 3 * se_precision, (
        estimate.precision,
        realised.precision,
        se_precision,
    )
    assert abs(estimate.recall - realised.recall) <= 3 * se_recall, (
        estimate.recall,
        realised.recall,
        se_recall,
    )


def test_concept_drift_is_the_estimates_known_blind_spot(trained):
    estimate, realised, _se_precision, se_recall = _compare(trained, "v1")
    assert estimate.recall - realised.recall > 3 * se_recall, (estimate.recall, realised.recall)
