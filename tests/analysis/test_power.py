import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from fraudgate.analysis.counts import PairedTable
from fraudgate.analysis.paired import paired_difference
from fraudgate.analysis.power import (
    LabelArrival,
    compare_designs,
    days_to_label,
    independent_discordance,
    paired_frauds_needed,
    sequential_frauds_needed,
    split_frauds_needed,
)
from fraudgate.analysis.sequential import SequentialPlan, paired_confidence_sequence

Z = norm.isf(0.025)
RECALL_A, RECALL_B = 0.70, 0.80
# the challenger catches most of what the champion catches: 1% of frauds only a, 11% only b
CELLS = np.array([0.69, 0.01, 0.11, 0.19])  # both, only a, only b, neither
PSI = CELLS[1] + CELLS[2]


def test_split_matches_statsmodels_normal_ind_power():
    n = split_frauds_needed(RECALL_A, RECALL_B, share_b=0.2)
    nobs_a = NormalIndPower().solve_power(
        proportion_effectsize(RECALL_B, RECALL_A), nobs1=None, alpha=0.05, power=0.8, ratio=0.25
    )
    assert n == math.ceil(nobs_a * 1.25)
    achieved = NormalIndPower().power(
        proportion_effectsize(RECALL_B, RECALL_A), nobs1=n / 1.25, alpha=0.05, ratio=0.25
    )
    assert achieved == pytest.approx(0.8, abs=0.002)


def test_paired_is_connors_formula():
    n = paired_frauds_needed(RECALL_A, RECALL_B, PSI)
    delta = RECALL_B - RECALL_A
    expected = (Z * math.sqrt(PSI) + norm.ppf(0.8) * math.sqrt(PSI - delta**2)) ** 2 / delta**2
    assert n == math.ceil(expected)
    with pytest.raises(ValueError, match="discordant_share"):
        paired_frauds_needed(0.7, 0.8, 0.05)


def _split_power(n_total: int, rng, replays: int = 4000) -> float:
    n_a = round(n_total * 0.8)
    n_b = n_total - n_a
    x_a, x_b = rng.binomial(n_a, RECALL_A, replays), rng.binomial(n_b, RECALL_B, replays)
    pooled = (x_a + x_b) / n_total
    z = (x_b / n_b - x_a / n_a) / np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return float(np.mean(np.abs(z) > Z))


def _paired_power(n: int, rng, replays: int = 1200) -> float:
    """Power of the test fraudgate applies (McNemar: exact when few discordant pairs)."""
    tables = rng.multinomial(n, CELLS, size=replays).tolist()
    return float(
        np.mean([paired_difference(PairedTable(*t)).mcnemar_p_value < 0.05 for t in tables])
    )


def test_paired_power_test_is_statsmodels_mcnemar():
    table = PairedTable(both=60, only_a=30, only_b=45, neither=15)
    expected = mcnemar([[60, 30], [45, 15]], exact=False, correction=True).pvalue
    assert paired_difference(table).mcnemar_p_value == pytest.approx(expected)


def test_simulation_confirms_both_designs_and_the_paired_needs_5x_fewer_frauds():
    rng = np.random.default_rng(12)
    result = compare_designs(RECALL_A, RECALL_B, frauds_per_day=20, discordant_share=PSI)
    assert _split_power(result.split.frauds_needed, rng) == pytest.approx(0.8, abs=0.03)
    assert _paired_power(result.paired.frauds_needed, rng) == pytest.approx(0.8, abs=0.04)
    assert result.frauds_ratio >= 5, result  # the shadow's pairing: same power, far fewer frauds
    assert result.split.days_needed > result.paired.days_needed
    # even for models that err independently (the pessimistic default) pairing needs fewer
    pessimistic = compare_designs(RECALL_A, RECALL_B, frauds_per_day=20)
    assert pessimistic.discordant_share == independent_discordance(RECALL_A, RECALL_B)
    assert pessimistic.paired.frauds_needed < pessimistic.split.frauds_needed


@pytest.mark.parametrize(
    ("cells", "low", "high"),
    [
        ((0.60, 0.08, 0.12, 0.20), 0.77, 0.83),  # ~1900 frauds: the normal approximation holds
        ((0.69, 0.01, 0.11, 0.19), 0.78, 0.92),  # ~170 frauds, ~20 discordant: conservative
    ],
)
def test_sequential_sample_size_gives_the_sequence_its_power(cells, low, high):
    cells = np.array(cells)
    recall_a, recall_b, psi = cells[0] + cells[1], cells[0] + cells[2], cells[1] + cells[2]
    delta = recall_b - recall_a
    plan = SequentialPlan(planned_n=paired_frauds_needed(recall_a, recall_b, psi))
    n = sequential_frauds_needed(delta, math.sqrt(psi - delta**2), plan)
    assert n > plan.planned_n  # always-valid costs frauds
    rng = np.random.default_rng(5)
    hits = sum(
        paired_confidence_sequence(PairedTable(*t), plan).sequence.low > 0
        for t in rng.multinomial(n, cells, size=2000).tolist()
    )
    assert low <= hits / 2000 <= high


def test_days_follow_fraud_arrival_and_label_delay():
    immediate = LabelArrival((1.0,))
    assert days_to_label(100, 20, immediate) == 5
    week = LabelArrival((0.0,) * 7 + (1.0,))
    assert days_to_label(100, 20, week) == 12
    gradual = LabelArrival((0.0, 0.5, 1.0))  # half after one day, all after two
    assert days_to_label(40, 20, gradual) == 4  # 0, 10, 30 labelled after 1-3 days; 50 after 4
    assert days_to_label(100, 20, LabelArrival()) == 35  # default: all labelled at 30 days
    with pytest.raises(ValueError, match="non-decreasing"):
        LabelArrival((0.5, 0.2))
