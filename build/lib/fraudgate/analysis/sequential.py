"""Always-valid inference on the primary metric's difference: asymptotic confidence sequences.

People look at the experiment every day. A fixed-sample 95% interval checked at every look
excludes a true zero far more often than 5% of the time; a confidence sequence holds at every
look at once, so "stop the first time it excludes 0" keeps the error rate at alpha.

We use the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (Annals of Statistics,
2023; arXiv:2103.06476), the one GrowthBook's gbstats uses for its sequential testing. After n
units with mean difference d and standard deviation s per unit, it is

    d +/- s * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * log( sqrt(n rho^2 + 1) / alpha ) )

(Robbins' normal mixture boundary, two-sided at level alpha). The tuning parameter rho sets the
sample size at which the sequence is narrowest; we choose it for the planned sample size n* as

    rho^2 = ( -2 log(alpha) + log(-2 log(alpha) + 1) ) / n*

(the paper's closed-form approximation to the width-minimising rho at n*, which is GrowthBook's
rule with its "sequential tuning parameter" n*). A plan close to the sample you will reach
gives the narrowest sequence there; any plan keeps the guarantee.

Units: for recall, frauds. Paired design (shadow): one unit per fraud, d_i = caught_b - caught_a
in {-1, 0, 1}. Split design: the two arms' frauds together (n = n_a + n_b), with
s^2 = n * (p_a(1-p_a)/n_a + p_b(1-p_b)/n_b), GrowthBook's scaling of the difference's variance.
Value detection rate (share of the fraud amount caught) as the primary metric: the same
sequence on the delta-method linearisation of the ratio (as GrowthBook does for ratio metrics),
with the per-fraud variance from the counts' sums of squared amounts; with equal amounts it is
exactly the recall sequence. All are differences of proportions, so the intervals are cut to
[-1, 1] (intersecting with the parameter space keeps the guarantee).

Small samples: each variance is floored so that its sum of squares is at least 1 (the
convention of the ``confseq`` package's asymptotic sequence), so a handful of identical
outcomes cannot produce a zero-width sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from fraudgate.analysis.counts import ConfusionCounts, Interval, PairedTable


@dataclass(frozen=True, slots=True)
class SequentialPlan:
    """Level and the planned sample size (units: frauds) the sequence is tuned for."""

    planned_n: float
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not self.planned_n >= 1:
            raise ValueError(f"SequentialPlan.planned_n: expected >= 1, got {self.planned_n}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"SequentialPlan.alpha: expected 0 < alpha < 1, got {self.alpha}")

    @property
    def rho(self) -> float:
        """The tuning parameter for ``planned_n`` (see the module doc)."""
        log_alpha = math.log(self.alpha)
        return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / self.planned_n)


@dataclass(frozen=True, slots=True)
class ConfidenceSequence:
    """The always-valid interval for p_b - p_a at the current sample, and what it says.

    ``sequence`` holds at every look simultaneously; ``fixed`` is the ordinary z interval at
    this n (same centre, narrower) for reference only: acting on it at every look is invalid.
    ``p_value`` is the always-valid p-value (below alpha exactly when the sequence excludes 0;
    its running minimum over looks stays valid).
    """

    design: str
    n: int
    sd: float
    plan: SequentialPlan
    sequence: Interval
    fixed: Interval
    p_value: float

    @property
    def excludes_zero(self) -> bool:
        return self.sequence.low > 0 or self.sequence.high < 0


def mixture_margin(n: float, rho: float, alpha: float) -> float:
    """Half-width per unit standard deviation after n units (the bracket in the module doc)."""
    r2 = rho * rho
    return math.sqrt(2 * (n * r2 + 1) / (n * n * r2) * math.log(math.sqrt(n * r2 + 1) / alpha))


def _mixture_p_value(n: float, estimate: float, sd: float, rho: float) -> float:
    """1 / (normal-mixture martingale) for the standardised sum; capped at 1."""
    r2 = rho * rho
    s = n * estimate / sd
    log_m = r2 * s * s / (2 * (n * r2 + 1)) - 0.5 * math.log(n * r2 + 1)
    return min(1.0, math.exp(-log_m))


def _sequence(design: str, n: int, estimate: float, sd: float, plan: SequentialPlan):
    half = sd * mixture_margin(n, plan.rho, plan.alpha)
    z = NormalDist().inv_cdf(1 - plan.alpha / 2) * sd / math.sqrt(n)
    return ConfidenceSequence(
        design=design,
        n=n,
        sd=sd,
        plan=plan,
        sequence=Interval(estimate, max(-1.0, estimate - half), min(1.0, estimate + half)),
        fixed=Interval(estimate, max(-1.0, estimate - z), min(1.0, estimate + z)),
        p_value=_mixture_p_value(n, estimate, sd, plan.rho),
    )


def _uninformative(design: str, n: int, plan: SequentialPlan) -> ConfidenceSequence:
    nothing = Interval(math.nan, -1.0, 1.0)
    return ConfidenceSequence(design, n, math.nan, plan, nothing, nothing, 1.0)


def paired_confidence_sequence(table: PairedTable, plan: SequentialPlan) -> ConfidenceSequence:
    """Confidence sequence for p_b - p_a on the same units (e.g. recall on the same frauds)."""
    n = table.total
    if n < 2:
        return _uninformative("paired", n, plan)
    mean = (table.only_b - table.only_a) / n
    variance = max(table.discordant / n - mean * mean, 1 / n)
    return _sequence("paired", n, mean, math.sqrt(variance), plan)


def split_confidence_sequence(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, plan: SequentialPlan
) -> ConfidenceSequence:
    """Confidence sequence for p_b - p_a between independent arms (e.g. recall per arm)."""
    n = trials_a + trials_b
    if trials_a < 2 or trials_b < 2:
        return _uninformative("split", n, plan)
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    var_a = max(p_a * (1 - p_a), 1 / trials_a)
    var_b = max(p_b * (1 - p_b), 1 / trials_b)
    sd = math.sqrt(n * (var_a / trials_a + var_b / trials_b))
    return _sequence("split", n, p_b - p_a, sd, plan)


def paired_value_confidence_sequence(
    table: PairedTable, plan: SequentialPlan
) -> ConfidenceSequence:
    """Confidence sequence for the value detection rate's difference on the same frauds.

    D = (only_b_amount - only_a_amount) / total amount. Linearised per fraud, d_i - D x_i is
    -D x_i where the models agree, (1 - D) x_i where only b caught it, -(1 + D) x_i where only
    a did; its variance over the mean amount squared is the per-fraud variance.
    """
    n = table.total
    total = table.both_amount + table.only_a_amount + table.only_b_amount + table.neither_amount
    agree_sq = table.both_amount_sq + table.neither_amount_sq
    squares = agree_sq + table.only_a_amount_sq + table.only_b_amount_sq
    if n < 2 or total <= 0 or squares <= 0:
        return _uninformative("paired", n, plan)
    diff = (table.only_b_amount - table.only_a_amount) / total
    spread = (
        diff**2 * agree_sq
        + (1 - diff) ** 2 * table.only_b_amount_sq
        + (1 + diff) ** 2 * table.only_a_amount_sq
    )
    mean_amount = total / n
    variance = max(spread / n / mean_amount**2, 1 / n)
    return _sequence("paired", n, diff, math.sqrt(variance), plan)


def _ratio_variance(counts: ConfusionCounts) -> float | None:
    """Delta-method variance of tp_amount / (tp_amount + fn_amount), floored like recall's."""
    total = counts.tp_amount + counts.fn_amount
    if counts.frauds < 2 or total <= 0 or counts.tp_amount_sq + counts.fn_amount_sq <= 0:
        return None
    r = counts.tp_amount / total
    spread = ((1 - r) ** 2 * counts.tp_amount_sq + r**2 * counts.fn_amount_sq) / total**2
    return max(spread, 1 / counts.frauds**2)


def split_value_confidence_sequence(
    a: ConfusionCounts, b: ConfusionCounts, plan: SequentialPlan
) -> ConfidenceSequence:
    """Confidence sequence for the value detection rate's difference between independent arms."""
    n = a.frauds + b.frauds
    var_a, var_b = _ratio_variance(a), _ratio_variance(b)
    if var_a is None or var_b is None:
        return _uninformative("split", n, plan)
    diff = b.tp_amount / (b.tp_amount + b.fn_amount) - a.tp_amount / (a.tp_amount + a.fn_amount)
    return _sequence("split", n, diff, math.sqrt(n * (var_a + var_b)), plan)
