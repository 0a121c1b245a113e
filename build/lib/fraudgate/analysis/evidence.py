"""Build the decision rule's ``Evidence`` from counts, for the paired and the split design.

One call per design so a report does not have to know which sequence, interval or table each
guardrail reads: the primary metric's confidence sequence (recall or value detection rate),
the alert rate's confidence sequence, the champion's alert rate and the challenger's precision.
"""

from __future__ import annotations

from fraudgate.analysis.counts import ConfusionCounts, PairedCounts
from fraudgate.analysis.decision import Evidence
from fraudgate.analysis.proportions import proportion_interval
from fraudgate.analysis.sequential import (
    SequentialPlan,
    paired_confidence_sequence,
    paired_value_confidence_sequence,
    split_confidence_sequence,
    split_value_confidence_sequence,
)
from fraudgate.analysis.srm import SampleRatioResult

METRICS = ("recall", "value_detection_rate")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")


def paired_evidence(
    counts: PairedCounts,
    plan: SequentialPlan,
    alert_plan: SequentialPlan,
    days_elapsed: float,
    *,
    metric: str = "recall",
    srm: SampleRatioResult | None = None,
    frauds_per_day: float | None = None,
    error_rate: float | None = None,
    p99_latency_ms: float | None = None,
) -> Evidence:
    """Evidence from the shadow's paired counts (champion a, challenger b, same transactions).

    ``plan`` is in frauds (the primary metric's units), ``alert_plan`` in transactions.
    """
    _check_metric(metric)
    primary = (
        paired_confidence_sequence(counts.fraud, plan)
        if metric == "recall"
        else paired_value_confidence_sequence(counts.fraud, plan)
    )
    everything = counts.transactions
    labelled_alerts = counts.fraud.flagged_b + counts.legit.flagged_b
    return Evidence(
        primary=primary,
        alert_rate=paired_confidence_sequence(everything, alert_plan),
        champion_alert_rate=everything.flagged_a / everything.total if everything.total else 0.0,
        challenger_precision=proportion_interval(counts.fraud.flagged_b, labelled_alerts),
        challenger_labelled_alerts=labelled_alerts,
        days_elapsed=days_elapsed,
        srm=srm,
        frauds_per_day=frauds_per_day,
        error_rate=error_rate,
        p99_latency_ms=p99_latency_ms,
        metric=metric,
    )


def split_evidence(
    champion: ConfusionCounts,
    challenger: ConfusionCounts,
    plan: SequentialPlan,
    alert_plan: SequentialPlan,
    days_elapsed: float,
    *,
    metric: str = "recall",
    srm: SampleRatioResult | None = None,
    frauds_per_day: float | None = None,
    error_rate: float | None = None,
    p99_latency_ms: float | None = None,
) -> Evidence:
    """Evidence from the two arms' served counts (independent transactions).

    ``frauds_per_day`` counts both arms' labelled frauds (the split sequence's units).
    """
    _check_metric(metric)
    a, b = champion, challenger
    primary = (
        split_confidence_sequence(a.tp, a.frauds, b.tp, b.frauds, plan)
        if metric == "recall"
        else split_value_confidence_sequence(a, b, plan)
    )
    return Evidence(
        primary=primary,
        alert_rate=split_confidence_sequence(a.alerts, a.total, b.alerts, b.total, alert_plan),
        champion_alert_rate=a.alert_rate if a.total else 0.0,
        challenger_precision=proportion_interval(b.tp, b.tp + b.fp),
        challenger_labelled_alerts=b.tp + b.fp,
        days_elapsed=days_elapsed,
        srm=srm,
        frauds_per_day=frauds_per_day,
        error_rate=error_rate,
        p99_latency_ms=p99_latency_ms,
        metric=metric,
    )
