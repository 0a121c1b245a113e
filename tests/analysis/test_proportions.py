import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from fraudgate.analysis.counts import ConfusionCounts
from fraudgate.analysis.proportions import (
    arm_metrics,
    f1_interval,
    proportion_interval,
    value_detection_interval,
)


def _fraud_counts(caught: np.ndarray, amounts: np.ndarray, fp: int = 0, tn: int = 0):
    return ConfusionCounts(
        tp=int(caught.sum()),
        fn=int((~caught).sum()),
        fp=fp,
        tn=tn,
        tp_amount=float(amounts[caught].sum()),
        fn_amount=float(amounts[~caught].sum()),
        tp_amount_sq=float((amounts[caught] ** 2).sum()),
        fn_amount_sq=float((amounts[~caught] ** 2).sum()),
    )


def test_arm_metrics_match_statsmodels_wilson():
    counts = ConfusionCounts(tp=22, fp=1, fn=8, tn=9_000, unlabelled=500, unlabelled_flagged=4)
    m = arm_metrics(counts)
    for interval, (k, n) in [
        (m.precision, (22, 23)),
        (m.recall, (22, 30)),
        (m.alert_rate, (27, 9_531)),
    ]:
        low, high = proportion_confint(k, n, method="wilson")
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)
        assert (interval.low, interval.high) == pytest.approx((ci.low, ci.high), abs=1e-9)
        assert interval.estimate == k / n
    assert (m.decisions, m.labelled, m.frauds, m.alerts) == (9_531, 9_031, 30, 27)


def test_f1_interval_is_the_image_of_the_jaccard_wilson_interval():
    counts = ConfusionCounts(tp=40, fp=25, fn=15, tn=1000)
    interval = f1_interval(counts)
    low, high = proportion_confint(40, 80, method="wilson")
    assert interval.estimate == pytest.approx(2 * 40 / (2 * 40 + 25 + 15))
    expected = (2 * low / (1 + low), 2 * high / (1 + high))
    assert (interval.low, interval.high) == pytest.approx(expected)
    # agrees with the delta method at this size (same centre, similar width)
    j = 0.5
    se = 2 / (1 + j) ** 2 * np.sqrt(j * (1 - j) / 80)
    assert interval.high - interval.low == pytest.approx(2 * 1.959964 * se, rel=0.1)


def test_f1_interval_covers_the_true_f1():
    rng = np.random.default_rng(11)
    probabilities = np.array([0.3, 0.1, 0.15, 0.45])  # tp, fp, fn, tn
    truth = 2 * 0.3 / (2 * 0.3 + 0.1 + 0.15)
    draws = rng.multinomial(80, probabilities, size=2000)
    covered = 0
    for tp, fp, fn, tn in draws:
        f1 = f1_interval(ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=tn))
        covered += f1.low <= truth <= f1.high
    assert 0.93 <= covered / 2000 <= 0.975


def test_value_detection_with_equal_amounts_is_the_recall_wilson_interval():
    caught = np.array([True] * 22 + [False] * 8)
    counts = _fraud_counts(caught, np.full(30, 150.0))
    vdr = value_detection_interval(counts)
    recall = proportion_interval(22, 30)
    assert vdr.estimate == pytest.approx(22 / 30)
    assert (vdr.low, vdr.high) == pytest.approx((recall.low, recall.high), abs=1e-12)


def test_value_detection_interval_against_a_bootstrap_and_its_coverage():
    rng = np.random.default_rng(4)
    amounts = rng.lognormal(4.0, 1.0, 300)
    caught = rng.random(300) < np.where(amounts > np.median(amounts), 0.9, 0.6)
    vdr = value_detection_interval(_fraud_counts(caught, amounts))
    boot = []
    for _ in range(2000):
        i = rng.integers(0, 300, 300)
        boot.append(amounts[i][caught[i]].sum() / amounts[i].sum())
    low, high = np.quantile(boot, [0.025, 0.975])
    assert vdr.estimate == pytest.approx(amounts[caught].sum() / amounts.sum())
    assert vdr.low == pytest.approx(low, abs=0.015) and vdr.high == pytest.approx(high, abs=0.015)
    # coverage over repeated samples from a fixed population (heavier-tailed amounts than this
    # undercover a little at a few hundred frauds, as every ratio estimator does)
    population = rng.lognormal(4.0, 0.6, 200_000)
    p_catch = np.where(population > np.median(population), 0.9, 0.6)
    truth = (population * p_catch).sum() / population.sum()
    covered = 0
    for _ in range(1000):
        i = rng.integers(0, len(population), 300)
        got = value_detection_interval(_fraud_counts(rng.random(300) < p_catch[i], population[i]))
        covered += got.low <= truth <= got.high
    assert 0.925 <= covered / 1000 <= 0.97


def test_value_detection_edge_cases():
    everything = _fraud_counts(np.ones(30, bool), np.linspace(10, 300, 30))
    interval = value_detection_interval(everything)
    assert interval.estimate == 1.0 and interval.low < 0.95 and interval.high == pytest.approx(1.0)
    no_moments = ConfusionCounts(tp=3, fn=1, tp_amount=30.0, fn_amount=10.0)
    assert np.isnan(value_detection_interval(no_moments).low)
    assert np.isnan(value_detection_interval(ConfusionCounts()).estimate)
