"""The dashboard's monitoring panels, read from the server's `Monitor` (what ``/metrics`` exports).

`estimate_panel`: per configured model the label-free estimated precision and recall over
``monitoring.traffic_window_s`` (`Monitor.estimated_counts`), beside the realised, label-joined
figures of the last ledger read (``monitoring.label_window_days``) and the champion/challenger
disagreement on the paired transactions. `drift_panel`: PSI and KS per column (features and
score) of each model's recent scored rows (`Monitor.drift_results`), with its level by the
configured thresholds, the worst first.

Both only read what the monitor last computed (no statistics run here), on the event loop where
the monitor updates it. Imported by `ExperimentPlane.dashboard` on the first dashboard request,
with the dashboard's own room (`fraudgate.ui`), never when the server starts.
"""

from __future__ import annotations

import math

from fraudgate.analysis.drift import level
from fraudgate.serving.monitoring import ArmGauges, Monitor
from fraudgate.ui.view import (
    DriftPanel,
    EstimatedPerformance,
    FeatureDrift,
    ModelDrift,
    PerformanceEstimate,
    RealisedPerformance,
)

_NO_GAUGES = ArmGauges(math.nan, math.nan, 0, 0, math.nan, math.nan)  # as /metrics shows it


def _realised(arm: ArmGauges) -> RealisedPerformance:
    return RealisedPerformance(
        precision=arm.precision,
        recall=arm.recall,
        labelled_frauds=arm.labelled_frauds,
        pending=arm.pending,
        label_coverage=arm.coverage,
        alert_rate=arm.alert_rate,
    )


def estimate_panel(monitor: Monitor) -> PerformanceEstimate:
    """Estimated vs realised per model, and the paired disagreement (see the module docstring).

    A model that is an experiment arm has realised figures once the monitor has read the
    ledger (None before, or for a model outside the experiment, or without a ledger)."""
    arms = set(monitor.state.spec.candidate_names) if monitor.state is not None else set()
    champion, challenger = monitor.pair or (None, None)
    roles = {champion: "champion", challenger: "challenger"} if monitor.pair else {}
    gauges = monitor.ledger
    models = []
    for name, counts in monitor.estimated_counts().items():
        realised = None
        if gauges is not None and name in arms:
            realised = _realised(gauges.arms.get(name, _NO_GAUGES))
        models.append(
            EstimatedPerformance(
                model=name,
                role=roles.get(name),
                decisions=round(counts.decisions),
                precision=counts.precision,
                recall=counts.recall,
                realised=realised,
            )
        )
    settings = monitor.settings
    return PerformanceEstimate(
        traffic_window_s=settings.traffic_window_s,
        label_window_days=settings.label_window_days,
        models=tuple(models),
        champion=champion,
        challenger=challenger,
        disagreement=gauges.disagreement if gauges is not None else math.nan,
        paired=gauges.paired if gauges is not None else 0,
        ledger_error=monitor.ledger_error,
    )


def _worst_first(column: FeatureDrift) -> tuple[float, float, str, str]:
    """Highest PSI first (its level follows), then KS; not computed (NaN) last."""

    def descending(x: float) -> float:
        return -x if math.isfinite(x) else math.inf

    return (
        descending(column.psi),
        descending(column.ks_statistic),
        column.model,
        column.feature,
    )


def drift_panel(monitor: Monitor) -> DriftPanel:
    """Every column of every model with a drift reference, the worst first, and each model's
    sample (rows, columns at warning and at alert: as ``/metrics`` counts them)."""
    thresholds = monitor.thresholds
    collected = {}  # rows each model's sample holds (drained on the monitor's refresh)
    for deployed in monitor.deployed():
        sample = getattr(deployed, "sample", None)
        if sample is not None:
            collected[deployed.name] = sample.filled
    models, columns = [], []
    for name, results in monitor.drift_results().items():
        rows = [
            FeatureDrift(
                model=name,
                feature=r.column,
                psi=r.psi,
                ks_statistic=r.ks_statistic,
                rows=r.rows,
                level=level(r.psi, thresholds),
            )
            for r in results
        ]
        columns.extend(rows)
        models.append(
            ModelDrift(
                model=name,
                collected=collected.get(name, 0),
                rows=results[0].rows if results else 0,
                warning=sum(c.level in ("warning", "alert") for c in rows),
                alert=sum(c.level == "alert" for c in rows),
            )
        )
    return DriftPanel(
        psi_warning=thresholds.psi_warning,
        psi_alert=thresholds.psi_alert,
        min_rows=monitor.settings.drift_min_rows,
        models=tuple(models),
        columns=tuple(sorted(columns, key=_worst_first)),
    )
