"""``report.html``: an experiment's evaluation as one self-contained page (no external assets).

The decision and the comparison table, then plots as inline base64 PNGs (matplotlib, Agg):
the primary metric's confidence sequence over event days, recall and alert rate per day with
intervals, label coverage, the traffic split, latency percentiles, the money per arm, and (with
the monitoring section) estimated against realised precision / recall and each model's score
histogram against its training reference.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from rich.console import Console

from fraudgate.report.evaluation import render_evaluation


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _figure(title: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.6), dpi=100)
    ax = figure.subplots()
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return figure, ax


def _finite(x: float) -> float:
    return x if math.isfinite(x) else float("nan")


def _sequence_plot(e: Any) -> str:
    figure, ax = _figure(
        f"{e.metric} difference (challenger - champion): always-valid 95% sequence, "
        "cumulative over event days",
        "difference (points)",
    )
    days = list(range(len(e.days)))
    est = [100 * _finite(d.sequence.estimate) for d in e.days]
    low = [100 * _finite(d.sequence.low) for d in e.days]
    high = [100 * _finite(d.sequence.high) for d in e.days]
    ax.fill_between(days, low, high, alpha=0.25, label="confidence sequence")
    ax.plot(days, est, lw=1.5, label="estimate")
    ax.axhline(0, color="black", lw=0.8)
    _day_ticks(ax, e)
    ax.legend(loc="best", fontsize=8)
    return _png(figure)


def _day_ticks(ax: Any, e: Any) -> None:
    step = max(1, len(e.days) // 8)
    ticks = list(range(0, len(e.days), step))
    ax.set_xticks(ticks, [e.days[i].date for i in ticks], rotation=30, fontsize=7)
    matured = [i for i, d in enumerate(e.days) if d.matured]
    if matured:
        ax.axvspan(-0.5, matured[-1] + 0.5, color="green", alpha=0.05, label="matured days")


def _per_arm_plot(e: Any, title: str, ylabel: str, pick: Any, interval: bool = True) -> str:
    figure, ax = _figure(title, ylabel)
    days = list(range(len(e.days)))
    for index, arm in enumerate(a.arm for a in e.arms):
        values = [pick(d.arms[index]) for d in e.days]
        if interval:
            est = [100 * _finite(v.estimate) for v in values]
            ax.fill_between(
                days,
                [100 * _finite(v.low) for v in values],
                [100 * _finite(v.high) for v in values],
                alpha=0.15,
            )
        else:
            est = [100 * _finite(v) for v in values]
        ax.plot(days, est, lw=1.3, label=arm)
    _day_ticks(ax, e)
    ax.legend(loc="best", fontsize=8)
    return _png(figure)


def _split_plot(e: Any) -> str:
    figure, ax = _figure("Traffic split: share of each day's transactions per arm", "share (%)")
    days = list(range(len(e.days)))
    bottom = [0.0] * len(days)
    for index, arm in enumerate(e.arms):
        totals = [sum(a.transactions for a in d.arms) for d in e.days]
        shares = [
            100 * d.arms[index].transactions / t if t else 0.0
            for d, t in zip(e.days, totals, strict=True)
        ]
        ax.bar(days, shares, bottom=bottom, label=f"{arm.arm} (weight {arm.weight:g})")
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    _day_ticks(ax, e)
    ax.legend(loc="lower right", fontsize=8)
    return _png(figure)


def _latency_plot(e: Any) -> str:
    figure, ax = _figure("Served latency per arm (from the ledger's histogram)", "ms")
    names = ("p50", "p95", "p99")
    width = 0.8 / max(len(e.arms), 1)
    for index, arm in enumerate(e.arms):
        if arm.latency is None:
            continue
        values = [getattr(arm.latency, n).estimate_ms for n in names]
        ax.bar([i + index * width for i in range(3)], values, width, label=arm.arm)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(3)], names)
    ax.legend(loc="best", fontsize=8)
    return _png(figure)


def _cost_plot(e: Any) -> str:
    figure, ax = _figure("Net value per day against no model (95% interval)", "per day")
    labels, values, errors = [], [], []
    for arm in e.arms:
        if arm.value is None:
            continue
        day = arm.value.net_value.per_day
        labels.append(arm.arm)
        values.append(_finite(day.estimate))
        errors.append(_finite((day.high - day.low) / 2))
    if e.value_difference is not None:
        day = e.value_difference.per_day
        labels.append("difference (b - a)")
        values.append(_finite(day.estimate))
        errors.append(_finite((day.high - day.low) / 2))
    if labels:
        ax.bar(labels, values, yerr=[0 if math.isnan(x) else x for x in errors], capsize=4)
    ax.axhline(0, color="black", lw=0.8)
    return _png(figure)


def _estimates_plot(monitoring: Any) -> str:
    figure, ax = _figure(
        "Label-free estimate (from the scores) against realised, served decisions, matured days",
        "%",
    )
    rows = [m for m in monitoring.estimates if m.realised_precision is not None]
    labels = [f"{m.model}\n{metric}" for m in rows for metric in ("precision", "recall")]
    estimated = [
        100 * _finite(v) for m in rows for v in (m.estimated_precision, m.estimated_recall)
    ]
    realised = [
        100 * _finite(v.estimate) for m in rows for v in (m.realised_precision, m.realised_recall)
    ]
    x = list(range(len(labels)))
    ax.bar([i - 0.2 for i in x], estimated, 0.4, label="estimated (CBPE)")
    ax.bar([i + 0.2 for i in x], realised, 0.4, label="realised (labels)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.legend(loc="best", fontsize=8)
    return _png(figure)


def _drift_plot(d: Any) -> str:
    figure, ax = _figure(
        f"{d.model} ({d.role}): score share per reference bin, PSI {_finite(d.psi):.4f}",
        "share (%)",
    )
    x = list(range(len(d.reference_shares)))
    ax.bar([i - 0.2 for i in x], [100 * s for s in d.reference_shares], 0.4, label="training")
    ax.bar([i + 0.2 for i in x], [100 * _finite(s) for s in d.live_shares], 0.4, label="window")
    bounds = ["-inf", *(f"{e:.3g}" for e in d.edges), "1"]
    ax.set_xticks(x, [f"<= {b}" for b in bounds[1:]], rotation=30, fontsize=7)
    ax.legend(loc="best", fontsize=8)
    return _png(figure)


def evaluation_html(evaluation: Any) -> str:
    """The page's HTML text."""
    e = evaluation
    console = Console(record=True, width=160, file=io.StringIO())
    render_evaluation(e, console)
    summary = console.export_text()
    plots: list[tuple[str, str]] = []
    if e.days:
        plots = [
            ("Confidence sequence over days", _sequence_plot(e)),
            (
                "Recall per event day",
                _per_arm_plot(
                    e, "Recall per event day (labels as of T), 95% Wilson", "recall (%)",
                    lambda a: a.recall,
                ),
            ),
            (
                "Alert rate per event day",
                _per_arm_plot(
                    e, "Alert rate per event day, 95% Wilson", "alert rate (%)",
                    lambda a: a.alert_rate,
                ),
            ),
            (
                "Label coverage",
                _per_arm_plot(
                    e, "Label coverage: labelled or matured share of each day's transactions",
                    "coverage (%)", lambda a: a.label_coverage, interval=False,
                ),
            ),
            ("Traffic split", _split_plot(e)),
            ("Latency", _latency_plot(e)),
            ("Cost", _cost_plot(e)),
        ]  # fmt: skip
    if e.monitoring is not None:
        if any(m.realised_precision is not None for m in e.monitoring.estimates):
            plots.append(("Estimated against realised", _estimates_plot(e.monitoring)))
        for d in e.monitoring.drift:
            plots.append((f"Score drift: {d.model} ({d.role})", _drift_plot(d)))
    figures = "\n".join(
        f'<h2>{html.escape(title)}</h2>\n<img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in plots
    )
    reasons = "\n".join(f"<li>{html.escape(r)}</li>" for r in e.decision.reasons)
    outcome = e.decision.outcome.value
    title = f"fraudgate report: {e.experiment}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }}
pre {{ font-size: 12px; overflow-x: auto; background: #f6f6f6; padding: 0.8rem; }}
.outcome {{ font-size: 1.6rem; font-weight: bold; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="outcome">Decision: {html.escape(outcome)}</p>
<ul>
{reasons}
</ul>
<pre>{html.escape(summary)}</pre>
{figures}
</body></html>
"""


def write_evaluation_html(evaluation: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(evaluation_html(evaluation), encoding="utf-8")
    return path
