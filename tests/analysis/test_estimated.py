"""The label-free estimate's counts: sums of calibrated scores, merged and windowed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fraudgate.analysis.estimated import ExpectedCounts, expected_counts


def test_expected_counts_are_sums_of_scores_by_decision():
    scores = np.array([0.9, 0.8, 0.1, 0.05, 0.3])
    flagged = scores >= 0.5
    counts = expected_counts(scores, flagged)
    assert counts == ExpectedCounts(2, 3, pytest.approx(1.7), pytest.approx(0.45))
    assert counts.precision == pytest.approx(1.7 / 2)
    assert counts.recall == pytest.approx(1.7 / 2.15)
    assert math.isnan(ExpectedCounts().precision) and math.isnan(ExpectedCounts().recall)


def test_counts_merge_and_window_by_difference():
    rng = np.random.default_rng(5)
    p = rng.random(1000)
    f = p > 0.7
    whole = expected_counts(p, f)
    first, second = expected_counts(p[:400], f[:400]), expected_counts(p[400:], f[400:])
    merged = first + second
    for a, b in zip(
        (merged.flagged, merged.passed, merged.flagged_score, merged.passed_score),
        (whole.flagged, whole.passed, whole.flagged_score, whole.passed_score),
        strict=True,
    ):
        assert a == pytest.approx(b)
    window = whole - first
    assert window.flagged_score == pytest.approx(second.flagged_score)
    assert window.decisions == pytest.approx(600)


def test_a_calibrated_model_is_estimated_within_sampling_error():
    # labels drawn from the scores themselves: calibrated by construction
    rng = np.random.default_rng(6)
    p = rng.beta(0.3, 6, size=200_000)
    y = rng.random(p.size) < p
    f = p >= 0.4
    estimate = expected_counts(p, f)
    tp = int(np.sum(f & y))
    precision, recall = tp / f.sum(), tp / y.sum()
    se_p = math.sqrt(precision * (1 - precision) / f.sum())
    se_r = math.sqrt(recall * (1 - recall) / y.sum())
    assert abs(estimate.precision - precision) < 4 * se_p
    assert abs(estimate.recall - recall) < 4 * se_r
