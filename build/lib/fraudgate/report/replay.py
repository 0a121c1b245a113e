"""Terminal rendering of a replay's summary (the dict `fraudgate.replay` writes to replay.json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def render_summary(summary: Mapping[str, Any], console: Console) -> None:
    """The replay summary as rich tables."""
    table = Table(
        title=f"Replay against {summary['url']} ({summary['protocol']})", show_header=False
    )
    table.add_column("what", style="bold")
    table.add_column("value")
    errors = summary["errors"]
    error_text = ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none"
    table.add_row(
        "transactions", f"{summary['sent']} sent, {summary['ok']} ok, errors: {error_text}"
    )
    table.add_row(
        "window", f"{summary['window']['from']} .. {summary['window']['to']} ({summary['source']})"
    )
    table.add_row("frauds replayed", str(summary["frauds_replayed"]))
    lat = summary["latency_ms"]
    table.add_row(
        "throughput",
        f"{summary['throughput_rps']} req/s over {summary['elapsed_s']} s "
        f"(limit {summary['rate_limit_rps'] or 'none'} req/s, "
        f"concurrency {summary['concurrency']})",
    )
    table.add_row("latency", f"p50 {lat['p50']} ms, p99 {lat['p99']} ms")
    labels = summary["labels"]
    label_text = (
        f"{labels['sent']} sent in {labels['batches']} batch(es): {labels['inserted']} inserted, "
        f"{labels['updated']} updated, {labels['unchanged']} unchanged, "
        f"{labels['unknown']} unknown, {labels['rejected']} rejected"
    )
    if labels.get("by_source") is not None:
        sources = ", ".join(f"{k} {v}" for k, v in labels["by_source"].items()) or "none"
        label_text += (
            f"\nby source: {sources}; {labels['pending']} pending (known after the horizon), "
            f"{labels['unlabelled']} legitimate unflagged (never labelled)"
        )
    if labels.get("delay_days"):
        d = labels["delay_days"]
        label_text += f"; delay p50 {d['p50']} d, p90 {d['p90']} d, max {d['max']} d"
    if labels.get("error"):
        label_text += f"\n[red]label delivery stopped: {labels['error']}[/]"
    table.add_row("labels", label_text)
    console.print(table)

    split = Table(title="Observed split (model that answered)")
    split.add_column("model")
    split.add_column("requests", justify="right")
    split.add_column("share", justify="right")
    split.add_column("flagged as fraud", justify="right")
    for model, count in summary["split"].items():
        split.add_row(
            model,
            str(count),
            f"{summary['split_share'][model]:.1%}",
            str(summary["flagged"].get(model, 0)),
        )
    console.print(split)
    for key, message in summary["error_examples"].items():
        console.print(f"[red]error {key}[/]: {message}")
