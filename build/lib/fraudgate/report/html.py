"""A self-contained HTML page of the offline comparison: tables plus plots, no external assets."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from fraudgate.report.offline import METRICS


def _figure_png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _pr_curves(y: np.ndarray, scores: dict[str, np.ndarray], thresholds: dict[str, float]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5), dpi=100)
    ax = figure.subplots()
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, score)
        line = ax.plot(recall, precision, lw=1.5, label=name)[0]
        flagged = score >= thresholds[name]
        tp = np.sum(flagged & (y == 1))
        ax.scatter(
            [tp / max(y.sum(), 1)], [tp / max(flagged.sum(), 1)], color=line.get_color(), zorder=3
        )
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="Holdout precision-recall (dots: each model's threshold)",
    )
    ax.legend(loc="lower left")
    return figure


def _recall_by_scenario(offline: dict):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    models = offline["models"]
    scenarios = [name for name in offline["comparison"] if name != "all_frauds"]
    figure = Figure(figsize=(7, 3.8), dpi=100)
    ax = figure.subplots()
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models.values()):
        by = model["holdout"].get("recall_by_scenario", {})
        recall = [by[s]["caught"] / by[s]["frauds"] if by.get(s) else 0.0 for s in scenarios]
        ax.bar(np.arange(len(scenarios)) + i * width, recall, width, label=model["serving_name"])
    labels = [name.replace("_", "\n") for name in scenarios]
    ax.set_xticks(np.arange(len(scenarios)) + width * (len(models) - 1) / 2, labels)
    ax.set(ylabel="recall on the holdout", ylim=(0, 1.05), title="Recall by fraud scenario")
    ax.legend()
    return figure


def _interval(value: dict) -> str:
    return f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def write_offline_html(
    offline: dict,
    path: Path,
    y_holdout: np.ndarray,
    holdout_scores: dict[str, np.ndarray],
) -> Path:
    """`holdout_scores` maps serving name to the model's holdout scores (for the PR curves)."""
    models = offline["models"]
    thresholds = {m["serving_name"]: m["threshold"] for m in models.values()}
    names = [m["serving_name"] for m in models.values()]
    rows = [
        ("threshold", [f"{m['threshold']:.4f}" for m in models.values()]),
        *(
            (metric, [_interval(m["holdout"]["metrics"][metric]) for m in models.values()])
            for metric in METRICS
        ),
        *(
            (cell.upper(), [f"{m['holdout']['confusion'][cell]:,}" for m in models.values()])
            for cell in ("tp", "fp", "fn", "tn")
        ),
    ]
    gaps = [
        (name, gap["positives"], _interval(gap["recall_gap"]), f"{gap['mcnemar_p_value']:.2g}")
        for name, gap in offline["comparison"].items()
    ]
    e = html.escape
    table = "".join(
        f"<tr><th>{e(label)}</th>" + "".join(f"<td>{e(v)}</td>" for v in values) + "</tr>"
        for label, values in rows
    )
    gap_rows = "".join(
        f"<tr><th>{e(n)}</th><td>{p:,}</td><td>{e(i)}</td><td>{e(pv)}</td></tr>"
        for n, p, i, pv in gaps
    )
    pr = _figure_png(_pr_curves(y_holdout, holdout_scores, thresholds))
    scenarios = _figure_png(_recall_by_scenario(offline))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fraudgate offline comparison</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
th {{ text-align: left; background: #f5f5f5; }}
</style></head><body>
<h1>Offline comparison</h1>
<p>Holdout days {e(str(offline["plan_days"]["holdout"]))}: neither model trained on these rows.
Thresholds: highest recall with validation precision &ge; {offline["min_precision"]}.
Intervals are 95%.</p>
<table id="metrics"><tr><th>metric</th>{"".join(f"<th>{e(n)}</th>" for n in names)}</tr>
{table}</table>
<h2>Recall gap (v2 &minus; v1) on the same fraud cases</h2>
<table id="gaps"><tr><th>scenario</th><th>frauds</th><th>gap [95% CI]</th><th>McNemar p</th></tr>
{gap_rows}</table>
<img alt="precision-recall curves" src="data:image/png;base64,{pr}">
<img alt="recall by scenario" src="data:image/png;base64,{scenarios}">
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
