"""The online half of `fraudgate demo`: serve the experiment, replay traffic, read the ledger."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fraudgate.config import load_config
from fraudgate.server_process import running_server


def online_outcomes(config_path: Path) -> list[dict]:
    """Per model and role (served / mirror): decisions joined with the labels that came back."""
    from fraudgate.ledger import open_ledger

    config = load_config(config_path)
    if config.ledger_config is None:
        return []
    experiment = config.experiment_spec.name if config.experiment_spec else None
    store = open_ledger(config.ledger_config.url)
    try:
        outcomes = store.labelled_outcomes(experiment=experiment)
    finally:
        store.close()
    rows = []
    for outcome in sorted(outcomes, key=lambda o: (o.role, o.model_name)):
        c = outcome.counts
        rows.append(
            {
                "model": outcome.model_name,
                "version": outcome.model_version,
                "role": outcome.role,
                "decisions": c.total,
                "labelled": c.labelled,
                **c.as_dict(),
                "precision": c.precision_interval().as_dict(),
                "recall": c.recall_interval().as_dict(),
            }
        )
    return rows


def render_online(rows: list[dict], console: Console) -> None:
    table = Table(
        title="Online: ledger decisions joined with the labels that arrived "
        "(served = answered the caller, mirror = scored in shadow)",
        title_justify="left",
    )
    table.add_column("model (role)", no_wrap=True)
    for column in ("decisions", "labelled", "TP", "FP", "FN"):
        table.add_column(column, justify="right")
    table.add_column("precision (95% CI)", justify="right", no_wrap=True)
    table.add_column("recall (95% CI)", justify="right", no_wrap=True)

    def fmt(interval: dict) -> str:
        if interval["estimate"] != interval["estimate"]:  # nan: nothing to estimate yet
            return "-"
        return f"{interval['estimate']:.2f} ({interval['low']:.2f}-{interval['high']:.2f})"

    for row in rows:
        table.add_row(
            f"{row['model']} ({row['role']})",
            f"{row['decisions']:,}",
            f"{row['labelled']:,}",
            str(row["tp"]),
            str(row["fp"]),
            str(row["fn"]),
            fmt(row["precision"]),
            fmt(row["recall"]),
        )
    console.print(table)


def serve_and_replay(
    config_path: Path,
    workdir: Path,
    *,
    transactions: int,
    rate: float,
    seed: int,
    console: Console,
) -> dict:
    """Serve the demo's experiment, replay `transactions` through it, deliver their labels."""
    from fraudgate.replay import ReplaySettings, render_summary, run_replay, target_from_config

    target = target_from_config(config_path)
    log = workdir / "server.log"
    with running_server(config_path, log, ready_timeout=300) as server:
        console.print(
            f"serving the experiment at [bold]{server.url}[/] (gRPC {server.grpc_address})"
        )
        settings = ReplaySettings(
            url=server.url,
            transactions=transactions,
            rate=rate,
            seed=seed,
            workdir=workdir,
            token=target.token,
            model=target.model,
            routing_parameter=target.routing_parameter,
        )
        summary = run_replay(settings, console=console)
    render_summary(summary, console)
    rows = online_outcomes(config_path)
    render_online(rows, console)
    online = {"replay": summary, "outcomes": rows}
    (workdir / "online.json").write_text(json.dumps(online, indent=2, default=str))
    return online
