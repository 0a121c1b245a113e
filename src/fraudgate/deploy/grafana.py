"""The Grafana dashboard, generated from the config: the experiment's traffic split, latency,
realised and estimated performance by arm with label coverage, drift, decisions and the ledger.

The panels read the same PromQL as the alerts (`fraudgate.deploy.promql`) and draw the alerts'
thresholds from ``monitoring.alerts`` as lines. The data source is a dashboard variable, so the
JSON imports into any Grafana (UI or ``POST /api/dashboards/db``) and asks which Prometheus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fraudgate.config import FraudgateConfig
from fraudgate.deploy import promql

RATE = "$__rate_interval"  # Grafana's rate window: at least four scrape intervals
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
_WIDTH, _HEIGHT = 12, 8


@dataclass(frozen=True, slots=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    """A time-series (or stat) panel; ``threshold``: an alert's limit, drawn as a line."""

    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    threshold: float | None = None
    kind: str = "timeseries"


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _by_arm(metric: str) -> str:
    return promql.per_arm(metric)


def rows(config: FraudgateConfig) -> tuple[Row, ...]:
    """The dashboard's content, top to bottom."""
    a = config.monitoring.alerts
    arm = "{{experiment}} {{model}}"
    requests = f"sum by (model) (rate({promql.REQUESTS}[{RATE}]))"
    decisions = "fraudgate_decisions_total"
    return (
        Row(
            "Experiment: traffic split",
            (
                Panel(
                    "Traffic split: served share vs weight",
                    "Each arm's share of the served requests (all replicas) beside its share of "
                    "the live weights; the traffic-split alert compares the two.",
                    (
                        Target(promql.observed_share(RATE), f"{arm} served"),
                        Target(promql.weight_share(), f"{arm} weight"),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Traffic share deviation from the weights",
                    "Observed share minus the weight's share, as the server reports it; the "
                    "lines are the alert's tolerance.",
                    (Target(_by_arm("fraudgate_experiment_traffic_share_deviation"), arm),),
                    unit="percentunit",
                    threshold=a.traffic_split.tolerance,
                ),
                Panel(
                    "Requests per second",
                    "Inference requests per model (all protocols, all replicas).",
                    (Target(requests, "{{model}}"),),
                    unit="reqps",
                ),
                Panel(
                    "Shadow disagreement",
                    "Share of transactions on which champion and challenger decide differently "
                    "(the shadow scores the same transactions).",
                    (
                        Target(
                            "max by (experiment) (fraudgate_shadow_disagreement_ratio)",
                            "{{experiment}}",
                        ),
                    ),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Latency and errors",
            (
                Panel(
                    "Latency percentiles",
                    "p50, p90 and p99 of request latency per model; the line is the p99 alert.",
                    tuple(
                        Target(promql.latency_quantile(q, RATE), f"{{{{model}}}} p{int(q * 100)}")
                        for q in (0.5, 0.9, 0.99)
                    ),
                    unit="s",
                    threshold=(a.latency.p99_ms or 0.0) / 1000.0,
                ),
                Panel(
                    "Server error ratio",
                    "5xx answers per request, per model; the line is the error-rate alert.",
                    (Target(promql.error_ratio(RATE), "{{model}}"),),
                    unit="percentunit",
                    threshold=a.errors.max_rate,
                ),
            ),
        ),
        Row(
            "Performance by arm",
            (
                Panel(
                    "Precision and recall by arm (realised, labelled)",
                    "From the labels received so far; the line is the recall floor.",
                    (
                        Target(_by_arm("fraudgate_model_recall"), f"{arm} recall"),
                        Target(_by_arm("fraudgate_model_precision"), f"{arm} precision"),
                    ),
                    unit="percentunit",
                    threshold=a.recall.floor,
                ),
                Panel(
                    "Label coverage",
                    "Share of decisions whose label is known; the line is the floor under which "
                    "a stalled label feed alerts.",
                    (Target(_by_arm("fraudgate_label_coverage_ratio"), arm),),
                    unit="percentunit",
                    threshold=a.label_coverage.floor,
                ),
                Panel(
                    "Labelled frauds, pending decisions, labels received",
                    "The evidence behind the realised figures, and the label feed's rate.",
                    (
                        Target(
                            _by_arm("fraudgate_model_labelled_frauds"), f"{arm} labelled frauds"
                        ),
                        Target(_by_arm("fraudgate_label_pending_decisions"), f"{arm} pending"),
                        Target(
                            f"sum by (source) (rate(fraudgate_labels_received_total[{RATE}]))",
                            "labels/s {{source}}",
                        ),
                    ),
                ),
                Panel(
                    "Precision: estimated vs realised",
                    "Expected precision from the calibrated scores (no labels needed) beside the "
                    "realised one as labels arrive.",
                    (
                        Target(_by_arm("fraudgate_model_estimated_precision"), f"{arm} estimated"),
                        Target(_by_arm("fraudgate_model_precision"), f"{arm} realised"),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Recall: estimated vs realised",
                    "Expected recall from the calibrated scores beside the realised one.",
                    (
                        Target(_by_arm("fraudgate_model_estimated_recall"), f"{arm} estimated"),
                        Target(_by_arm("fraudgate_model_recall"), f"{arm} realised"),
                    ),
                    unit="percentunit",
                    threshold=a.recall.floor,
                ),
            ),
        ),
        Row(
            "Drift",
            (
                Panel(
                    "Population stability index by feature",
                    "Live traffic against the training reference; the line is the drift alert.",
                    (
                        Target(
                            "max by (model, feature) (fraudgate_drift_psi)",
                            "{{model}} {{feature}}",
                        ),
                    ),
                    threshold=config.monitoring.psi_alert,
                ),
                Panel(
                    "Kolmogorov-Smirnov statistic by feature",
                    "The largest gap between the live and the reference distributions.",
                    (
                        Target(
                            "max by (model, feature) (fraudgate_drift_ks_statistic)",
                            "{{model}} {{feature}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Decisions and ledger",
            (
                Panel(
                    "Decisions per second",
                    "Fraud and legit decisions per model at its threshold.",
                    (
                        Target(
                            f"sum by (model, decision) (rate({decisions}[{RATE}]))",
                            "{{model}} {{decision}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Alert rate",
                    "Share of decisions that are fraud alerts, per model.",
                    (
                        Target(
                            f'sum by (model) (rate({decisions}{{decision="fraud"}}[{RATE}]))'
                            f" / sum by (model) (rate({decisions}[{RATE}]))",
                            "{{model}}",
                        ),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Shipper lag",
                    "Age of the oldest journaled decision not yet in the ledger, per replica; "
                    "the line is the lag alert.",
                    (Target("fraudgate_ledger_journal_lag_seconds", "{{instance}}"),),
                    unit="s",
                    threshold=a.shipper_lag.seconds,
                ),
                Panel(
                    "Journal bytes behind",
                    "Bytes of each replica's journal not yet shipped.",
                    (Target("fraudgate_ledger_journal_lag_bytes", "{{instance}}"),),
                    unit="bytes",
                ),
                Panel(
                    "Ledger write failures",
                    "Batches of served decisions that could not be recorded (answered 503).",
                    (
                        Target(
                            f"increase(fraudgate_ledger_write_failures_total[{RATE}])",
                            "{{instance}}",
                        ),
                    ),
                ),
                Panel(
                    "Models on their fallback runtime",
                    "1: the configured runtime could not be used, a slower fallback answers.",
                    (
                        Target(
                            "max by (model, version) (fraudgate_model_runtime_fallback)",
                            "{{model}} v{{version}}",
                        ),
                    ),
                    kind="stat",
                ),
            ),
        ),
    )


def panels(config: FraudgateConfig) -> tuple[Panel, ...]:
    return tuple(panel for row in rows(config) for panel in row.panels)


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.threshold is not None:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [
                {"color": "green", "value": None},
                {"color": "red", "value": panel.threshold},
            ],
        }
        if panel.kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {"defaults": defaults, "overrides": []}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": _HEIGHT, "w": _WIDTH, "x": x, "y": y},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
            }
            for i, target in enumerate(panel.targets)
        ],
        "fieldConfig": _field_config(panel),
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if panel.kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"]}},
    }


def dashboard_uid(config: FraudgateConfig) -> str:
    """A stable uid (Grafana allows 40 characters): ``fraudgate-`` and the experiment's name."""
    name = config.experiment_spec.name if config.experiment_spec else "server"
    return ("fraudgate-" + re.sub(r"[^A-Za-z0-9-]+", "-", name))[:40]


def dashboard(config: FraudgateConfig) -> dict[str, Any]:
    """The dashboard JSON model (``"id": null``: Grafana assigns one on import)."""
    spec = config.experiment_spec
    title = f"fraudgate: {spec.name}" if spec is not None else "fraudgate"
    out: list[dict[str, Any]] = []
    y, panel_id = 0, 1
    for row in rows(config):
        out.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id, y = panel_id + 1, y + 1
        for i, panel in enumerate(row.panels):
            x = (i % 2) * _WIDTH
            out.append(_panel_json(panel, panel_id, x, y))
            panel_id += 1
            if x:  # the row's second column is full: next line
                y += _HEIGHT
        if len(row.panels) % 2:
            y += _HEIGHT
    return {
        "id": None,
        "uid": dashboard_uid(config),
        "title": title,
        "tags": ["fraudgate"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                }
            ]
        },
        "panels": out,
    }
