import math

import numpy as np
import pytest

from fraudgate.analysis.cost import (
    DAYS_PER_YEAR,
    SEED_COST_MODEL,
    SEED_FRAUD_RATE,
    SEED_TRANSACTIONS_PER_DAY,
    CostModel,
    arm_value,
    paired_value_difference,
    split_value_difference,
)
from fraudgate.analysis.counts import ConfusionCounts, PairedCounts, PairedTable

MODEL = CostModel(loss_share=0.9, loss_per_fraud=10.0, investigation_cost=25.0, friction_cost=5.0)


def _rows(rng, n=20_000):
    """Per-transaction rows: fraud label, flagged by a, flagged by b, amount."""
    fraud = rng.random(n) < 0.01
    amount = rng.lognormal(4.0, 0.8, n)
    a = np.where(fraud, rng.random(n) < 0.7, rng.random(n) < 0.02)
    b = np.where(fraud, a | (rng.random(n) < 0.5), a & (rng.random(n) < 0.9))
    return fraud, a, b, amount


def _counts(fraud, flagged, amount):
    cells = {
        "tp": fraud & flagged,
        "fp": ~fraud & flagged,
        "fn": fraud & ~flagged,
        "tn": ~fraud & ~flagged,
    }
    return ConfusionCounts(
        **{k: int(v.sum()) for k, v in cells.items()},
        **{f"{k}_amount": float(amount[v].sum()) for k, v in cells.items()},
        **{f"{k}_amount_sq": float((amount[v] ** 2).sum()) for k, v in cells.items()},
    )


def _row_values(fraud, flagged, amount, m=MODEL):
    caught = m.loss_share * amount + m.loss_per_fraud - m.investigation_cost
    return np.select(
        [fraud & flagged, ~fraud & flagged],
        [caught, -(m.investigation_cost + m.friction_cost)],
        0.0,
    )


def test_arm_value_equals_the_per_row_computation():
    rng = np.random.default_rng(1)
    fraud, a, _, amount = _rows(rng)
    result = arm_value(_counts(fraud, a, amount), MODEL, days=2.0)
    values = _row_values(fraud, a, amount)
    se = values.std() / math.sqrt(len(values))
    per_day = len(values) / 2.0
    assert result.transactions_per_day == per_day
    assert result.net_value.per_transaction.estimate == pytest.approx(values.mean())
    half = result.net_value.per_transaction.high - values.mean()
    assert half == pytest.approx(1.959964 * se, rel=1e-5)
    assert result.net_value.per_day.estimate == pytest.approx(values.mean() * per_day)
    assert result.net_value.per_year.estimate == pytest.approx(
        values.mean() * per_day * DAYS_PER_YEAR
    )
    # cost = missed loss + investigation + friction; value + cost = the loss with no model
    costs = np.select(
        [fraud & a, ~fraud & a, fraud & ~a],
        [25.0, 30.0, 0.9 * amount + 10.0],
        0.0,
    )
    assert result.cost.per_transaction.estimate == pytest.approx(costs.mean())
    no_model = (0.9 * amount[fraud].sum() + 10.0 * fraud.sum()) / len(values)
    assert (
        result.net_value.per_transaction.estimate + result.cost.per_transaction.estimate
    ) == pytest.approx(no_model)
    parts = result.missed_loss_per_day + result.investigation_per_day + result.friction_per_day
    assert parts == pytest.approx(result.cost.per_day.estimate)


def test_differences_split_and_paired_against_per_row_values():
    rng = np.random.default_rng(2)
    fraud, a, b, amount = _rows(rng)
    va, vb = _row_values(fraud, a, amount), _row_values(fraud, b, amount)
    # paired: the same transactions, the variance of the per-row difference
    table = lambda mask: PairedTable.from_flags(a[mask], b[mask], amount[mask])  # noqa: E731
    paired = paired_value_difference(
        PairedCounts(fraud=table(fraud), legit=table(~fraud)), MODEL, days=1.0
    )
    d = vb - va
    assert paired.per_transaction.estimate == pytest.approx(d.mean())
    assert paired.per_transaction.high - d.mean() == pytest.approx(
        1.959964 * d.std() / math.sqrt(len(d)), rel=1e-5
    )
    # split: half the rows to each arm, the variances add
    half = len(fraud) // 2
    split = split_value_difference(
        _counts(fraud[:half], a[:half], amount[:half]),
        _counts(fraud[half:], b[half:], amount[half:]),
        MODEL,
        days=1.0,
    )
    xa, xb = va[:half], vb[half:]
    se = math.sqrt(xa.var() / len(xa) + xb.var() / len(xb))
    assert split.per_transaction.estimate == pytest.approx(xb.mean() - xa.mean())
    assert split.per_transaction.high - split.per_transaction.estimate == pytest.approx(
        1.959964 * se, rel=1e-5
    )
    # pairing removes the shared variation: a narrower interval for the same question
    assert (paired.per_transaction.high - paired.per_transaction.low) < (
        split.per_transaction.high - split.per_transaction.low
    )


def test_the_seed_example():
    # the seed: 10,000 transactions a day, 1% fraud, $150 per missed fraud, $25 per alert; its
    # 30 frauds read as a 3,000-transaction holdout (1% fraud) both models scored
    frauds_per_day = SEED_TRANSACTIONS_PER_DAY * SEED_FRAUD_RATE
    per_day = SEED_TRANSACTIONS_PER_DAY
    v1 = ConfusionCounts(tp=22, fn=8, fp=1, tn=2969)
    v2 = ConfusionCounts(tp=30, fn=0, fp=1, tn=2969)
    a = arm_value(v1, SEED_COST_MODEL, days=1.0, transactions_per_day=per_day)
    b = arm_value(v2, SEED_COST_MODEL, days=1.0, transactions_per_day=per_day)
    # v2 catches 8 more frauds in 30: (8/30) * 100 frauds a day * (150 - 25) = $3,333 a day
    gain = b.net_value.per_day.estimate - a.net_value.per_day.estimate
    assert gain == pytest.approx(8 / 30 * frauds_per_day * 125)
    # as independent arms, 30 frauds cannot tell: about $1.2M a year, interval across zero
    split = split_value_difference(v1, v2, SEED_COST_MODEL, days=1.0, transactions_per_day=per_day)
    assert split.per_year.estimate == pytest.approx(gain * 365)
    assert split.per_year.low < 0 < split.per_year.high
    # on the same transactions (the 8 frauds only v2 caught, the one false alarm shared) the
    # gain is positive at its lower bound, but the interval is wide
    paired = paired_value_difference(
        PairedCounts(
            fraud=PairedTable(both=22, only_b=8),
            legit=PairedTable(both=1, neither=2969),
        ),
        SEED_COST_MODEL,
        days=1.0,
        transactions_per_day=per_day,
    )
    assert paired.per_year.estimate == pytest.approx(gain * 365)
    assert 0 < paired.per_year.low < 0.6 * paired.per_year.estimate
    assert paired.per_year.high > 1.4 * paired.per_year.estimate


def test_missing_second_moments_and_validation():
    no_moments = ConfusionCounts(tp=5, fn=2, tn=100, tp_amount=500.0, fn_amount=200.0)
    result = arm_value(no_moments, CostModel(), days=1.0)
    assert not math.isnan(result.net_value.per_day.estimate)
    assert math.isnan(result.net_value.per_day.low)
    fixed_only = arm_value(no_moments, SEED_COST_MODEL, days=1.0)  # amounts unused: fine
    assert not math.isnan(fixed_only.net_value.per_day.low)
    with pytest.raises(ValueError, match="CostModel.friction_cost"):
        CostModel(friction_cost=-1.0)
    with pytest.raises(ValueError, match="days"):
        arm_value(no_moments, CostModel(), days=0.0)
