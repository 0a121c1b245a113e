"""One arm's detection metrics with 95% intervals, from its confusion counts alone.

Precision, recall and alert rate are binomial proportions: Wilson score intervals (honest near 0
and 1 and for a few dozen frauds). F1 and the value detection rate have no binomial form of
their own, so each is mapped onto one (see the functions) rather than bootstrapped: the counts
are all there is, and the result stays a pure function of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from fraudgate.analysis.counts import ConfusionCounts, Interval


def wilson_bounds(p: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score bounds for a proportion p observed on n (possibly effective) trials.

    The closed form (what statsmodels' ``proportion_confint(method="wilson")`` computes),
    written out because the decision rule evaluates it at every look.
    """
    z = NormalDist().inv_cdf(1 - alpha / 2)
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_interval(successes: int, trials: int, alpha: float = 0.05) -> Interval:
    """Wilson score interval: honest near 0 and 1 and for small counts (e.g. 30 fraud cases)."""
    if trials == 0:
        return Interval(float("nan"), 0.0, 1.0)
    p = successes / trials
    return Interval(p, *wilson_bounds(p, trials, alpha))


@dataclass(frozen=True, slots=True)
class ArmMetrics:
    """An arm's sample sizes and its metrics, each an estimate with a (1 - alpha) interval."""

    decisions: int
    labelled: int
    frauds: int
    alerts: int
    precision: Interval
    recall: Interval
    f1: Interval
    alert_rate: Interval
    value_detection_rate: Interval


def f1_interval(counts: ConfusionCounts, alpha: float = 0.05) -> Interval:
    """F1 with an interval from the Wilson interval of J = tp / (tp + fp + fn).

    F1 = 2 tp / (2 tp + fp + fn) = 2 J / (1 + J), an increasing function of J, and J is a
    binomial proportion (of the cases that are flagged or fraud, the share that are both). So
    the image of J's Wilson interval under 2J/(1+J) is an interval for F1 with Wilson's
    coverage, with no delta-method linearisation and no bootstrap noise.
    """
    jaccard = proportion_interval(counts.tp, counts.tp + counts.fp + counts.fn, alpha)
    return Interval(counts.f1, *(2 * j / (1 + j) for j in (jaccard.low, jaccard.high)))


def value_detection_interval(counts: ConfusionCounts, alpha: float = 0.05) -> Interval:
    """Share of the fraud amount caught, tp_amount / (tp_amount + fn_amount), with an interval.

    A ratio estimator R = sum(c x) / sum(x) over the frauds (x the amount, c = 1 if caught).
    Its delta-method variance, sum((c x - R x)^2) / (sum x)^2 = ((1-R)^2 tp_amount_sq +
    R^2 fn_amount_sq) / (sum x)^2, defines an effective number of frauds n_eff = R(1-R) / var
    and the interval is Wilson's at (R, n_eff): with equal amounts it is exactly the recall's
    Wilson interval, and unlike a Wald interval it does not collapse when every fraud was
    caught (then n_eff is Kish's (sum x)^2 / sum x^2). With heavy-tailed amounts and a few
    hundred frauds it undercovers slightly (as any ratio estimator does). Without second
    moments in the counts (``*_amount_sq`` all zero while amounts are not) the bounds are nan.
    """
    caught, missed = counts.tp_amount, counts.fn_amount
    total = caught + missed
    if counts.frauds == 0 or total <= 0:
        return Interval(math.nan, 0.0, 1.0)
    ratio = caught / total
    squares = counts.tp_amount_sq + counts.fn_amount_sq
    if squares <= 0:
        return Interval(ratio, math.nan, math.nan)
    spread = ((1 - ratio) ** 2 * counts.tp_amount_sq + ratio**2 * counts.fn_amount_sq) / total**2
    n_eff = ratio * (1 - ratio) / spread if spread > 0 else total**2 / squares
    return Interval(ratio, *wilson_bounds(ratio, n_eff, alpha))


def arm_metrics(counts: ConfusionCounts, alpha: float = 0.05) -> ArmMetrics:
    """Precision, recall, F1, alert rate and value detection rate of one arm.

    Precision, recall, F1 and value detection use labelled decisions only; the alert rate uses
    every decision (labelled or pending), since flagging needs no label.
    """
    return ArmMetrics(
        decisions=counts.total,
        labelled=counts.labelled,
        frauds=counts.frauds,
        alerts=counts.alerts,
        precision=proportion_interval(counts.tp, counts.tp + counts.fp, alpha),
        recall=proportion_interval(counts.tp, counts.frauds, alpha),
        f1=f1_interval(counts, alpha),
        alert_rate=proportion_interval(counts.alerts, counts.total, alpha),
        value_detection_rate=value_detection_interval(counts, alpha),
    )
