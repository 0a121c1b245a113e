"""An experiment's evaluation as a terminal summary and as ``report.json``.

Renders a `fraudgate.evaluation.Evaluation` by its fields (this room sits below the one that
computes it, so it never imports it): the seed's comparison table with intervals, p-values and
tests named, the monitoring section when there is one (label-free estimates beside the realised
figures, score drift), then the decision and every reason. ``evaluation_json`` is the JSON
document whose schema is ``report.schema.json`` next to this file (validated in tests).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fraudgate.report.plain import iso as _iso
from fraudgate.report.plain import plain as _plain

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
SCHEMA_VERSION = 1
_OUTCOME_STYLE = {"PROMOTE": "bold green", "ROLLBACK": "bold red", "STOP": "bold yellow"}


def evaluation_json(evaluation: Any) -> dict[str, Any]:
    """The ``report.json`` document (see ``report.schema.json``)."""
    document = _plain(evaluation)
    counts = document.pop("counts")
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(datetime.now(UTC).timestamp()),
        "as_of_iso": _iso(evaluation.as_of),
        **document,
        "counts": counts,
    }


def evaluation_snapshot(evaluation: Any) -> dict[str, Any]:
    """What an act records of the evaluation it was based on: ``report.json`` without the
    per-day series and the raw counts (the decision, its reasons, guardrails and statistics)."""
    document = evaluation_json(evaluation)
    for bulky in ("days", "counts"):
        document.pop(bulky, None)
    return document


def write_evaluation_json(evaluation: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluation_json(evaluation), indent=2, allow_nan=False) + "\n")
    return path


def _pct(interval: Any, points: bool = False) -> str:
    """``12.3% (10.1-14.6)`` (or signed points for a difference); ``-`` when not measurable."""
    if interval is None or not math.isfinite(interval.estimate):
        return "-"
    sign = "+" if points else ""
    low = interval.low if math.isfinite(interval.low) else float("nan")
    high = interval.high if math.isfinite(interval.high) else float("nan")
    unit = " pts" if points else "%"
    return f"{100 * interval.estimate:{sign}.1f}{unit} [{100 * low:.1f}, {100 * high:.1f}]"


def _p(value: float | None, test: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    shown = "<0.0001" if value < 1e-4 else f"{value:.4f}"
    return f"{shown} {test}".strip()


def _amount(x: float) -> str:
    """1,234 / 12.3k / 1.23M: money short enough for a table cell."""
    size = abs(x)
    if size >= 1e6:
        return f"{x / 1e6:.2f}M"
    if size >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:,.0f}"


def _money(estimate: Any) -> str:
    if estimate is None or not math.isfinite(estimate.estimate):
        return "-"
    bounds = (
        f" [{_amount(estimate.low)}, {_amount(estimate.high)}]"
        if math.isfinite(estimate.low) and math.isfinite(estimate.high)
        else ""
    )
    sign = "+" if estimate.estimate > 0 else ""
    return f"{sign}{_amount(estimate.estimate)}{bounds}"


def _ratio(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


_LEVEL_STYLE = {"alert": "bold red", "warning": "yellow", "stable": "green"}


def render_monitoring(monitoring: Any, console: Console) -> None:
    """The label-free estimates beside the realised figures, and the score drift."""
    table = Table(
        title="Estimated (label-free, from the calibrated scores: E[TP] = the flagged "
        "decisions' summed scores) against realised (label-joined) precision and recall; "
        "matured days unless marked 'window'; per decision",
        title_justify="left",
    )
    for name in ("model", "role", "decisions"):
        table.add_column(name, overflow="fold", justify="right" if name == "decisions" else "left")
    for name in (
        "precision est.",
        "precision realised",
        "recall est.",
        "recall realised",
        "precision est. (window)",
        "recall est. (window)",
    ):
        table.add_column(name, justify="right", overflow="fold")
    for m in monitoring.estimates:
        table.add_row(
            m.model,
            m.role,
            f"{m.window.flagged + m.window.passed:,.0f}",
            _ratio(m.estimated_precision),
            _pct(m.realised_precision),
            _ratio(m.estimated_recall),
            _pct(m.realised_recall),
            _ratio(m.window_estimated_precision),
            _ratio(m.window_estimated_recall),
        )
    console.print(table)
    if monitoring.drift:
        drift = Table(
            title="Score drift of the window's decisions against the model version's training "
            "reference: PSI over its bins; KS at the bin edges only (from bin counts: a lower "
            "bound of the two-sample KS statistic)",
            title_justify="left",
        )
        for name in ("model", "role", "reference", "decisions", "PSI", "level", "KS >="):
            drift.add_column(name, overflow="fold")
        for d in monitoring.drift:
            style = _LEVEL_STYLE.get(d.level, "")
            drift.add_row(
                d.model,
                d.role,
                f"{d.reference_uri} (v{d.registry_version})",
                f"{d.rows:,}",
                "-" if not math.isfinite(d.psi) else f"{d.psi:.4f}",
                f"[{style}]{d.level}[/]" if style else d.level,
                "-" if not math.isfinite(d.ks_at_edges) else f"{d.ks_at_edges:.4f}",
            )
        console.print(drift)
    for note in monitoring.notes:
        console.print(f"Score drift: {note}", markup=False)


def render_evaluation(evaluation: Any, console: Console) -> None:
    """The comparison table (champion, challenger, difference with its test) and the decision."""
    e = evaluation
    a, b = e.arm(e.champion), e.arm(e.challenger)
    as_of = _iso(e.as_of)
    table = Table(
        title=f"Experiment {e.experiment!r} as of {as_of}: b = {e.challenger} (challenger) "
        f"against a = {e.champion} (champion), {e.design} design. Recall, precision and value "
        f"on transactions at least {e.maturity_days:g} days old; [95% intervals]; net value "
        "against no model",
        title_justify="left",
    )
    table.add_column("metric", overflow="fold")
    table.add_column(f"a: {e.champion}", justify="right", overflow="fold")
    table.add_column(f"b: {e.challenger}", justify="right", overflow="fold")
    table.add_column("b - a", justify="right", overflow="fold")
    table.add_column("p-value (test)", justify="right", overflow="fold")
    table.add_row(
        "transactions (pending)",
        f"{a.window.total:,} ({a.window.unlabelled:,})",
        f"{b.window.total:,} ({b.window.unlabelled:,})",
        "",
        "",
    )
    table.add_row(
        "matured frauds / alerts",
        f"{a.matured.frauds:,} / {a.matured.tp + a.matured.fp:,}",
        f"{b.matured.frauds:,} / {b.matured.tp + b.matured.fp:,}",
        "",
        "",
    )
    paired, split = e.paired, e.split
    recall_diff = recall_p = alert_diff = alert_p = None
    if e.design == "paired" and paired is not None:
        recall_diff, alert_diff = paired.recall.difference, paired.alert_rate.difference
        kind = "McNemar exact" if paired.recall.exact else "McNemar"
        recall_p = _p(paired.recall.mcnemar_p_value, kind)
        kind = "McNemar exact" if paired.alert_rate.exact else "McNemar"
        alert_p = _p(paired.alert_rate.mcnemar_p_value, kind)
    elif split is not None:
        recall_diff, alert_diff = split.recall.difference, split.alert_rate.difference
        recall_p = _p(split.recall.p_value, split.recall.test)
        alert_p = _p(split.alert_rate.p_value, split.alert_rate.test)
    table.add_row(
        "recall",
        _pct(a.metrics.recall),
        _pct(b.metrics.recall),
        _pct(recall_diff, True),
        recall_p or "-",
    )
    precision_p = _p(split.precision.p_value, split.precision.test) if split else "-"
    precision_diff = split.precision.difference if split else None
    table.add_row(
        "precision",
        _pct(a.metrics.precision),
        _pct(b.metrics.precision),
        _pct(precision_diff, True),
        precision_p,
    )
    table.add_row(
        "alert rate (all)",
        _pct(a.metrics.alert_rate),
        _pct(b.metrics.alert_rate),
        _pct(alert_diff, True),
        alert_p or "-",
    )
    table.add_row(
        "value detection rate",
        _pct(a.metrics.value_detection_rate),
        _pct(b.metrics.value_detection_rate),
        "",
        "",
    )
    table.add_row("F1", _pct(a.metrics.f1), _pct(b.metrics.f1), "", "")
    seq = e.sequence
    table.add_row(
        f"{e.metric}, always-valid",
        "",
        "",
        _pct(seq.sequence, True),
        _p(seq.p_value, "sequential"),
    )

    def latency(arm: Any) -> str:
        if arm.latency is None:
            return "-"
        s = arm.latency
        return f"{s.p50.estimate_ms:.1f} / {s.p95.estimate_ms:.1f} / {s.p99.estimate_ms:.1f}"

    table.add_row("latency p50/p95/p99 ms", latency(a), latency(b), "", "")
    table.add_row(
        "net value / day",
        _money(a.value.net_value.per_day) if a.value else "-",
        _money(b.value.net_value.per_day) if b.value else "-",
        _money(e.value_difference.per_day) if e.value_difference else "-",
        "",
    )
    table.add_row(
        "net value / year",
        _money(a.value.net_value.per_year) if a.value else "-",
        _money(b.value.net_value.per_year) if b.value else "-",
        _money(e.value_difference.per_year) if e.value_difference else "-",
        "",
    )
    if e.srm is not None:
        shares = " / ".join(f"{100 * s:.1f}%" for s in e.srm.observed_shares)
        table.add_row(
            "traffic split (cards)",
            f"{a.units:,}",
            f"{b.units:,}",
            shares,
            _p(e.srm.p_value, "chi-square"),
        )
    console.print(table)
    if e.power is not None:
        p = e.power
        console.print(
            f"Power: to detect recall {100 * p.recall_a:.1f}% -> {100 * p.recall_b:.1f}% with "
            f"{100 * p.power:.0f}% power, the split needs {p.split.frauds_needed:,} labelled "
            f"frauds (~{p.split.days_needed} days), the paired shadow {p.paired.frauds_needed:,} "
            f"(~{p.paired.days_needed} days)."
        )
    if e.monitoring is not None:
        render_monitoring(e.monitoring, console)
    outcome = e.decision.outcome.value
    style = _OUTCOME_STYLE.get(outcome, "bold")
    console.print(f"Decision: [{style}]{outcome}[/]")
    for reason in e.decision.reasons:
        console.print(f"  - {reason}")
