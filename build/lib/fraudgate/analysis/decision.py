"""The decision rule: PROMOTE / CONTINUE / ROLLBACK / STOP, with every reason in words.

Two timescales. Fast guardrails need no labels and are checked at every evaluation: the traffic
split (sample ratio mismatch), the challenger's error rate and p99 latency, and its alert rate
against the champion's. The slow primary metric (recall, or value detection, on matured labels)
is judged by its confidence sequence, so acting on any day's evaluation is valid; the precision
floor joins as a guardrail once enough alerts are labelled.

    ROLLBACK  a guardrail is breached, or the sequence shows the challenger worse
    PROMOTE   the sequence shows the challenger better and no guardrail objects
    STOP      the maximum duration or sample is reached with no detectable difference
    CONTINUE  otherwise, with the expected days until the sequence can decide

The alert-rate guardrail is itself judged on a confidence sequence (breached only when the
increase is credibly above the limit, so daily checks do not raise false alarms); an estimate
above the limit that is not yet credible blocks PROMOTE without forcing ROLLBACK. The precision
floor is judged on the interval it is given (Wilson, fixed-sample): checked daily it can raise
a false alarm more often than alpha, so set the floor well below the precision you expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from fraudgate.analysis.counts import Interval
from fraudgate.analysis.power import sequential_frauds_needed
from fraudgate.analysis.sequential import ConfidenceSequence
from fraudgate.analysis.srm import SampleRatioResult


class Outcome(StrEnum):
    PROMOTE = "PROMOTE"
    CONTINUE = "CONTINUE"
    ROLLBACK = "ROLLBACK"
    STOP = "STOP"


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    """Every threshold of the rule (the config's ``decision`` section).

    - ``max_alert_rate_increase``: relative increase of the challenger's alert rate over the
      champion's that is tolerated (0.25 = 25% more alerts, i.e. 25% more investigations).
    - ``precision_floor``: the challenger's precision must not be credibly below this
      (its Wilson interval's upper end), checked once ``min_labelled_alerts`` are labelled.
    - ``max_error_rate``, ``max_p99_latency_ms``: serving guardrails (None = not checked).
    - ``max_days``, ``max_frauds``: when to STOP without a detectable difference.
    - ``minimum_effect``, ``power``: the recall difference worth detecting and the wanted
      chance of detecting it, for the expected days to a decision.
    """

    max_alert_rate_increase: float = 0.25
    precision_floor: float = 0.05
    min_labelled_alerts: int = 30
    max_error_rate: float | None = 0.01
    max_p99_latency_ms: float | None = None
    max_days: float = 60.0
    max_frauds: int | None = None
    minimum_effect: float = 0.02
    power: float = 0.8


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the rule looks at, all computed from counts by the other analysis modules.

    ``primary`` and ``alert_rate`` are confidence sequences of challenger - champion (the
    paired one with the shadow, the split one otherwise). ``srm`` is None for an experiment
    without a split. ``frauds_per_day`` is the rate at which labelled frauds reach the primary
    metric (for the expected days); ``error_rate`` and ``p99_latency_ms`` are the challenger's.
    """

    primary: ConfidenceSequence
    alert_rate: ConfidenceSequence
    champion_alert_rate: float
    challenger_precision: Interval
    challenger_labelled_alerts: int
    days_elapsed: float
    srm: SampleRatioResult | None = None
    frauds_per_day: float | None = None
    error_rate: float | None = None
    p99_latency_ms: float | None = None
    metric: str = "recall"


@dataclass(frozen=True, slots=True)
class GuardrailCheck:
    """One guardrail: ``breached`` forces ROLLBACK, ``blocks_promotion`` holds at CONTINUE."""

    name: str
    breached: bool
    blocks_promotion: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    guardrails: tuple[GuardrailCheck, ...]
    expected_days_to_decision: float | None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _points(x: float) -> str:
    return f"{100 * x:+.1f} points"


def _srm_check(srm: SampleRatioResult | None) -> GuardrailCheck | None:
    if srm is None:
        return None
    shares = (
        ", ".join(
            f"{arm} {_pct(share)} (configured {_pct(e / sum(srm.expected))})"
            for arm, share, e in zip(srm.arms, srm.observed_shares, srm.expected, strict=True)
        )
        if sum(srm.expected)
        else "no units yet"
    )
    if srm.mismatch:
        detail = (
            f"sample ratio mismatch: the cards reached the arms as {shares}, p = "
            f"{srm.p_value:.2g} < {srm.threshold}; the split or its logging is broken, so no "
            "metric from this experiment can be trusted"
        )
    else:
        detail = f"traffic split as configured ({shares}, p = {srm.p_value:.2g})"
    return GuardrailCheck("sample_ratio", srm.mismatch, srm.mismatch, detail)


def _limit_check(name: str, label: str, value: float | None, limit: float | None, unit: str):
    if value is None or limit is None:
        return None
    breached = value > limit
    detail = (
        f"{label} {value:.4g}{unit} {'above' if breached else 'within'} the limit {limit}{unit}"
    )
    return GuardrailCheck(name, breached, breached, detail)


def _alert_rate_check(evidence: Evidence, policy: DecisionPolicy) -> GuardrailCheck:
    base = evidence.champion_alert_rate
    cs = evidence.alert_rate.sequence
    allowed = policy.max_alert_rate_increase * base
    if not math.isfinite(cs.estimate) or not base > 0:
        return GuardrailCheck("alert_rate", False, False, "alert rates not measurable yet")
    change = cs.estimate / base
    bounds = f"between {_pct(cs.low / base)} and {_pct(cs.high / base)}"
    if cs.low > allowed:
        detail = (
            f"the challenger raises {_pct(change)} more alerts than the champion (credibly "
            f"{bounds}), above the {_pct(policy.max_alert_rate_increase)} tolerated"
        )
        return GuardrailCheck("alert_rate", True, True, detail)
    if cs.estimate > allowed:
        detail = (
            f"the challenger raises {_pct(change)} more alerts than the champion ({bounds}), "
            f"above the {_pct(policy.max_alert_rate_increase)} tolerated but not yet credibly"
        )
        return GuardrailCheck("alert_rate", False, True, detail)
    detail = f"alert-rate change {_pct(change)} ({bounds}) within the tolerated increase"
    return GuardrailCheck("alert_rate", False, False, detail)


def _precision_check(evidence: Evidence, policy: DecisionPolicy) -> GuardrailCheck | None:
    if policy.precision_floor <= 0:
        return None
    p = evidence.challenger_precision
    n = evidence.challenger_labelled_alerts
    if n < policy.min_labelled_alerts:
        return GuardrailCheck(
            "precision_floor",
            False,
            False,
            f"precision not judged yet: {n} labelled alerts of the "
            f"{policy.min_labelled_alerts} needed",
        )
    interval = f"{_pct(p.estimate)} (95% interval {_pct(p.low)} to {_pct(p.high)})"
    if p.high < policy.precision_floor:
        detail = (
            f"the challenger's precision {interval} is credibly below the floor "
            f"{_pct(policy.precision_floor)}: too many alerts are false"
        )
        return GuardrailCheck("precision_floor", True, True, detail)
    blocks = p.estimate < policy.precision_floor
    floor = _pct(policy.precision_floor)
    if blocks:
        detail = f"precision {interval} below the floor {floor}, not yet credibly"
    else:
        detail = f"precision {interval} above the floor {floor}"
    return GuardrailCheck("precision_floor", False, blocks, detail)


def _expected_days(evidence: Evidence, policy: DecisionPolicy) -> float | None:
    cs = evidence.primary
    if not evidence.frauds_per_day or not math.isfinite(cs.sd) or cs.sd <= 0:
        return None
    needed = sequential_frauds_needed(policy.minimum_effect, cs.sd, cs.plan, policy.power)
    return max(needed - cs.n, 0) / evidence.frauds_per_day


def decide(evidence: Evidence, policy: DecisionPolicy | None = None) -> Decision:
    """Apply the rule (module doc) and say why, in words a reviewer can check."""
    policy = policy or DecisionPolicy()
    checks = tuple(
        c
        for c in (
            _srm_check(evidence.srm),
            _limit_check(
                "error_rate",
                "challenger error rate",
                evidence.error_rate,
                policy.max_error_rate,
                "",
            ),
            _limit_check(
                "p99_latency",
                "challenger p99 latency",
                evidence.p99_latency_ms,
                policy.max_p99_latency_ms,
                " ms",
            ),
            _alert_rate_check(evidence, policy),
            _precision_check(evidence, policy),
        )
        if c is not None
    )
    cs = evidence.primary
    seq = cs.sequence
    metric = evidence.metric
    primary = (
        f"{metric} difference (challenger - champion) {_points(seq.estimate)}, always-valid "
        f"95% interval {_points(seq.low)} to {_points(seq.high)} after {cs.n} labelled frauds "
        f"({cs.design} design)"
        if math.isfinite(seq.estimate)
        else f"{metric} difference not measurable yet ({cs.n} labelled frauds)"
    )
    expected = _expected_days(evidence, policy)
    breached = [c.detail for c in checks if c.breached]
    if breached:
        return Decision(Outcome.ROLLBACK, (*breached, primary), checks, None)
    if seq.high < 0:
        reason = f"the challenger is worse: {primary}, entirely below zero"
        return Decision(Outcome.ROLLBACK, (reason,), checks, None)
    blockers = [c.detail for c in checks if c.blocks_promotion]
    if seq.low > 0 and not blockers:
        reason = f"the challenger is better: {primary}, entirely above zero"
        passed = tuple(c.detail for c in checks)
        return Decision(Outcome.PROMOTE, (reason, *passed), checks, None)
    if seq.low > 0:
        reason = f"the challenger is better ({primary}) but a guardrail holds the promotion"
        return Decision(Outcome.CONTINUE, (reason, *blockers), checks, None)
    out_of_time = evidence.days_elapsed >= policy.max_days
    out_of_sample = policy.max_frauds is not None and cs.n >= policy.max_frauds
    if out_of_time or out_of_sample:
        limit = (
            f"the maximum duration of {policy.max_days:g} days"
            if out_of_time
            else f"the maximum sample of {policy.max_frauds} frauds"
        )
        reason = f"{limit} is reached with no detectable difference: {primary}, which holds zero"
        return Decision(Outcome.STOP, (reason,), checks, None)
    if expected is None:
        wait = ""
    elif expected > 0:
        wait = (
            f"; about {math.ceil(expected)} more days of labelled frauds for a "
            f"{_pct(policy.power)} chance of a decision if the true difference is "
            f"{_points(policy.minimum_effect)} or more"
        )
    else:
        wait = (
            f"; the sample already gives a {_pct(policy.power)} chance of detecting "
            f"{_points(policy.minimum_effect)}, so the true difference is likely smaller"
        )
    reason = f"not decided yet: {primary}, which holds zero{wait}"
    return Decision(Outcome.CONTINUE, (reason, *blockers), checks, expected)
