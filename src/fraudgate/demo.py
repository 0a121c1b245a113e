"""The online half of `fraudgate demo`: serve the experiment, replay traffic, read the ledger."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from fraudgate.config import load_config
from fraudgate.replay import LabelDelays, ReplaySettings, run_replay, target_from_config
from fraudgate.report.online import render_online
from fraudgate.report.replay import render_summary
from fraudgate.server_process import running_server


def online_outcomes(config_path: Path) -> list[dict[str, Any]]:
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


@dataclass(frozen=True, slots=True)
class DemoReplay:
    """How the demo replays: days of traffic after the pattern emerged, and label arrival."""

    transactions: int = 40_000  # at most this many, drawn from the replayed days
    days: float = 7.0  # simulated days of traffic (from the start of the holdout window)
    label_days: float = 14.0  # simulated days of label arrival after the last transaction
    rate: float = 0.0  # requests per second; 0: as fast as the server answers
    concurrency: int = 32
    delays: LabelDelays = field(default_factory=LabelDelays)


def serve_and_replay(
    config_path: Path,
    workdir: Path,
    *,
    plan: DemoReplay,
    seed: int,
    console: Console,
) -> dict[str, Any]:
    """Serve the demo's experiment, replay `plan.days` of traffic through it with labels
    arriving in simulated time, stop the server (the ledger is flushed), read the outcomes."""
    target = target_from_config(config_path)
    log = workdir / "server.log"
    with running_server(config_path, log, ready_timeout=300) as server:
        console.print(
            f"serving the experiment at [bold]{server.url}[/] (gRPC {server.grpc_address})"
        )
        settings = ReplaySettings(
            url=server.url,
            transactions=plan.transactions,
            rate=plan.rate if plan.rate > 0 else math.inf,
            concurrency=plan.concurrency,
            seed=seed,
            workdir=workdir,
            token=target.token,
            model=target.model,
            routing_parameter=target.routing_parameter,
            delays=plan.delays,
            label_horizon_days=plan.label_days,
            window_days=plan.days,
        )
        summary = run_replay(settings, console=console)
    render_summary(summary, console)
    rows = online_outcomes(config_path)
    render_online(rows, console)
    online = {"replay": summary, "outcomes": rows}
    (workdir / "online.json").write_text(json.dumps(online, indent=2, default=str))
    return online
