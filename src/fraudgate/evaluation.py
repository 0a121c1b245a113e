"""Evaluate an experiment from the ledger: counts -> statistics -> the decision, in one call.

``evaluate(config, store, as_of)`` reads the ledger only through
`LedgerStore.experiment_counts` (sums computed in the database), hands those counts to the pure
statistics of `fraudgate.analysis` and returns an `Evaluation`: per-arm metrics with intervals,
the split and the paired comparison, the primary metric's confidence sequence, the traffic
split's SRM test, power and days to a decision, the money, and PROMOTE / CONTINUE / ROLLBACK /
STOP with its reasons. Rendering it is `fraudgate.report.evaluation`'s job.

Label maturity. As of T, a label counts only if known by T and an unlabelled transaction is
legitimate only once ``maturity_days`` old (else pending). Labels arrive unevenly (an alert is
investigated within days, a missed fraud comes back as a chargeback weeks later), so on young
transactions the labelled frauds are mostly the caught ones and recall looks better than it
is. The primary metric, precision and cost therefore read only the *matured* event days (a day
whose end is ``maturity_days`` before T, when its labels are complete); the alert rate, the
traffic split and latency need no labels and read the whole window.

Daily looks are valid: the primary metric is judged on an always-valid confidence sequence
(`fraudgate.analysis.sequential`), so the demo may call this once per simulated day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fraudgate.analysis.compare import ArmComparison, compare_arms
from fraudgate.analysis.cost import (
    ArmValue,
    MoneyEstimate,
    arm_value,
    paired_value_difference,
    split_value_difference,
)
from fraudgate.analysis.counts import ConfusionCounts, Interval, PairedCounts
from fraudgate.analysis.decision import Decision, Evidence, decide
from fraudgate.analysis.evidence import paired_evidence, split_evidence
from fraudgate.analysis.latency import LatencySummary, summarise_latency
from fraudgate.analysis.paired import PairedComparison, compare_paired
from fraudgate.analysis.power import PowerComparison, compare_designs
from fraudgate.analysis.proportions import ArmMetrics, arm_metrics, proportion_interval
from fraudgate.analysis.sequential import (
    ConfidenceSequence,
    SequentialPlan,
    paired_confidence_sequence,
    paired_value_confidence_sequence,
    split_confidence_sequence,
    split_value_confidence_sequence,
)
from fraudgate.analysis.srm import ArmUnits, SampleRatioResult, sample_ratio_mismatch
from fraudgate.config.schema import (
    ConfigError,
    FraudgateConfig,
    champion_and_challenger,
)
from fraudgate.ledger.records import SECONDS_PER_DAY, ArmCounts, ExperimentCounts

if TYPE_CHECKING:
    from fraudgate.ledger.store import LedgerStore

# the analysis modules' name of the primary metric, per the config's
_METRIC = {"recall": "recall", "value_detection": "value_detection_rate"}


@dataclass(frozen=True, slots=True)
class ArmEvaluation:
    """One arm (its served decisions): ``window`` counts every transaction (labels as of T,
    pending ones unlabelled), ``matured`` only the matured days'. ``metrics`` are the matured
    counts' (precision, recall, F1, value detection) except ``alert_rate``, from the window."""

    arm: str
    role: str  # "champion" | "challenger" | "other"
    weight: float
    units: int
    window: ConfusionCounts
    matured: ConfusionCounts
    metrics: ArmMetrics
    latency: LatencySummary | None
    value: ArmValue | None
    label_coverage: float  # labelled (or matured) share of the window's transactions


@dataclass(frozen=True, slots=True)
class ArmDay:
    """One arm on one event day: its recall (labels as of T), alert rate and label coverage."""

    arm: str
    transactions: int
    pending: int
    recall: Interval
    alert_rate: Interval
    label_coverage: float


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One event day (UTC date): per-arm figures, the traffic split, and the primary metric's
    confidence sequence over the days up to and including this one (labels as of T)."""

    date: str
    matured: bool
    arms: tuple[ArmDay, ...]
    sequence: Interval
    sequence_frauds: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything `fraudgate report` shows, computed from the ledger's counts as of ``as_of``.

    ``design`` is the one the decision used (``paired`` or ``split``); ``split`` and
    ``paired`` are both given when their counts exist. ``value_difference`` is the
    challenger's net value minus the champion's (per transaction, day, year), in that design.
    """

    experiment: str
    champion: str
    challenger: str
    as_of: float
    maturity_days: float
    matured_until: float  # event times before this are matured
    first_event: float | None
    days_elapsed: float
    design: str
    metric: str
    alpha: float
    arms: tuple[ArmEvaluation, ...]
    split: ArmComparison | None
    paired: PairedComparison | None
    paired_transactions: int
    sequence: ConfidenceSequence
    evidence: Evidence
    srm: SampleRatioResult | None
    power: PowerComparison | None
    frauds_per_day: float | None
    transactions_per_day: float | None
    value_difference: MoneyEstimate | None
    decision: Decision
    days: tuple[DayPoint, ...]
    counts: ExperimentCounts

    def arm(self, name: str) -> ArmEvaluation:
        for arm in self.arms:
            if arm.arm == name:
                return arm
        raise KeyError(name)


def _epoch(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.timestamp()


def _matured_day(day: int, as_of: float, maturity_s: float) -> bool:
    return (day + 1) * SECONDS_PER_DAY + maturity_s <= as_of


def _matured_counts(arm: ArmCounts, as_of: float, maturity_s: float) -> ConfusionCounts:
    total = ConfusionCounts()
    for item in arm.by_day:
        if _matured_day(item.day, as_of, maturity_s):
            total = total + item.counts
    return total


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, UTC).date().isoformat()


def _sequence(
    design: str,
    metric: str,
    paired: PairedCounts,
    a: ConfusionCounts,
    b: ConfusionCounts,
    plan: SequentialPlan,
) -> ConfidenceSequence:
    if design == "paired":
        if metric == "recall":
            return paired_confidence_sequence(paired.fraud, plan)
        return paired_value_confidence_sequence(paired.fraud, plan)
    if metric == "recall":
        return split_confidence_sequence(a.tp, a.frauds, b.tp, b.frauds, plan)
    return split_value_confidence_sequence(a, b, plan)


def _coverage(counts: ConfusionCounts) -> float:
    return counts.labelled / counts.total if counts.total else math.nan


def _days(
    counts: ExperimentCounts,
    arms: Sequence[str],
    design: str,
    metric: str,
    plan: SequentialPlan,
    alpha: float,
) -> tuple[DayPoint, ...]:
    per_arm = {name: {d.day: d.counts for d in counts.arm(name).by_day} for name in arms}
    paired_by = {p.day: p.counts for p in counts.paired_by_day}
    numbers = sorted({day for days in per_arm.values() for day in days} | set(paired_by))
    points: list[DayPoint] = []
    cum_paired = PairedCounts()
    cum = {name: ConfusionCounts() for name in arms}
    for day in numbers:
        cum_paired = cum_paired + paired_by.get(day, PairedCounts())
        rows = []
        for name in arms:
            c = per_arm[name].get(day, ConfusionCounts())
            cum[name] = cum[name] + c
            rows.append(
                ArmDay(
                    arm=name,
                    transactions=c.total,
                    pending=c.unlabelled,
                    recall=proportion_interval(c.tp, c.frauds, alpha),
                    alert_rate=proportion_interval(c.alerts, c.total, alpha),
                    label_coverage=_coverage(c),
                )
            )
        sequence = _sequence(
            design, metric, cum_paired, cum[counts.champion], cum[counts.challenger], plan
        )
        points.append(
            DayPoint(
                date=_date(day),
                matured=_matured_day(day, counts.as_of, counts.maturity_s),
                arms=tuple(rows),
                sequence=sequence.sequence,
                sequence_frauds=sequence.n,
            )
        )
    return tuple(points)


def evaluate(
    config: FraudgateConfig, store: LedgerStore, as_of: float | datetime | None = None
) -> Evaluation:
    """The experiment's evaluation as of ``as_of`` (default now); see the module doc.

    ``config`` needs an ``experiment:`` section (its name, candidates and weights) and may
    have an ``analysis:`` section (maturity, alpha, metric, guardrails, cost; defaults else).
    """
    spec = config.experiment_spec
    if spec is None:
        raise ConfigError("experiment: expected an experiment section to evaluate, received none")
    analysis = config.analysis
    champion, challenger = champion_and_challenger(spec, analysis)
    counts = store.experiment_counts(
        spec.name,
        champion,
        challenger,
        as_of=_epoch(as_of),
        maturity_s=analysis.maturity_s,
    )
    t, maturity_s, alpha = counts.as_of, counts.maturity_s, analysis.alpha
    metric = _METRIC[analysis.primary_metric]
    weights = {c.name: float(c.weight) for c in spec.candidates}
    names = list(dict.fromkeys([champion, challenger, *weights, *(a.arm for a in counts.arms)]))

    matured = {n: _matured_counts(counts.arm(n), t, maturity_s) for n in names}
    matured_paired = PairedCounts()
    for item in counts.paired_by_day:
        if _matured_day(item.day, t, maturity_s):
            matured_paired = matured_paired + item.counts
    firsts = [a.first_event for a in counts.arms if math.isfinite(a.first_event)]
    first_event = min(firsts) if firsts else None
    days_elapsed = max(t - first_event, 0.0) / SECONDS_PER_DAY if first_event else 0.0
    matured_until = t - maturity_s
    matured_days = (
        max(0.0, math.floor(matured_until / SECONDS_PER_DAY) - first_event // SECONDS_PER_DAY)
        if first_event is not None
        else 0.0
    )

    design = analysis.design
    if design == "auto":
        design = "paired" if counts.paired.transactions.total > 0 else "split"
    a_all, b_all = counts.arm(champion).counts, counts.arm(challenger).counts
    a_mat, b_mat = matured[champion], matured[challenger]
    frauds = matured_paired.fraud.total if design == "paired" else a_mat.frauds + b_mat.frauds
    if matured_days > 0:
        frauds_per_day: float | None = frauds / matured_days
    else:  # nothing matured yet: the labelled frauds so far (an optimistic rate)
        so_far = a_all.frauds + b_all.frauds
        if design == "paired":
            so_far = counts.paired.fraud.total
        frauds_per_day = so_far / days_elapsed if days_elapsed > 0 else None
    frauds_per_day = frauds_per_day or None

    live = [ArmUnits(name, counts.arm(name).units, w) for name, w in weights.items()]
    srm = (
        sample_ratio_mismatch(live, analysis.guardrails.srm_p)
        if len(live) >= 2 and sum(w for w in weights.values()) > 0
        else None
    )
    challenger_latency = counts.arm(challenger).latency
    p99 = (
        summarise_latency(challenger_latency).p99.estimate_ms if challenger_latency.count else None
    )
    plan = SequentialPlan(float(analysis.planned_frauds), alpha)
    alert_plan = SequentialPlan(float(analysis.planned_transactions), alpha)
    # error_rate: None, the ledger records answered requests only
    if design == "paired":
        evidence = paired_evidence(
            matured_paired,
            plan,
            alert_plan,
            days_elapsed,
            metric=metric,
            srm=srm,
            frauds_per_day=frauds_per_day,
            error_rate=None,
            p99_latency_ms=p99,
        )
        everything = counts.paired.transactions
        evidence = replace(  # the alert rate needs no labels: the whole window
            evidence,
            alert_rate=paired_confidence_sequence(everything, alert_plan),
            champion_alert_rate=(
                everything.flagged_a / everything.total if everything.total else 0.0
            ),
        )
    else:
        evidence = split_evidence(
            a_mat,
            b_mat,
            plan,
            alert_plan,
            days_elapsed,
            metric=metric,
            srm=srm,
            frauds_per_day=frauds_per_day,
            error_rate=None,
            p99_latency_ms=p99,
        )
        evidence = replace(
            evidence,
            alert_rate=split_confidence_sequence(
                a_all.alerts, a_all.total, b_all.alerts, b_all.total, alert_plan
            ),
            champion_alert_rate=a_all.alert_rate if a_all.total else 0.0,
        )
    decision = decide(evidence, analysis.decision_policy())

    cost = analysis.cost
    model = cost.cost_model()
    window_total = sum(counts.arm(n).counts.total for n in names)
    volume = cost.transactions_per_day
    if volume is None and days_elapsed > 0:
        volume = window_total / max(days_elapsed, 1.0)
    arms = []
    for name in names:
        arm = counts.arm(name)
        role = {champion: "champion", challenger: "challenger"}.get(name, "other")
        metrics = arm_metrics(matured[name], alpha)
        metrics = replace(
            metrics, alert_rate=proportion_interval(arm.counts.alerts, arm.counts.total, alpha)
        )
        value = (
            arm_value(matured[name], model, matured_days, volume, alpha)
            if volume and matured[name].labelled
            else None
        )
        latency = summarise_latency(arm.latency) if arm.latency.count else None
        coverage = _coverage(arm.counts)
        arms.append(
            ArmEvaluation(
                name,
                role,
                weights.get(name, 0.0),
                arm.units,
                arm.counts,
                matured[name],
                metrics,
                latency,
                value,
                coverage,
            )
        )
    split = compare_arms(a_mat, b_mat, alpha) if a_all.total and b_all.total else None
    paired = compare_paired(matured_paired, alpha) if counts.paired.transactions.total else None
    if volume and design == "paired" and matured_paired.fraud.total + matured_paired.legit.total:
        difference: MoneyEstimate | None = paired_value_difference(
            matured_paired, model, matured_days, volume, alpha
        )
    elif volume and design == "split" and a_mat.labelled and b_mat.labelled:
        difference = split_value_difference(a_mat, b_mat, model, matured_days, volume, alpha)
    else:
        difference = None

    power = None
    recall_a = (
        matured_paired.fraud.flagged_a / matured_paired.fraud.total
        if design == "paired" and matured_paired.fraud.total
        else a_mat.recall
    )
    if frauds_per_day and math.isfinite(recall_a) and 0 < recall_a < 1:
        recall_b = min(recall_a + analysis.minimum_effect, 0.999)
        table = matured_paired.fraud
        observed = table.discordant / table.total if table.total else None
        share_b = weights.get(challenger, 0.0) / (sum(weights.values()) or 1.0)
        if recall_b > recall_a and 0 < share_b < 1:
            power = compare_designs(
                recall_a,
                recall_b,
                frauds_per_day,
                share_b=share_b,
                discordant_share=observed if observed else None,
                alpha=alpha,
                power=analysis.power,
            )
    return Evaluation(
        experiment=spec.name,
        champion=champion,
        challenger=challenger,
        as_of=t,
        maturity_days=analysis.maturity_days,
        matured_until=matured_until,
        first_event=first_event,
        days_elapsed=days_elapsed,
        design=design,
        metric=metric,
        alpha=alpha,
        arms=tuple(arms),
        split=split,
        paired=paired,
        paired_transactions=counts.paired.transactions.total,
        sequence=evidence.primary,
        evidence=evidence,
        srm=srm,
        power=power,
        frauds_per_day=frauds_per_day,
        transactions_per_day=volume,
        value_difference=difference,
        decision=decision,
        days=_days(counts, names, design, metric, plan, alpha),
        counts=counts,
    )
