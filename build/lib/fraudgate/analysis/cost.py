"""Business impact: money per day and per year from the counts, with intervals.

Every labelled decision has a value against running no model at all:

    caught fraud (tp)      + loss_share * amount + loss_per_fraud - investigation_cost
    false alarm (fp)       - investigation_cost - friction_cost
    missed fraud (fn), tn  0   (what would have happened without the model)

and a cost (missed_loss + investigation + friction). The mean per transaction, times
transactions per day, is the value per day; its interval is the normal one on the mean, from
the counts' sums and sums of squares (each cell's value is linear in the amount, so the counts'
``*_amount`` and ``*_amount_sq`` carry everything). Unlabelled decisions are assumed to behave
like labelled ones (the analysis runs on matured labels). No constant is hidden: every price is
a field of ``CostModel``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from fraudgate.analysis.counts import ConfusionCounts, Interval, PairedCounts

DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class CostModel:
    """Prices of the outcomes (currency units).

    - ``loss_share``: share of a fraud's amount lost when it is missed (and saved when caught);
      1.0 = the whole amount (default).
    - ``loss_per_fraud``: a fixed loss per missed fraud on top (default 0; use it when amounts
      are unknown, as the seed did with $150).
    - ``investigation_cost``: per alert, every flagged transaction is investigated (default 25,
      the seed's figure).
    - ``friction_cost``: per false positive, a declined legitimate customer (default 0: the seed
      priced none; set it, friction is real).
    """

    loss_share: float = 1.0
    loss_per_fraud: float = 0.0
    investigation_cost: float = 25.0
    friction_cost: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss_share", "loss_per_fraud", "investigation_cost", "friction_cost"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"CostModel.{name}: expected >= 0, got {value}")


# The seed's example (documented, not a default): $150 lost per missed fraud whatever its amount,
# $25 per investigation, no friction, at 10,000 transactions a day with 1% fraud.
SEED_COST_MODEL = CostModel(loss_share=0.0, loss_per_fraud=150.0, investigation_cost=25.0)
SEED_TRANSACTIONS_PER_DAY = 10_000
SEED_FRAUD_RATE = 0.01


@dataclass(frozen=True, slots=True)
class MoneyEstimate:
    """One quantity per transaction, per day and per year, each with its interval."""

    per_transaction: Interval
    per_day: Interval
    per_year: Interval


@dataclass(frozen=True, slots=True)
class ArmValue:
    """An arm's net value against no model, its cost, and the cost's parts per day."""

    transactions_per_day: float
    net_value: MoneyEstimate
    cost: MoneyEstimate
    saved_loss_per_day: float
    missed_loss_per_day: float
    investigation_per_day: float
    friction_per_day: float


@dataclass(frozen=True, slots=True)
class _Sums:
    """n units and the sum and sum of squares of one per-unit value: adds cell by cell."""

    n: float = 0.0
    total: float = 0.0
    squares: float = 0.0

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(self.n + other.n, self.total + other.total, self.squares + other.squares)


def _cell(count: float, amount: float, amount_sq: float, slope: float, offset: float) -> _Sums:
    """Sums of v = slope * amount + offset over a cell, from its count and amount moments."""
    total = slope * amount + offset * count
    squares = slope**2 * amount_sq + 2 * slope * offset * amount + offset**2 * count
    return _Sums(count, total, squares)


def _zeros(count: float) -> _Sums:
    return _Sums(count, 0.0, 0.0)


def _estimate(sums: _Sums, per_day: float, alpha: float, moments_known: bool) -> MoneyEstimate:
    if sums.n == 0:
        nothing = Interval(math.nan, math.nan, math.nan)
        return MoneyEstimate(nothing, nothing, nothing)
    mean = sums.total / sums.n
    variance = max(sums.squares / sums.n - mean * mean, 0.0)
    half = NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(variance / sums.n)
    if not moments_known:
        half = math.nan

    def scaled(k: float) -> Interval:
        return Interval(mean * k, (mean - half) * k, (mean + half) * k)

    return MoneyEstimate(scaled(1.0), scaled(per_day), scaled(per_day * DAYS_PER_YEAR))


def _moments_known(model: CostModel, amounts: float, squares: float) -> bool:
    """Amount-weighted values need second moments; counts without them give nan bounds."""
    return model.loss_share == 0 or amounts == 0 or squares > 0


def _volume(total: int, days: float, transactions_per_day: float | None) -> float:
    if transactions_per_day is not None:
        return transactions_per_day
    if not days > 0:
        raise ValueError(f"days: expected > 0 (the window the counts cover), got {days}")
    return total / days


def arm_value(
    counts: ConfusionCounts,
    model: CostModel,
    days: float,
    transactions_per_day: float | None = None,
    alpha: float = 0.05,
) -> ArmValue:
    """Net value and cost per day and year of one arm, over a window of ``days``.

    ``transactions_per_day`` defaults to the arm's own decisions per day (``counts.total /
    days``); pass the whole traffic's to ask "what if every transaction went to this model".
    """
    volume = _volume(counts.total, days, transactions_per_day)
    m, c = model, counts
    alarm = m.investigation_cost + m.friction_cost
    catch = m.loss_per_fraud - m.investigation_cost
    value = (
        _cell(c.tp, c.tp_amount, c.tp_amount_sq, m.loss_share, catch)
        + _cell(c.fp, 0.0, 0.0, 0.0, -alarm)
        + _zeros(c.fn + c.tn)
    )
    cost = (
        _cell(c.tp, 0.0, 0.0, 0.0, m.investigation_cost)
        + _cell(c.fp, 0.0, 0.0, 0.0, alarm)
        + _cell(c.fn, c.fn_amount, c.fn_amount_sq, m.loss_share, m.loss_per_fraud)
        + _zeros(c.tn)
    )
    n = c.labelled
    per_unit_day = volume / n if n else math.nan
    known = _moments_known(m, c.tp_amount + c.fn_amount, c.tp_amount_sq + c.fn_amount_sq)
    return ArmValue(
        transactions_per_day=volume,
        net_value=_estimate(value, volume, alpha, known),
        cost=_estimate(cost, volume, alpha, known),
        saved_loss_per_day=(m.loss_share * c.tp_amount + m.loss_per_fraud * c.tp) * per_unit_day,
        missed_loss_per_day=(m.loss_share * c.fn_amount + m.loss_per_fraud * c.fn) * per_unit_day,
        investigation_per_day=m.investigation_cost * (c.tp + c.fp) * per_unit_day,
        friction_per_day=m.friction_cost * c.fp * per_unit_day,
    )


def split_value_difference(
    a: ConfusionCounts,
    b: ConfusionCounts,
    model: CostModel,
    days: float,
    transactions_per_day: float | None = None,
    alpha: float = 0.05,
) -> MoneyEstimate:
    """Net value of b minus a per day and year (independent arms: the variances add).

    At ``transactions_per_day`` (default: both arms' decisions per day), i.e. the value of
    sending the whole traffic to b instead of a.
    """
    volume = _volume(a.total + b.total, days, transactions_per_day)
    va, vb = (arm_value(x, model, days, volume, alpha) for x in (a, b))
    ea, eb = va.net_value.per_transaction, vb.net_value.per_transaction
    z = NormalDist().inv_cdf(1 - alpha / 2)
    half = math.hypot((ea.high - ea.estimate) / z, (eb.high - eb.estimate) / z) * z
    diff = eb.estimate - ea.estimate

    def scaled(k: float) -> Interval:
        return Interval(diff * k, (diff - half) * k, (diff + half) * k)

    return MoneyEstimate(scaled(1.0), scaled(volume), scaled(volume * DAYS_PER_YEAR))


def paired_value_difference(
    counts: PairedCounts,
    model: CostModel,
    days: float,
    transactions_per_day: float | None = None,
    alpha: float = 0.05,
) -> MoneyEstimate:
    """Net value of b minus a on the same labelled transactions (the shadow's pairing).

    Per transaction the difference is 0 where the models agree; on a fraud only b flags it is
    loss_share * x + loss_per_fraud - investigation_cost (minus that where only a flags); on
    a legitimate transaction only b flags it is -(investigation + friction) (plus where only a).
    """
    f, g, m = counts.fraud, counts.legit, model
    volume = _volume(counts.transactions.total, days, transactions_per_day)
    catch = m.loss_per_fraud - m.investigation_cost
    alarm = m.investigation_cost + m.friction_cost
    sums = (
        _cell(f.only_b, f.only_b_amount, f.only_b_amount_sq, m.loss_share, catch)
        + _cell(f.only_a, f.only_a_amount, f.only_a_amount_sq, -m.loss_share, -catch)
        + _cell(g.only_b, 0.0, 0.0, 0.0, -alarm)
        + _cell(g.only_a, 0.0, 0.0, 0.0, alarm)
        + _zeros(f.both + f.neither + g.both + g.neither)
    )
    amounts = f.only_a_amount + f.only_b_amount
    known = _moments_known(m, amounts, f.only_a_amount_sq + f.only_b_amount_sq)
    return _estimate(sums, volume, alpha, known)
