import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep

from fraudgate.analysis.classification import (
    ConfusionCounts,
    RankedScores,
    bootstrap_ranking_metrics,
    confusion_at,
    paired_recall_gap,
    proportion_interval,
)


@pytest.fixture
def scored():
    rng = np.random.default_rng(1)
    y = (rng.random(5_000) < 0.05).astype(int)
    scores = np.round(rng.normal(y * 1.5, 1.0), 1)  # rounding creates many ties
    return y, scores


def test_ranking_metrics_match_sklearn(scored):
    y, scores = scored
    ranked = RankedScores(y, scores)
    assert ranked.average_precision() == pytest.approx(average_precision_score(y, scores), 1e-12)
    assert ranked.roc_auc() == pytest.approx(roc_auc_score(y, scores), 1e-12)


def test_weights_equal_repeated_rows(scored):
    y, scores = scored
    w = np.random.default_rng(2).poisson(1.0, len(y))
    ranked = RankedScores(y, scores)
    rep_y, rep_s = np.repeat(y, w), np.repeat(scores, w)
    assert ranked.average_precision(w) == pytest.approx(average_precision_score(rep_y, rep_s))
    assert ranked.roc_auc(w) == pytest.approx(roc_auc_score(rep_y, rep_s))


def test_confusion_counts_add_and_match_sklearn(scored):
    y, scores = scored
    counts = confusion_at(y, scores, 1.0)
    assert counts.f1 == pytest.approx(f1_score(y, scores >= 1.0))
    half = len(y) // 2
    merged = confusion_at(y[:half], scores[:half], 1.0) + confusion_at(y[half:], scores[half:], 1.0)
    assert merged == counts
    assert ConfusionCounts().recall != ConfusionCounts().recall  # nan without positives


def test_wilson_interval_matches_scipy():
    for k, n in [(0, 30), (3, 30), (29, 30), (656, 2225)]:
        ours = proportion_interval(k, n)
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert (ours.low, ours.high) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_bootstrap_intervals_cover_the_estimate(scored):
    y, scores = scored
    result = bootstrap_ranking_metrics(y, scores, 1.0, replicates=100, seed=0)
    for interval in result.values():
        assert interval.low <= interval.estimate <= interval.high
        assert interval.high - interval.low < 0.2
    assert result["roc_auc"].estimate == pytest.approx(roc_auc_score(y, scores))
    again = bootstrap_ranking_metrics(y, scores, 1.0, replicates=100, seed=0)
    assert again == result


def test_paired_recall_gap_against_statsmodels():
    rng = np.random.default_rng(3)
    a = rng.random(400) < 0.3
    b = a | (rng.random(400) < 0.4)
    result = paired_recall_gap(a, b)
    assert result.gap.estimate == pytest.approx(b.mean() - a.mean())
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert result.mcnemar_p_value == pytest.approx(mcnemar(table, exact=False).pvalue)
    assert result.gap.low > 0


def test_thirty_fraud_cases_give_a_wide_interval():
    a = np.array([True] * 10 + [False] * 20)
    b = np.array([True] * 13 + [False] * 17)
    result = paired_recall_gap(a, b)
    assert result.gap.low < 0 < result.gap.high  # +10 points on 30 cases proves nothing
    assert result.mcnemar_p_value == pytest.approx(binomtest(3, 3).pvalue)


def test_paired_interval_reduces_to_newcombe_without_correlation():
    # 6 caught by both, 24 by b only, 14 by a only, 56 by neither: ad - bc = 0, so phi = 0 and
    # the paired interval must equal Newcombe's independent-samples hybrid score interval
    a = np.array([1] * 6 + [0] * 24 + [1] * 14 + [0] * 56, bool)
    b = np.array([1] * 6 + [1] * 24 + [0] * 14 + [0] * 56, bool)
    low, high = confint_proportions_2indep(30, 100, 20, 100, method="newcomb", compare="diff")
    gap = paired_recall_gap(a, b).gap
    assert (gap.low, gap.high) == pytest.approx((low, high), abs=1e-12)


def test_no_discordant_cases_still_gives_an_honest_interval():
    caught = np.ones(277, bool)
    gap = paired_recall_gap(caught, caught).gap
    assert gap.estimate == 0 and gap.low < 0 < gap.high  # a Wald interval would be [0, 0]


def test_paired_interval_covers_the_true_gap():
    rng = np.random.default_rng(5)
    n, covered, trials = 60, 0, 1500
    # cell probabilities: both, a only, b only, neither -> true gap = 0.15 - 0.05
    cells = np.array([0.5, 0.05, 0.15, 0.3])
    for _ in range(trials):
        kind = rng.choice(4, size=n, p=cells)
        a = (kind == 0) | (kind == 1)
        b = (kind == 0) | (kind == 2)
        gap = paired_recall_gap(a, b).gap
        covered += gap.low <= 0.10 <= gap.high
    assert 0.93 <= covered / trials <= 0.985, covered / trials
