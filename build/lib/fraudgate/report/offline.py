"""Terminal rendering of the offline comparison (the dict written to offline.json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

METRICS = ("precision", "recall", "f1", "pr_auc", "roc_auc")


def _interval(value: dict) -> str:
    return f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def render_offline(offline: dict, console: Console) -> None:
    models = offline["models"]
    keys = list(models)
    table = Table(
        title="Holdout comparison (95% confidence intervals; neither model trained on these rows)",
        title_justify="left",
    )
    table.add_column("metric")
    for key in keys:
        table.add_column(models[key]["serving_name"], justify="right")
    table.add_row("threshold", *(f"{models[k]['threshold']:.4f}" for k in keys))
    table.add_row(
        "validation precision / recall",
        *(
            f"{models[k]['validation']['precision']:.3f} / {models[k]['validation']['recall']:.3f}"
            for k in keys
        ),
    )
    for metric in METRICS:
        table.add_row(metric, *(_interval(models[k]["holdout"]["metrics"][metric]) for k in keys))
    for cell in ("tp", "fp", "fn", "tn"):
        table.add_row(cell.upper(), *(f"{models[k]['holdout']['confusion'][cell]:,}" for k in keys))
    console.print(table)

    scenarios = Table(title="Recall by fraud scenario on the holdout", title_justify="left")
    scenarios.add_column("scenario")
    scenarios.add_column("frauds", justify="right")
    for key in keys:
        scenarios.add_column(f"{key} caught", justify="right")
    scenarios.add_column("recall gap v2-v1 (95% CI)", justify="right", no_wrap=True)
    scenarios.add_column("McNemar p", justify="right")
    for name, gap in offline["comparison"].items():
        row = [name, f"{gap['positives']:,}"]
        for key in keys:
            by = models[key]["holdout"].get("recall_by_scenario", {})
            if name == "all_frauds":
                caught = models[key]["holdout"]["confusion"]["tp"]
            else:
                caught = by.get(name, {}).get("caught", 0)
            row.append(f"{caught:,}")
        g = gap["recall_gap"]
        row += [
            f"{g['estimate']:+.3f} ({g['low']:+.3f}..{g['high']:+.3f})",
            f"{gap['mcnemar_p_value']:.2g}",
        ]
        scenarios.add_row(*row)
    console.print(scenarios)
