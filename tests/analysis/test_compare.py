import math

import numpy as np
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from fraudgate.analysis.compare import (
    MIN_EXPECTED_FOR_Z,
    compare_arms,
    compare_proportions,
    newcombe_difference,
    relative_lift,
)
from fraudgate.analysis.counts import ConfusionCounts

CASES = [
    (22, 30, 30, 30),
    (120, 400, 150, 410),
    (3, 25, 9, 26),
    (656, 2225, 700, 2100),
    (0, 40, 5, 38),
]


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), CASES)
def test_difference_matches_statsmodels_newcombe(xa, na, xb, nb):
    ours = newcombe_difference(xa, na, xb, nb)
    low, high = confint_proportions_2indep(xb, nb, xa, na, method="newcomb", compare="diff")
    assert ours.estimate == pytest.approx(xb / nb - xa / na)
    assert (ours.low, ours.high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), CASES)
def test_lift_matches_statsmodels_log_ratio(xa, na, xb, nb):
    ours = relative_lift(xa, na, xb, nb)
    method = "log" if xa and xb else "log-adjusted"
    low, high = confint_proportions_2indep(xb, nb, xa, na, method=method, compare="ratio")
    assert (ours.low + 1, ours.high + 1) == pytest.approx((low, high), rel=1e-12)
    if xa:
        assert ours.estimate == pytest.approx((xb / nb) / (xa / na) - 1)
    else:
        assert math.isnan(ours.estimate)


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), CASES)
def test_tests_match_scipy_and_statsmodels(xa, na, xb, nb):
    result = compare_proportions(xa, na, xb, nb)
    z, p = proportions_ztest([xb, xa], [nb, na])
    assert (result.z_statistic, result.z_p_value) == pytest.approx((z, p), rel=1e-12)
    fisher = fisher_exact([[xb, nb - xb], [xa, na - xa]])
    assert result.fisher_p_value == pytest.approx(fisher.pvalue, rel=1e-12)
    pooled = (xa + xb) / (na + nb)
    small = min(na, nb) * min(pooled, 1 - pooled) < MIN_EXPECTED_FOR_Z
    assert result.test == ("fisher" if small else "z")
    assert result.p_value == (result.fisher_p_value if small else result.z_p_value)


def test_degenerate_tables():
    same = compare_proportions(30, 30, 30, 30)
    assert same.z_p_value == 1.0 and same.fisher_p_value == 1.0 and same.test == "fisher"
    empty = compare_proportions(0, 0, 3, 10)
    assert math.isnan(empty.p_value) and (empty.difference.low, empty.difference.high) == (-1, 1)


def test_compare_arms_uses_frauds_alerts_and_all_decisions():
    a = ConfusionCounts(tp=80, fp=400, fn=20, tn=9500, unlabelled=1000, unlabelled_flagged=40)
    b = ConfusionCounts(tp=23, fp=90, fn=2, tn=2400, unlabelled=250, unlabelled_flagged=11)
    result = compare_arms(a, b)
    assert (result.recall.successes_a, result.recall.trials_a) == (80, 100)
    assert (result.precision.successes_b, result.precision.trials_b) == (23, 113)
    assert (result.alert_rate.successes_a, result.alert_rate.trials_a) == (520, 11_000)


def test_newcombe_difference_covers_the_true_difference():
    rng = np.random.default_rng(8)
    covered = 0
    draws = zip(
        rng.binomial(40, 0.7, 1000).tolist(), rng.binomial(60, 0.8, 1000).tolist(), strict=True
    )
    for xa, xb in draws:
        d = newcombe_difference(xa, 40, xb, 60)
        covered += d.low <= 0.1 <= d.high
    assert 0.93 <= covered / 1000 <= 0.975
