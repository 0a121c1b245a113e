"""Power: how many labelled frauds, and how many days, to detect a recall difference.

Side by side for the two designs fraudgate can run:

- split: independent arms (challenger share ``s`` of the traffic). statsmodels' NormalIndPower
  on Cohen's effect size h = 2 asin(sqrt(p_b)) - 2 asin(sqrt(p_a)) (the arcsine transform
  makes the variance of each arm's proportion 1/n).
- paired: both models on every fraud (the 100% shadow), McNemar's test. Connor (1987, "Sample
  size for testing differences in proportions for the paired-sample design", Biometrics 43:
  207-211):  n = ( z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2) )^2 / delta^2,
  with delta = p_b - p_a and psi the share of discordant frauds (caught by exactly one model).
  psi is what pairing buys: two similar models disagree on few frauds. Without an estimate,
  ``independent_discordance`` (models that err independently) is a pessimistic default.

Both assume a fixed horizon; ``sequential_frauds_needed`` gives the (larger) sample at which
the confidence sequence of ``fraudgate.analysis.sequential`` excludes zero with that power.
Days follow from fraud arrival per day and the label arrival curve (``LabelArrival``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from fraudgate.analysis.sequential import SequentialPlan, mixture_margin


@dataclass(frozen=True, slots=True)
class LabelArrival:
    """Share of a day's frauds whose label is known k days later: ``labelled_by_age[k]``.

    Non-decreasing in [0, 1]; past the last entry the last share holds. The default says every
    fraud is labelled after 30 days and none before: replace it with the observed curve
    (investigations within days for alerts, chargebacks over weeks for missed frauds).
    """

    labelled_by_age: tuple[float, ...] = (0.0,) * 30 + (1.0,)

    def __post_init__(self) -> None:
        shares = self.labelled_by_age
        if not shares or any(not 0 <= s <= 1 for s in shares):
            raise ValueError(
                f"LabelArrival.labelled_by_age: expected shares in [0, 1], got {shares}"
            )
        if any(b < a for a, b in zip(shares, shares[1:], strict=False)):
            raise ValueError(f"LabelArrival.labelled_by_age: expected non-decreasing, got {shares}")
        if shares[-1] <= 0:
            raise ValueError("LabelArrival.labelled_by_age: no fraud is ever labelled")

    def share(self, age_days: int) -> float:
        return self.labelled_by_age[min(age_days, len(self.labelled_by_age) - 1)]


@dataclass(frozen=True, slots=True)
class DesignPower:
    """Frauds (labelled, all arms together) and days one design needs."""

    design: str
    frauds_needed: int
    days_needed: int


@dataclass(frozen=True, slots=True)
class PowerComparison:
    """The split and the paired design for the same recall difference, alpha and power."""

    recall_a: float
    recall_b: float
    discordant_share: float
    alpha: float
    power: float
    split: DesignPower
    paired: DesignPower

    @property
    def frauds_ratio(self) -> float:
        """How many times more frauds the split design needs than the paired one."""
        return self.split.frauds_needed / self.paired.frauds_needed


def independent_discordance(recall_a: float, recall_b: float) -> float:
    """Discordant share if the models missed frauds independently (a pessimistic psi)."""
    return recall_a * (1 - recall_b) + recall_b * (1 - recall_a)


def split_frauds_needed(
    recall_a: float, recall_b: float, share_b: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Total frauds (both arms) for a two-sided test to detect recall_b - recall_a (split)."""
    if not 0 < share_b < 1:
        raise ValueError(f"share_b: expected 0 < share_b < 1, got {share_b}")
    if recall_a == recall_b:
        raise ValueError(f"recall_b: expected a difference from recall_a={recall_a}, got equal")
    effect = proportion_effectsize(recall_b, recall_a)
    ratio = share_b / (1 - share_b)
    nobs_a = NormalIndPower().solve_power(
        effect_size=effect, nobs1=None, alpha=alpha, power=power, ratio=ratio
    )
    return math.ceil(nobs_a * (1 + ratio))


def paired_frauds_needed(
    recall_a: float,
    recall_b: float,
    discordant_share: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Frauds scored by both models for McNemar's test to detect recall_b - recall_a (Connor)."""
    delta = recall_b - recall_a
    if delta == 0:
        raise ValueError(f"recall_b: expected a difference from recall_a={recall_a}, got equal")
    if not abs(delta) <= discordant_share <= 1:
        raise ValueError(
            f"discordant_share: expected |recall_b - recall_a| = {abs(delta):.4g} <= psi <= 1, "
            f"got {discordant_share}"
        )
    z_alpha, z_power = norm.isf(alpha / 2), norm.ppf(power)
    spread = z_alpha * math.sqrt(discordant_share) + z_power * math.sqrt(
        discordant_share - delta**2
    )
    return math.ceil(spread**2 / delta**2)


def sequential_frauds_needed(
    effect: float, sd: float, plan: SequentialPlan, power: float = 0.8, limit: int = 10**8
) -> int:
    """Smallest n at which the confidence sequence excludes 0 with probability ``power``.

    With the estimate ~ N(effect, sd^2 / n) at n, the sequence's lower end is above 0 with
    probability ``power`` once |effect| / sd >= margin(n) + z_power / sqrt(n); the right side
    decreases in n, so bisection finds the crossing. ``sd`` is per unit (as in the sequence).
    With few discordant pairs (a few dozen) the sequence reaches that power a little sooner.
    """
    if effect == 0 or sd <= 0:
        raise ValueError(f"effect, sd: expected effect != 0 and sd > 0, got {effect}, {sd}")
    target = abs(effect) / sd
    z_power = norm.ppf(power)

    def reached(n: int) -> bool:
        return mixture_margin(n, plan.rho, plan.alpha) + z_power / math.sqrt(n) <= target

    if not reached(limit):
        return limit
    low, high = 1, limit
    while low < high:
        mid = (low + high) // 2
        if reached(mid):
            high = mid
        else:
            low = mid + 1
    return low


def days_to_label(frauds_needed: int, frauds_per_day: float, arrival: LabelArrival) -> int:
    """Days of traffic until ``frauds_needed`` frauds carry a label.

    After T days, day t's frauds are T - t days old, so the labelled total is
    frauds_per_day * sum_{k < T} share(k).
    """
    if frauds_per_day <= 0:
        raise ValueError(f"frauds_per_day: expected > 0, got {frauds_per_day}")
    labelled, day = 0.0, 0
    while labelled < frauds_needed:
        labelled += frauds_per_day * arrival.share(day)
        day += 1
        if day > 100 * 365:
            raise ValueError(f"days_to_label: {frauds_needed} frauds need over 100 years")
    return day


def compare_designs(
    recall_a: float,
    recall_b: float,
    frauds_per_day: float,
    share_b: float = 0.2,
    discordant_share: float | None = None,
    arrival: LabelArrival | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerComparison:
    """Frauds and days to detect the difference with the split and with the paired design.

    ``frauds_per_day`` counts all traffic's frauds: the split sees all of them across its two
    arms, the 100% shadow pairs every one. ``discordant_share`` defaults to
    ``independent_discordance`` (pessimistic for the paired design).
    """
    arrival = arrival or LabelArrival()
    psi = (
        independent_discordance(recall_a, recall_b)
        if discordant_share is None
        else discordant_share
    )
    split_n = split_frauds_needed(recall_a, recall_b, share_b, alpha, power)
    paired_n = paired_frauds_needed(recall_a, recall_b, psi, alpha, power)
    return PowerComparison(
        recall_a=recall_a,
        recall_b=recall_b,
        discordant_share=psi,
        alpha=alpha,
        power=power,
        split=DesignPower("split", split_n, days_to_label(split_n, frauds_per_day, arrival)),
        paired=DesignPower("paired", paired_n, days_to_label(paired_n, frauds_per_day, arrival)),
    )
