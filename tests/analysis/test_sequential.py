import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from statsmodels.stats.proportion import proportions_ztest

from fraudgate.analysis.counts import ConfusionCounts, PairedTable
from fraudgate.analysis.sequential import (
    SequentialPlan,
    mixture_margin,
    paired_confidence_sequence,
    paired_value_confidence_sequence,
    split_confidence_sequence,
    split_value_confidence_sequence,
)

LOOKS, REPLAYS, ALPHA = 30, 2000, 0.05


def _upper_95(hits: int, trials: int) -> float:
    return binomtest(hits, trials).proportion_ci(0.95, method="wilson").high


def test_rho_is_the_papers_closed_form_and_tightest_near_the_plan():
    plan = SequentialPlan(planned_n=500, alpha=0.05)
    log_alpha = math.log(0.05)
    assert plan.rho**2 == pytest.approx((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / 500)
    # the sequence tuned for 500 is (near) the narrowest of all tunings at n = 500
    plans = (50, 200, 500, 1250, 5000)
    widths = {m: mixture_margin(500, SequentialPlan(m).rho, 0.05) for m in plans}
    assert widths[500] <= min(widths.values()) * 1.001
    with pytest.raises(ValueError, match="planned_n"):
        SequentialPlan(planned_n=0)


@pytest.mark.parametrize("cells", [(300, 10, 25, 65), (40, 1, 6, 3), (900, 50, 52, 200)])
def test_paired_sequence_contains_the_fixed_interval(cells):
    table = PairedTable(*cells)
    cs = paired_confidence_sequence(table, SequentialPlan(planned_n=400))
    n = table.total
    d = np.array([1] * table.only_b + [-1] * table.only_a + [0] * (table.both + table.neither))
    assert cs.sequence.estimate == pytest.approx(d.mean())
    assert cs.sd == pytest.approx(d.std())  # the plug-in sd of the per-fraud differences
    z = norm.isf(0.025) * d.std() / math.sqrt(n)
    assert (cs.fixed.low, cs.fixed.high) == pytest.approx((d.mean() - z, d.mean() + z))
    assert cs.sequence.low < cs.fixed.low <= cs.sequence.estimate <= cs.fixed.high
    assert cs.fixed.high < cs.sequence.high
    assert (cs.p_value < 0.05) == cs.excludes_zero


def test_split_sequence_contains_the_fixed_interval():
    cs = split_confidence_sequence(560, 800, 160, 200, SequentialPlan(planned_n=1000))
    var = 0.7 * 0.3 / 800 + 0.8 * 0.2 / 200
    assert cs.sequence.estimate == pytest.approx(0.1)
    assert cs.sd == pytest.approx(math.sqrt(1000 * var))
    assert cs.fixed.high - cs.fixed.low == pytest.approx(2 * norm.isf(0.025) * math.sqrt(var))
    assert cs.sequence.low < cs.fixed.low and cs.fixed.high < cs.sequence.high
    assert cs.n == 1000 and cs.design == "split"


def test_the_sequence_is_uninformative_until_there_is_data():
    assert not paired_confidence_sequence(PairedTable(only_b=1), SequentialPlan(100)).excludes_zero
    # three frauds, all caught by b only: the variance floor keeps this from "proving" anything
    assert not paired_confidence_sequence(PairedTable(only_b=3), SequentialPlan(100)).excludes_zero
    assert not split_confidence_sequence(3, 3, 0, 3, SequentialPlan(100)).excludes_zero


@pytest.mark.parametrize(("replays", "looks"), [(REPLAYS, LOOKS), (500, 50)])
def test_paired_sequence_keeps_alpha_under_daily_looks_while_the_naive_test_inflates(
    replays, looks
):
    rng = np.random.default_rng(2026 + looks)
    # two equally good models on the same frauds (~20 a day): cells both, a only, b only, neither
    per_day = rng.poisson(20, size=(replays, looks))
    cells = rng.multinomial(per_day, [0.6, 0.06, 0.06, 0.28]).cumsum(axis=1)
    plan = SequentialPlan(planned_n=20 * looks, alpha=ALPHA)
    sequential = 0
    for replay in cells:
        for both, only_a, only_b, neither in replay.tolist():
            table = PairedTable(both, only_a, only_b, neither)
            if paired_confidence_sequence(table, plan).excludes_zero:
                sequential += 1
                break
    # the naive fixed-horizon McNemar z-test, checked at every look
    only_a, only_b = cells[..., 1], cells[..., 2]
    z = (only_b - only_a) / np.sqrt(np.maximum(only_a + only_b, 1))
    naive = int(np.any(np.abs(z) > norm.isf(ALPHA / 2), axis=1).sum())
    assert sequential / replays <= ALPHA, sequential / replays
    assert _upper_95(sequential, replays) <= 0.06 or replays < REPLAYS
    assert naive / replays > 2 * ALPHA, naive / replays  # checking daily inflates the fixed test


@pytest.mark.parametrize(("replays", "looks"), [(REPLAYS, LOOKS), (500, 50)])
def test_split_sequence_keeps_alpha_under_daily_looks_while_the_naive_test_inflates(replays, looks):
    rng = np.random.default_rng(7 + looks)
    frauds = rng.poisson(20, size=(replays, looks))
    n_a = rng.binomial(frauds, 0.8)  # 80/20 split of the frauds, same recall in both arms
    n_b = frauds - n_a
    x_a, x_b = rng.binomial(n_a, 0.7), rng.binomial(n_b, 0.7)
    n_a, n_b, x_a, x_b = (np.cumsum(v, axis=1) for v in (n_a, n_b, x_a, x_b))
    plan = SequentialPlan(planned_n=20 * looks, alpha=ALPHA)
    sequential = 0
    for r in range(replays):
        columns = (x_a[r].tolist(), n_a[r].tolist(), x_b[r].tolist(), n_b[r].tolist())
        looks_r = zip(*columns, strict=True)
        for counts in looks_r:
            if split_confidence_sequence(*counts, plan).excludes_zero:
                sequential += 1
                break
    # the naive pooled two-proportion z-test (as proportions_ztest), checked at every look
    pooled = (x_a + x_b) / np.maximum(n_a + n_b, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n_a, 1) + 1 / np.maximum(n_b, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (x_b / np.maximum(n_b, 1) - x_a / np.maximum(n_a, 1)) / se, 0.0)
    naive = int(np.any(np.abs(z) > norm.isf(ALPHA / 2), axis=1).sum())
    assert sequential / replays <= ALPHA, sequential / replays
    assert _upper_95(sequential, replays) <= 0.06 or replays < REPLAYS
    assert naive / replays > 2 * ALPHA, naive / replays


def test_the_naive_z_in_the_simulation_is_statsmodels_z():
    x_a, n_a, x_b, n_b = 300, 420, 80, 101
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z, _ = proportions_ztest([x_b, x_a], [n_b, n_a])
    assert (x_b / n_b - x_a / n_a) / se == pytest.approx(z)


def test_the_sequence_finds_a_real_difference():
    rng = np.random.default_rng(3)
    plan = SequentialPlan(planned_n=600)
    found = 0
    for _ in range(200):
        cells = rng.multinomial(600, [0.6, 0.03, 0.09, 0.28])  # recall gap of 6 points
        found += paired_confidence_sequence(PairedTable(*cells), plan).sequence.low > 0
    assert found / 200 > 0.8


def test_the_sequence_covers_a_true_difference_at_every_look_at_once():
    rng = np.random.default_rng(17)
    replays, looks = 600, 30
    cells = rng.multinomial(np.full((replays, looks), 20), [0.6, 0.03, 0.09, 0.28]).cumsum(1)
    plan = SequentialPlan(planned_n=600)
    always = 0
    for replay in cells.tolist():
        always += all(
            cs.sequence.low <= 0.06 <= cs.sequence.high
            for cs in (paired_confidence_sequence(PairedTable(*c), plan) for c in replay)
        )
    assert always / replays >= 0.95


def _paired_with_amounts(cells: tuple[int, int, int, int], amount: float) -> PairedTable:
    both, only_a, only_b, neither = cells
    return PairedTable(
        both, only_a, only_b, neither,
        *(k * amount for k in cells),
        *(k * amount**2 for k in cells),
    )  # fmt: skip


def test_value_sequences_with_equal_amounts_are_the_recall_sequences():
    plan = SequentialPlan(planned_n=500)
    cells = (300, 10, 25, 65)
    value = paired_value_confidence_sequence(_paired_with_amounts(cells, 150.0), plan)
    recall = paired_confidence_sequence(PairedTable(*cells), plan)
    assert value.sequence.low == pytest.approx(recall.sequence.low)
    assert value.sequence.high == pytest.approx(recall.sequence.high)

    def arm(tp: int, fn: int, x: float = 150.0) -> ConfusionCounts:
        return ConfusionCounts(
            tp=tp, fn=fn, tp_amount=tp * x, fn_amount=fn * x,
            tp_amount_sq=tp * x * x, fn_amount_sq=fn * x * x,
        )  # fmt: skip

    value = split_value_confidence_sequence(arm(560, 240), arm(160, 40), plan)
    recall = split_confidence_sequence(560, 800, 160, 200, plan)
    assert (value.sequence.low, value.sequence.high) == pytest.approx(
        (recall.sequence.low, recall.sequence.high)
    )
    no_moments = ConfusionCounts(tp=5, fn=5, tp_amount=10.0, fn_amount=10.0)
    assert not split_value_confidence_sequence(no_moments, no_moments, plan).excludes_zero


def test_paired_value_sequence_keeps_alpha_under_daily_looks():
    rng = np.random.default_rng(23)
    replays, looks, per_day = 500, 30, 20
    kinds = rng.choice(4, size=(replays, looks * per_day), p=[0.6, 0.06, 0.06, 0.28])
    amounts = rng.lognormal(4.0, 0.8, size=kinds.shape)
    ends = slice(per_day - 1, None, per_day)

    def cumulative(values):
        return values.cumsum(axis=1)[:, ends]

    columns = []
    for power in (0, 1, 2):
        for k in range(4):
            columns.append(cumulative(np.where(kinds == k, amounts**power, 0.0)))
    plan = SequentialPlan(planned_n=looks * per_day)
    stopped = 0
    for r in range(replays):
        for t in range(looks):
            c = [col[r, t] for col in columns]
            table = PairedTable(*(int(x) for x in c[:4]), *c[4:])
            if paired_value_confidence_sequence(table, plan).excludes_zero:
                stopped += 1
                break
    assert stopped / replays <= ALPHA
