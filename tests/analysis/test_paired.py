import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep

from fraudgate.analysis.classification import paired_recall_gap
from fraudgate.analysis.counts import PairedCounts, PairedTable
from fraudgate.analysis.paired import (
    EXACT_MCNEMAR_BELOW,
    compare_paired,
    newcombe_paired_interval,
    paired_difference,
)


@pytest.mark.parametrize(
    "cells", [(22, 0, 8, 0), (300, 12, 40, 48), (500, 60, 75, 365), (10, 3, 4, 13), (0, 0, 0, 30)]
)
def test_mcnemar_matches_statsmodels(cells):
    both, only_a, only_b, neither = cells
    result = paired_difference(PairedTable(both, only_a, only_b, neither))
    exact = only_a + only_b < EXACT_MCNEMAR_BELOW
    assert result.exact == exact
    if only_a + only_b:
        expected = mcnemar([[both, only_a], [only_b, neither]], exact=exact, correction=True)
        assert result.mcnemar_p_value == pytest.approx(expected.pvalue, rel=1e-12)
        if exact:  # the exact McNemar test is the binomial test on the discordant pairs
            binomial = binomtest(only_b, only_a + only_b).pvalue
            assert result.mcnemar_p_value == pytest.approx(binomial)
    else:
        assert result.mcnemar_p_value == 1.0
    n = sum(cells)
    assert result.difference.estimate == pytest.approx((only_b - only_a) / n)
    assert result.difference.low <= result.difference.estimate <= result.difference.high


def test_paired_interval_is_newcombe_independent_without_correlation():
    # ad - bc = 0 makes the correlation 0: method 10 reduces to the independent Newcombe interval
    table = PairedTable(both=6, only_a=14, only_b=24, neither=56)
    low, high = confint_proportions_2indep(30, 100, 20, 100, method="newcomb", compare="diff")
    interval = newcombe_paired_interval(table)
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)


def test_positive_correlation_narrows_the_interval():
    paired = newcombe_paired_interval(PairedTable(both=70, only_a=2, only_b=10, neither=18))
    low, high = confint_proportions_2indep(80, 100, 72, 100, method="newcomb", compare="diff")
    assert paired.high - paired.low < 0.6 * (high - low)
    assert paired.low > 0  # the same 8-point gain is clear paired, not as independent arms
    assert low < 0


def test_counts_and_flags_agree_with_the_training_comparison():
    rng = np.random.default_rng(3)
    a = rng.random(400) < 0.3
    b = a | (rng.random(400) < 0.4)
    from_flags = paired_recall_gap(a, b)
    from_counts = paired_difference(PairedTable.from_flags(a, b))
    assert from_counts.difference == from_flags.gap
    assert from_counts.mcnemar_p_value == from_flags.mcnemar_p_value


def test_compare_paired_uses_frauds_for_recall_and_everything_for_alerts():
    counts = PairedCounts(
        fraud=PairedTable(both=40, only_a=2, only_b=9, neither=9),
        legit=PairedTable(both=100, only_a=30, only_b=45, neither=9000),
        pending=PairedTable(both=10, only_a=3, only_b=6, neither=900),
    )
    result = compare_paired(counts)
    assert result.recall.pairs == 60 and result.recall.only_b == 9
    assert result.alert_rate.pairs == 60 + 9175 + 919
    assert result.alert_rate.difference.estimate == pytest.approx((60 - 35) / 10154)


def test_paired_interval_coverage():
    rng = np.random.default_rng(6)
    cells = np.array([0.6, 0.04, 0.12, 0.24])  # both, a only, b only, neither: gap 0.08
    covered = 0
    for both, only_a, only_b, neither in rng.multinomial(80, cells, size=1000).tolist():
        interval = newcombe_paired_interval(PairedTable(both, only_a, only_b, neither))
        covered += interval.low <= 0.08 <= interval.high
    assert 0.93 <= covered / 1000 <= 0.985


def test_paired_interval_matches_a_published_result():
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017), ch. 8:
    # the Newcombe square-and-add interval for [[59, 6], [16, 80]] is -0.0621 (-0.1186 to
    # -0.0046) for p1 - p2 (their R package contingencytables prints it); b - a flips the sign
    interval = newcombe_paired_interval(PairedTable(both=59, only_a=6, only_b=16, neither=80))
    assert round(interval.estimate, 4) == 0.0621
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0046, 0.1186)
