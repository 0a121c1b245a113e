"""Split comparison: two independent arms (different transactions), challenger b vs champion a.

Differences b - a get Newcombe's hybrid score interval (Newcombe 1998, method 10 for
independent proportions: built from each arm's Wilson interval, honest with few events). The
test of "no difference" is the pooled two-proportion z-test, or Fisher's exact test when the
table is small; the relative lift b/a - 1 gets a delta-method interval on the log ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import fisher_exact, norm
from statsmodels.stats.proportion import proportions_ztest

from fraudgate.analysis.counts import ConfusionCounts, Interval
from fraudgate.analysis.proportions import proportion_interval

# Fisher's exact test replaces the z-test when any cell of the 2x2 table has an expected count
# (under "no difference", from the pooled proportion) below this: Cochran's rule of thumb for
# when the normal approximation is not to be trusted.
MIN_EXPECTED_FOR_Z = 5.0


@dataclass(frozen=True, slots=True)
class ProportionComparison:
    """p_b - p_a, its test and b's relative lift over a.

    ``test`` names the test whose p-value is ``p_value`` (``"z"`` or ``"fisher"``); both
    p-values are kept so a reviewer can see they agree or why they differ.
    """

    successes_a: int
    trials_a: int
    successes_b: int
    trials_b: int
    difference: Interval
    relative_lift: Interval
    z_statistic: float
    z_p_value: float
    fisher_p_value: float
    test: str
    p_value: float


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """Recall, precision and alert rate of challenger b against champion a (split design)."""

    recall: ProportionComparison
    precision: ProportionComparison
    alert_rate: ProportionComparison


def newcombe_difference(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, alpha: float = 0.05
) -> Interval:
    """p_b - p_a with Newcombe's hybrid score interval (Newcombe 1998, method 10)."""
    a = proportion_interval(successes_a, trials_a, alpha)
    b = proportion_interval(successes_b, trials_b, alpha)
    if trials_a == 0 or trials_b == 0:
        return Interval(math.nan, -1.0, 1.0)
    diff = b.estimate - a.estimate
    below = math.hypot(b.estimate - b.low, a.high - a.estimate)
    above = math.hypot(b.high - b.estimate, a.estimate - a.low)
    return Interval(diff, diff - below, diff + above)


def relative_lift(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, alpha: float = 0.05
) -> Interval:
    """p_b / p_a - 1 with a delta-method interval on log(p_b / p_a).

    var(log ratio) = 1/x_b - 1/n_b + 1/x_a - 1/n_a (Katz's log method). When either arm has no
    successes, 0.5 is added to that arm's successes and trials (statsmodels' "log-adjusted") so
    the interval stays finite; the estimate stays the observed ratio (nan if p_a = 0).
    """
    if trials_a == 0 or trials_b == 0:
        return Interval(math.nan, -1.0, math.inf)
    estimate = (successes_b / trials_b) / (successes_a / trials_a) - 1 if successes_a else math.nan
    half = 0.5 if successes_a == 0 or successes_b == 0 else 0.0
    xa, na, xb, nb = successes_a + half, trials_a + half, successes_b + half, trials_b + half
    log_ratio = math.log((xb / nb) / (xa / na))
    z = norm.isf(alpha / 2)
    width = z * math.sqrt(1 / xb - 1 / nb + 1 / xa - 1 / na)
    return Interval(estimate, math.exp(log_ratio - width) - 1, math.exp(log_ratio + width) - 1)


def compare_proportions(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, alpha: float = 0.05
) -> ProportionComparison:
    """Compare two independent proportions: difference, lift, z-test or Fisher (documented rule).

    The z-test pools the proportions under the null (``proportions_ztest``); Fisher's exact
    test is two-sided. ``test`` is ``"fisher"`` when an expected cell count is below
    ``MIN_EXPECTED_FOR_Z``, ``"z"`` otherwise.
    """
    difference = newcombe_difference(successes_a, trials_a, successes_b, trials_b, alpha)
    lift = relative_lift(successes_a, trials_a, successes_b, trials_b, alpha)
    if trials_a == 0 or trials_b == 0:
        nan = math.nan
        return ProportionComparison(
            successes_a, trials_a, successes_b, trials_b, difference, lift, nan, nan, nan, "z", nan
        )
    successes, trials = successes_a + successes_b, trials_a + trials_b
    pooled = successes / trials
    if 0 < successes < trials:
        z, z_p = proportions_ztest([successes_b, successes_a], [trials_b, trials_a])
        z, z_p = float(z), float(z_p)
    else:  # no variation at all: both arms identical, nothing to reject
        z, z_p = 0.0, 1.0
    table = np.array([[successes_b, trials_b - successes_b], [successes_a, trials_a - successes_a]])
    fisher_p = float(fisher_exact(table).pvalue)
    smallest_expected = min(n * p for n in (trials_a, trials_b) for p in (pooled, 1 - pooled))
    use_fisher = smallest_expected < MIN_EXPECTED_FOR_Z
    return ProportionComparison(
        successes_a=successes_a,
        trials_a=trials_a,
        successes_b=successes_b,
        trials_b=trials_b,
        difference=difference,
        relative_lift=lift,
        z_statistic=z,
        z_p_value=z_p,
        fisher_p_value=fisher_p,
        test="fisher" if use_fisher else "z",
        p_value=fisher_p if use_fisher else z_p,
    )


def compare_arms(a: ConfusionCounts, b: ConfusionCounts, alpha: float = 0.05) -> ArmComparison:
    """Challenger b against champion a on recall, precision and alert rate (independent arms)."""
    return ArmComparison(
        recall=compare_proportions(a.tp, a.frauds, b.tp, b.frauds, alpha),
        precision=compare_proportions(a.tp, a.tp + a.fp, b.tp, b.tp + b.fp, alpha),
        alert_rate=compare_proportions(a.alerts, a.total, b.alerts, b.total, alpha),
    )
