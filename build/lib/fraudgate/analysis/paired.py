"""Paired comparison: champion (a) and challenger (b) scored the same transactions (the shadow).

Pairing removes the between-transaction variation, so far fewer frauds settle the question than
with independent arms. The test is McNemar's on the discordant pairs (exact binomial when they
are few); the interval for p_b - p_a is Newcombe's hybrid score interval for paired
proportions (Newcombe 1998, "Improved confidence intervals for the difference between binomial
proportions based on paired data", Statistics in Medicine 17: 2635-2650, method 10): each
proportion's Wilson interval combined through their continuity-corrected correlation, so it
stays honest with few frauds and with no discordant pairs (where a Wald interval is [0, 0]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from statsmodels.stats.contingency_tables import mcnemar

from fraudgate.analysis.counts import Interval, PairedCounts, PairedTable
from fraudgate.analysis.proportions import proportion_interval

# McNemar's test is the exact binomial test on the discordant pairs below this many of them
# and the continuity-corrected chi-square above (the exact test is the safe choice when small;
# the chi-square approximation is good well before 50).
EXACT_MCNEMAR_BELOW = 50


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """p_b - p_a on the same units, with McNemar's test of "no difference".

    ``exact`` says whether ``mcnemar_p_value`` is the exact binomial or the chi-square test.
    """

    pairs: int
    only_a: int
    only_b: int
    difference: Interval
    mcnemar_statistic: float
    mcnemar_p_value: float
    exact: bool


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Recall (on frauds) and alert rate (on every paired transaction), challenger - champion."""

    recall: PairedDifference
    alert_rate: PairedDifference


def newcombe_paired_interval(table: PairedTable, alpha: float = 0.05) -> Interval:
    """p_b - p_a with Newcombe's (1998) method 10 for paired proportions (see module doc)."""
    n = table.total
    if n == 0:
        return Interval(math.nan, -1.0, 1.0)
    b = proportion_interval(table.flagged_b, n, alpha)
    a = proportion_interval(table.flagged_a, n, alpha)
    cross = table.both * table.neither - table.only_b * table.only_a
    margins = (
        table.flagged_b
        * (table.only_a + table.neither)
        * table.flagged_a
        * (table.only_b + table.neither)
    )
    if margins == 0:
        phi = 0.0
    else:  # Newcombe's continuity-corrected correlation
        phi = (max(cross - n / 2, 0.0) if cross > 0 else cross) / math.sqrt(margins)
    diff = b.estimate - a.estimate
    b_low, b_high = b.estimate - b.low, b.high - b.estimate
    a_low, a_high = a.estimate - a.low, a.high - a.estimate
    below = math.sqrt(max(b_low**2 - 2 * phi * b_low * a_high + a_high**2, 0.0))
    above = math.sqrt(max(b_high**2 - 2 * phi * b_high * a_low + a_low**2, 0.0))
    return Interval(diff, max(-1.0, diff - below), min(1.0, diff + above))


def paired_difference(table: PairedTable, alpha: float = 0.05) -> PairedDifference:
    """Newcombe's paired interval and McNemar's test (exact below ``EXACT_MCNEMAR_BELOW``)."""
    interval = newcombe_paired_interval(table, alpha)
    if table.discordant == 0:  # nothing distinguishes the models
        return PairedDifference(table.total, 0, 0, interval, 0.0, 1.0, True)
    exact = table.discordant < EXACT_MCNEMAR_BELOW
    result = mcnemar(
        [[table.both, table.only_a], [table.only_b, table.neither]], exact=exact, correction=True
    )
    return PairedDifference(
        pairs=table.total,
        only_a=table.only_a,
        only_b=table.only_b,
        difference=interval,
        mcnemar_statistic=float(result.statistic),
        mcnemar_p_value=float(result.pvalue),
        exact=exact,
    )


def compare_paired(counts: PairedCounts, alpha: float = 0.05) -> PairedComparison:
    """Recall and alert-rate differences from the shadow's paired counts."""
    return PairedComparison(
        recall=paired_difference(counts.fraud, alpha),
        alert_rate=paired_difference(counts.transactions, alpha),
    )
