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

Monitoring (``evaluate(..., references=...)``, what `fraudgate report` asks for): per model and
role, the label-free expected precision and recall of its decisions (CBPE,
`fraudgate.analysis.estimated`) beside the realised, label-joined ones, and the drift of its
scores in the window against its registry version's training reference (PSI over the
reference's bins; KS at the bin edges only, a lower bound of the two-sample statistic), from
`LedgerStore.monitoring_counts` (sums and bin counts computed in the database).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from fraudgate.analysis.drift import (
    SCORE_COLUMN,
    ColumnReference,
    DriftThresholds,
    ks_at_edges,
    level,
    psi,
)
from fraudgate.analysis.estimated import ExpectedCounts
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
from fraudgate.config.schema import ConfigError, FraudgateConfig
from fraudgate.ledger.records import SECONDS_PER_DAY, ArmCounts, ExperimentCounts
from fraudgate.promotion import champion_and_challenger

if TYPE_CHECKING:
    from fraudgate.experiments.spec import ExperimentSpec
    from fraudgate.ledger.monitoring_counts import MonitoringCounts
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
class ModelEstimate:
    """One model's decisions of one role (``served`` | ``mirror``): the label-free expected
    precision and recall of the window's decisions and of the matured days' (the days the
    realised figures read), and, for served decisions, the realised (label-joined) precision
    and recall of its arm. Per decision (a retried transaction counts once per decision)."""

    model: str
    role: str
    window: ExpectedCounts
    matured: ExpectedCounts
    estimated_precision: float  # matured days
    estimated_recall: float
    window_estimated_precision: float  # every day of the window (pending ones too)
    window_estimated_recall: float
    realised_precision: Interval | None  # the arm's (served decisions) matured days
    realised_recall: Interval | None


@dataclass(frozen=True, slots=True)
class ScoreReference:
    """Where a model's score reference comes from: the config's URI, the registry version it
    names now, and that version's score column (None: none, ``note`` says why)."""

    uri: str
    version: str
    column: ColumnReference | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ScoreDrift:
    """A model's scores of one role in the window against its training reference: the PSI
    over the reference's bins (exact, as the server's gauge), the KS statistic at the bin
    edges (a lower bound of the two-sample statistic: the database returns bin counts, not
    scores), and both shares per bin (bin i: ``edges[i-1] < score <= edges[i]``)."""

    model: str
    role: str
    reference_uri: str
    registry_version: str
    rows: int
    psi: float
    level: str  # stable | warning | alert | unknown, by monitoring.psi_warning / psi_alert
    ks_at_edges: float
    edges: tuple[float, ...]
    reference_shares: tuple[float, ...]
    live_shares: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Monitoring:
    """The report's monitoring section: estimates and score drift per model and role, and
    why a model has no drift (``notes``)."""

    estimates: tuple[ModelEstimate, ...]
    drift: tuple[ScoreDrift, ...]
    notes: tuple[str, ...]


# model name -> its score reference (the registry lookup `fraudgate report` passes)
ReferenceSource = Callable[[str], ScoreReference | None]


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
    monitoring: Monitoring | None = None  # with ``references`` only

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


def _spec(config: FraudgateConfig) -> ExperimentSpec:
    spec = config.experiment_spec
    if spec is None:
        raise ConfigError("experiment: expected an experiment section to evaluate, received none")
    return spec


def _read_counts(
    config: FraudgateConfig,
    store: LedgerStore,
    as_of: float | datetime | None,
    references: ReferenceSource | None,
) -> tuple[ExperimentCounts, _MonitoringReads | None]:
    """Everything `evaluate` reads from the ledger (and, with ``references``, the registry)."""
    spec = _spec(config)
    champion, challenger = champion_and_challenger(spec, config.analysis)
    moment = _epoch(as_of)
    as_of_t = time.time() if moment is None else moment
    # The monitoring reads (registry lookups, one GROUP BY) in a thread while the experiment's
    # counts run: the drivers release the GIL during a statement, so its wall time hides
    # behind theirs. Two connections are two snapshots -- as they were when the two ran one
    # after the other: both read ``event_time <= T`` of a ledger that only grows, so they
    # differ at most by decisions committed between the two statements' starts, and the
    # monitoring section (per decision, label-free) is not reconciled with the label-joined
    # counts anyway.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reads = (
            pool.submit(_monitoring_reads, store, spec.name, as_of_t, config, references)
            if references is not None
            else None
        )
        counts = store.experiment_counts(
            spec.name,
            champion,
            challenger,
            as_of=as_of_t,
            maturity_s=config.analysis.maturity_s,
        )
        return counts, reads.result() if reads is not None else None


@dataclass(frozen=True, slots=True)
class Rollup:
    """What `roll_up` did: ``counted`` False when the ledger is too small for the count cache
    (a report counts it live in about the time a roll-up would take); ``seconds`` its wall
    time; ``days``: the closed days kept for the experiment after it."""

    counted: bool
    seconds: float
    days: int


def roll_up(
    config: FraudgateConfig,
    store: LedgerStore,
    as_of: float | datetime | None = None,
    *,
    references: ReferenceSource | None = None,
) -> Rollup:
    """Count the experiment's closed days into the ledger's count cache ahead of the report.

    Reads exactly what `evaluate` reads (the same statements, so the same cache entries), and
    keeps nothing but what the ledger stores: a report after it counts only the days that
    are open or changed. The server runs it every ``monitoring.rollup_interval_s``, so the
    cost of the closed days is paid in the background as they close, not by whoever asks for
    the first report; ``fraudgate ledger rollup`` runs it by hand (after a bulk import)."""
    name = _spec(config).name
    started = time.perf_counter()
    if not store.count_cache_status(name).applies:
        return Rollup(False, time.perf_counter() - started, 0)
    _read_counts(config, store, as_of, references)
    return Rollup(True, time.perf_counter() - started, store.count_cache_status(name).days)


def evaluate(
    config: FraudgateConfig,
    store: LedgerStore,
    as_of: float | datetime | None = None,
    *,
    references: ReferenceSource | None = None,
) -> Evaluation:
    """The experiment's evaluation as of ``as_of`` (default now); see the module doc.

    ``config`` needs an ``experiment:`` section (its name, candidates and weights) and may
    have an ``analysis:`` section (maturity, alpha, metric, guardrails, cost; defaults else).
    ``references``: with it, the monitoring section (estimates and score drift; one more
    ledger read and a registry lookup per model), else none (the rollout's periodic checks).
    """
    spec = _spec(config)
    analysis = config.analysis
    champion, challenger = champion_and_challenger(spec, analysis)
    counts, monitoring_reads = _read_counts(config, store, as_of, references)
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
            try:
                power = compare_designs(
                    recall_a,
                    recall_b,
                    frauds_per_day,
                    share_b=share_b,
                    discordant_share=observed if observed else None,
                    alpha=alpha,
                    power=analysis.power,
                )
            except ValueError:  # at this traffic's frauds per day the effect needs > 100 years
                power = None
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
        monitoring=(
            _monitoring(monitoring_reads, t, maturity_s, arms, config)
            if monitoring_reads is not None
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class _MonitoringReads:
    """What the monitoring section read: the ledger's counts and the models' references."""

    counts: MonitoringCounts
    references: dict[str, ScoreReference]
    notes: tuple[str, ...]


def _monitoring_reads(
    store: LedgerStore,
    experiment: str,
    t: float,
    config: FraudgateConfig,
    references: ReferenceSource,
) -> _MonitoringReads:
    """The monitoring counts of every model with decisions in the window and the references
    of the config's models (each looked up in the registry once)."""
    names = [m.name for m in config.models]
    found: dict[str, ScoreReference] = {}
    notes: list[str] = []
    for name in names:
        reference = references(name)
        if reference is None:
            continue
        if reference.column is None:
            notes.append(
                f"{name}: no score drift, {reference.note or 'no drift reference'} "
                f"({reference.uri})"
            )
        else:
            found[name] = reference
    edges = {name: ref.column.edges for name, ref in found.items() if ref.column is not None}
    counts = store.monitoring_counts(experiment, as_of=t, edges=edges)
    return _MonitoringReads(counts, found, tuple(notes))


def _monitoring(
    reads: _MonitoringReads,
    t: float,
    maturity_s: float,
    arms: Sequence[ArmEvaluation],
    config: FraudgateConfig,
) -> Monitoring:
    """Estimates and score drift of every model with decisions in the window (see the module
    doc)."""
    thresholds = DriftThresholds(config.monitoring.psi_warning, config.monitoring.psi_alert)
    return Monitoring(
        _estimates(reads.counts, t, maturity_s, arms),
        _score_drift(reads.counts, reads.references, thresholds),
        reads.notes,
    )


def _estimates(
    counts: MonitoringCounts, t: float, maturity_s: float, arms: Sequence[ArmEvaluation]
) -> tuple[ModelEstimate, ...]:
    window: dict[tuple[str, str], ExpectedCounts] = {}
    matured: dict[tuple[str, str], ExpectedCounts] = {}
    for item in counts.sums:
        key = (item.model, item.role)
        window[key] = window.get(key, ExpectedCounts()) + item.expected
        if _matured_day(item.day, t, maturity_s):
            matured[key] = matured.get(key, ExpectedCounts()) + item.expected
        else:
            matured.setdefault(key, ExpectedCounts())
    by_arm = {arm.arm: arm for arm in arms}
    out = []
    for (model, role), all_days in window.items():
        old = matured[(model, role)]
        arm = by_arm.get(model) if role == "served" else None
        out.append(
            ModelEstimate(
                model=model,
                role=role,
                window=all_days,
                matured=old,
                estimated_precision=old.precision,
                estimated_recall=old.recall,
                window_estimated_precision=all_days.precision,
                window_estimated_recall=all_days.recall,
                realised_precision=arm.metrics.precision if arm is not None else None,
                realised_recall=arm.metrics.recall if arm is not None else None,
            )
        )
    return tuple(out)


def _score_drift(
    counts: MonitoringCounts, references: dict[str, ScoreReference], thresholds: DriftThresholds
) -> tuple[ScoreDrift, ...]:
    out = []
    for histogram in counts.histograms:
        reference = references[histogram.model]
        column = reference.column
        assert column is not None
        total = histogram.total
        value = psi(column.shares, histogram.counts)
        out.append(
            ScoreDrift(
                model=histogram.model,
                role=histogram.role,
                reference_uri=reference.uri,
                registry_version=reference.version,
                rows=total,
                psi=value,
                level=level(value, thresholds),
                ks_at_edges=ks_at_edges(column, histogram.counts),
                edges=column.edges,
                reference_shares=column.shares,
                live_shares=tuple(c / total if total else math.nan for c in histogram.counts),
            )
        )
    return tuple(out)


def registry_references(config: FraudgateConfig) -> ReferenceSource:
    """The config's models' score references from its registry (`Registry.drift_reference`).

    Which version: a URI with a version names it; an alias URI of the registered model names
    whatever the alias points at *now* (after a promotion ``@champion`` is the candidate), so
    the newest version tagged with the model's serving name is taken instead (the version that
    name was trained as: a serving name keeps its version across promotions), else the alias's.
    The ledger records the server's deployment counter, not the registry version, so a name
    retrained under the same serving name in the window is compared with the newest. A registry
    or version that cannot be read gives a reference without a column and the reason, never an
    error (the report still renders)."""
    from pathlib import Path
    from urllib.parse import urlparse

    uris = {m.name: m.uri for m in config.models}
    tracking_uri = config.resolved_tracking_uri()
    registry = None

    def lookup(name: str) -> ScoreReference | None:
        nonlocal registry
        uri = uris.get(name)
        if uri is None:
            return None
        parsed = urlparse(tracking_uri)
        if parsed.scheme == "sqlite" and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
            return ScoreReference(uri, "", None, f"no registry at {tracking_uri}")
        from fraudgate.registry import REGISTERED_MODEL, Registry

        try:
            if registry is None:
                registry = Registry(tracking_uri)
            if uri.startswith(f"models:/{REGISTERED_MODEL}@"):
                tagged = registry.latest_by_serving_name().get(name)
                uri = f"models:/{REGISTERED_MODEL}/{tagged}" if tagged else uri
            version, reference = registry.drift_reference(uri)
        except Exception as exc:  # RegistryError or MLflow's own: the report renders anyway
            return ScoreReference(uri, "", None, f"{type(exc).__name__}: {str(exc)[:300]}")
        if reference is None:
            return ScoreReference(uri, version, None, "registered without a drift reference")
        return ScoreReference(uri, version, reference.column(SCORE_COLUMN))

    return lookup
