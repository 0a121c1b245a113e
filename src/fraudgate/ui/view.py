"""The dashboard's view model: what the page at ``/ui`` shows, as typed records.

`dashboard_view` puts together four things of different freshness: the experiment's live state
(weights, generation: read on every request, so a weight change shows on the next refresh), the
ledger pipeline's health (journal lag, shipper), a cached `EvaluationSnapshot` (the evaluation is
the expensive part; `fraudgate.ui.source` computes it at most once per few seconds), and the
server's background monitoring (`PerformanceEstimate`: label-free expected precision/recall
beside the realised, label-joined figures; `DriftPanel`: PSI and KS per feature and score),
read as the monitor last computed it (None: "not available" on the page). The evaluation is read
by its fields (``fraudgate.evaluation.Evaluation``), and `dashboard_json` turns the whole into
the JSON the page renders (nan -> null).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fraudgate.analysis.counts import Interval
from fraudgate.report.plain import iso, plain
from fraudgate.weights import WeightChange, whole_weights

SCHEMA_VERSION = 1
MAX_HISTORY = 10  # weight changes shown, newest first


# -- inputs: what the server knows live -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LiveExperiment:
    """The experiment as the router serves it now."""

    name: str
    generation: int
    weights: Mapping[str, float]
    default: str | None
    mirror_percent: int


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """The ledger pipeline's health: how far the journal is behind, the shipper, readiness.

    ``acknowledge``: ``journal`` (decisions journaled, shipped by `fraudgate ledger ship`),
    ``commit`` (committed before the answer) or ``none`` (no ledger). ``unready_reason`` is
    why the ledger cannot take decisions now (None: healthy).
    """

    acknowledge: str
    unready_reason: str | None = None
    journal_lag_s: float | None = None
    journal_lag_bytes: int | None = None
    shipper: str | None = None  # "child" | "external" | None (no journal)
    shipper_up: bool | None = None
    shipper_restarts: int | None = None


@dataclass(frozen=True, slots=True)
class RealisedPerformance:
    """An arm's label-joined figures over the monitoring's label window (what ``/metrics``
    exports as ``fraudgate_model_precision`` and its neighbours)."""

    precision: float
    recall: float
    labelled_frauds: int
    pending: int
    label_coverage: float
    alert_rate: float


@dataclass(frozen=True, slots=True)
class EstimatedPerformance:
    """A model's expected precision and recall from its calibrated scores over the traffic
    window (no labels needed), beside its realised figures (None: not an experiment arm, or no
    ledger read yet): the estimate follows covariate shift, not concept drift, so it is shown
    next to the labels, never instead of them."""

    model: str
    role: str | None  # "champion" | "challenger" | None
    decisions: int  # behind the estimate, in the traffic window
    precision: float
    recall: float
    realised: RealisedPerformance | None


@dataclass(frozen=True, slots=True)
class PerformanceEstimate:
    """The "estimated vs realised" panel: every model, and the champion/challenger
    disagreement on the transactions both scored (NaN: none paired)."""

    traffic_window_s: float
    label_window_days: float
    models: tuple[EstimatedPerformance, ...]
    champion: str | None
    challenger: str | None
    disagreement: float
    paired: int
    ledger_error: str | None  # the last ledger read failed (the realised figures are older)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One column's (a feature's or the score's) drift of a model's recent scored rows from its
    training reference; ``level`` by the configured PSI thresholds (``unknown``: too few rows)."""

    model: str
    feature: str
    psi: float
    ks_statistic: float
    rows: int
    level: str  # "stable" | "warning" | "alert" | "unknown"


@dataclass(frozen=True, slots=True)
class ModelDrift:
    """One model's drift sample: rows kept so far (drift is computed from ``min_rows`` on),
    rows it was computed on (0: not yet), columns at each level."""

    model: str
    collected: int
    rows: int
    warning: int  # columns at or above psi_warning (alerts included)
    alert: int


@dataclass(frozen=True, slots=True)
class DriftPanel:
    """The drift panel: the thresholds, each model's sample, and every column of every model,
    the worst first (highest PSI, then KS; unknown last)."""

    psi_warning: float
    psi_alert: float
    min_rows: int
    models: tuple[ModelDrift, ...]
    columns: tuple[FeatureDrift, ...]


@dataclass(frozen=True, slots=True)
class EvaluationSnapshot:
    """One computation behind the dashboard (cached): the evaluation or why there is none, and
    the weight history; timed."""

    evaluation: Any  # fraudgate.evaluation.Evaluation | None
    error: str | None
    history: tuple[WeightChange, ...]
    computed_at: float  # epoch seconds
    computed_in_s: float


# -- outputs: what the page shows ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ArmShare:
    """One arm's live weight and share, and the share of units it was observed to serve."""

    arm: str
    weight: float
    weight_share: float
    units: int | None
    observed_share: float | None


@dataclass(frozen=True, slots=True)
class SrmStatus:
    """The sample-ratio-mismatch test of the evaluation (chi-square of units against the
    weights it tested: ``expected_shares``)."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected_shares: tuple[float, ...]
    chi_square: float
    p_value: float
    threshold: float
    mismatch: bool


@dataclass(frozen=True, slots=True)
class LatencyView:
    """Served latency recorded in the ledger (ms): count and percentiles."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class ArmPanel:
    """One arm: volume and label coverage over the window, metrics (matured days, except the
    alert rate: the whole window) with their intervals, and latency."""

    arm: str
    role: str
    transactions: int
    matured_transactions: int
    labelled: int
    pending: int
    label_coverage: float
    precision: Interval
    recall: Interval
    f1: Interval
    alert_rate: Interval
    value_detection_rate: Interval
    latency: LatencyView | None


@dataclass(frozen=True, slots=True)
class DayArm:
    arm: str
    transactions: int
    recall: Interval
    alert_rate: Interval
    label_coverage: float


@dataclass(frozen=True, slots=True)
class Day:
    """One event day (UTC): per-arm recall and alert rate; ``matured`` once its labels are in."""

    date: str
    matured: bool
    arms: tuple[DayArm, ...]


@dataclass(frozen=True, slots=True)
class Guardrail:
    name: str
    breached: bool
    blocks_promotion: bool
    detail: str


@dataclass(frozen=True, slots=True)
class DecisionPanel:
    """The rule's outcome and every reason, with the primary metric's always-valid interval
    (challenger - champion) it was judged on."""

    outcome: str
    reasons: tuple[str, ...]
    guardrails: tuple[Guardrail, ...]
    expected_days_to_decision: float | None
    design: str
    metric: str
    alpha: float
    difference: Interval
    p_value: float
    frauds: int


@dataclass(frozen=True, slots=True)
class EvaluationPanel:
    """The cached evaluation, as the page shows it."""

    evaluated_at: str | None
    as_of: str | None
    computed_in_s: float
    champion: str
    challenger: str
    days_elapsed: float
    maturity_days: float
    matured_until: str | None
    arms: tuple[ArmPanel, ...]
    days: tuple[Day, ...]
    decision: DecisionPanel


@dataclass(frozen=True, slots=True)
class Actions:
    """Where the page's buttons send their requests (all need the admin token)."""

    weights: str
    promote: str
    rollback: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything the page at ``/ui`` shows (``GET /ui/api/dashboard``)."""

    schema_version: int
    generated_at: str | None
    refresh_s: float
    experiment: LiveExperiment
    split: tuple[ArmShare, ...]
    srm: SrmStatus | None
    evaluation: EvaluationPanel | None
    evaluation_error: str | None
    estimated: PerformanceEstimate | None
    drift: DriftPanel | None
    pipeline: PipelineStatus
    history: tuple[dict[str, Any], ...]
    actions: Actions


# -- building it ---------------------------------------------------------------------------------
def _latency(summary: Any) -> LatencyView | None:
    if summary is None:
        return None
    return LatencyView(
        summary.count,
        summary.mean_ms,
        summary.p50.estimate_ms,
        summary.p95.estimate_ms,
        summary.p99.estimate_ms,
        summary.max_ms,
    )


def _arm(arm: Any) -> ArmPanel:
    window, metrics = arm.window, arm.metrics
    return ArmPanel(
        arm=arm.arm,
        role=arm.role,
        transactions=window.total,
        matured_transactions=arm.matured.total,
        labelled=window.labelled,
        pending=window.unlabelled,
        label_coverage=arm.label_coverage,
        precision=metrics.precision,
        recall=metrics.recall,
        f1=metrics.f1,
        alert_rate=metrics.alert_rate,
        value_detection_rate=metrics.value_detection_rate,
        latency=_latency(arm.latency),
    )


def _day(day: Any) -> Day:
    arms = tuple(
        DayArm(a.arm, a.transactions, a.recall, a.alert_rate, a.label_coverage) for a in day.arms
    )
    return Day(day.date, day.matured, arms)


def _decision(e: Any) -> DecisionPanel:
    decision, sequence = e.decision, e.sequence
    return DecisionPanel(
        outcome=str(decision.outcome.value),
        reasons=tuple(decision.reasons),
        guardrails=tuple(
            Guardrail(g.name, g.breached, g.blocks_promotion, g.detail) for g in decision.guardrails
        ),
        expected_days_to_decision=decision.expected_days_to_decision,
        design=e.design,
        metric=e.metric,
        alpha=e.alpha,
        difference=sequence.sequence,
        p_value=sequence.p_value,
        frauds=sequence.n,
    )


def _evaluation(snapshot: EvaluationSnapshot) -> EvaluationPanel | None:
    e = snapshot.evaluation
    if e is None:
        return None
    return EvaluationPanel(
        evaluated_at=iso(snapshot.computed_at),
        as_of=iso(e.as_of),
        computed_in_s=snapshot.computed_in_s,
        champion=e.champion,
        challenger=e.challenger,
        days_elapsed=e.days_elapsed,
        maturity_days=e.maturity_days,
        matured_until=iso(e.matured_until),
        arms=tuple(_arm(a) for a in e.arms),
        days=tuple(_day(d) for d in e.days),
        decision=_decision(e),
    )


def _srm(srm: Any) -> SrmStatus | None:
    if srm is None:
        return None
    total = sum(srm.expected) or 1.0
    return SrmStatus(
        arms=tuple(srm.arms),
        observed=tuple(srm.observed),
        expected_shares=tuple(x / total for x in srm.expected),
        chi_square=srm.chi_square,
        p_value=srm.p_value,
        threshold=srm.threshold,
        mismatch=srm.mismatch,
    )


def _split(live: LiveExperiment, evaluation: Any) -> tuple[ArmShare, ...]:
    units: dict[str, int] = {}
    if evaluation is not None:
        units = {a.arm: a.units for a in evaluation.arms}
    total_weight = sum(live.weights.values())
    total_units = sum(units.get(name, 0) for name in live.weights)
    rows = []
    for name, weight in live.weights.items():
        observed = units.get(name) if evaluation is not None else None
        rows.append(
            ArmShare(
                arm=name,
                weight=weight,
                weight_share=weight / total_weight if total_weight else math.nan,
                units=observed,
                observed_share=(observed or 0) / total_units if total_units else None,
            )
        )
    return tuple(rows)


def _history(changes: Sequence[WeightChange]) -> tuple[dict[str, Any], ...]:
    newest = sorted(changes, key=lambda c: c.at, reverse=True)[:MAX_HISTORY]
    return tuple(change.to_json(with_generation=False) for change in newest)


def dashboard_view(
    live: LiveExperiment,
    pipeline: PipelineStatus,
    snapshot: EvaluationSnapshot,
    *,
    refresh_s: float,
    estimated: PerformanceEstimate | None = None,
    drift: DriftPanel | None = None,
    now: float | None = None,
) -> Dashboard:
    """The dashboard from the live state, the pipeline's health, an evaluation snapshot and
    the monitoring's panels (None: not available)."""
    name = live.name
    prefix = f"/admin/experiments/{name}"
    return Dashboard(
        schema_version=SCHEMA_VERSION,
        generated_at=iso(time.time() if now is None else now),
        refresh_s=refresh_s,
        experiment=LiveExperiment(
            name,
            live.generation,
            whole_weights(live.weights),
            live.default,
            live.mirror_percent,
        ),
        split=_split(live, snapshot.evaluation),
        srm=None if snapshot.evaluation is None else _srm(snapshot.evaluation.srm),
        evaluation=_evaluation(snapshot),
        evaluation_error=snapshot.error,
        estimated=estimated,
        drift=drift,
        pipeline=pipeline,
        history=_history(snapshot.history),
        actions=Actions(f"{prefix}/weights", f"{prefix}/promote", f"{prefix}/rollback"),
    )


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as the JSON API answers it (nan and inf as null)."""
    document: dict[str, Any] = plain(dashboard)
    return document
