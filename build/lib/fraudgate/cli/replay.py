"""`fraudgate replay`: the typer command; the work is `fraudgate.replay`'s, the config is read
through `fraudgate.config` (`target_from_config`), the tables are `fraudgate.report.replay`'s."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

import typer

_DURATION = re.compile(r"^\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<unit>[smhdw]?)\s*$")
_UNIT_DAYS = {"": 1.0, "d": 1.0, "w": 7.0, "h": 1 / 24, "m": 1 / 1440, "s": 1 / 86_400}


def parse_days(text: str, option: str = "--chargeback-delay") -> float:
    """'3d', '12h', '1w', '90m', '2' (days) -> days as a float; raises ValueError naming option."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{option}: expected a duration such as 3d, 12h, 1w or a number of days, "
            f"received {text!r}"
        )
    return float(match["value"]) * _UNIT_DAYS[match["unit"]]


def replay(
    url: Annotated[
        str | None,
        typer.Option(
            help="The running fraudgate server's HTTP URL, e.g. http://127.0.0.1:8080 "
            "(default: server.host/http_port of --config). Nothing else is contacted."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The server's YAML config: which model to address (the experiment's default), "
            "the routing parameter, the feedback token.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    transactions: Annotated[
        int, typer.Option("--transactions", "-n", min=1, help="How many transactions to send.")
    ] = 1000,
    rate: Annotated[
        float, typer.Option(help="At most this many requests per second (0: no limit).", min=0)
    ] = 200.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 16,
    investigation_delay: Annotated[
        str,
        typer.Option(
            help="Median delay of an alert's investigation outcome in simulated time (12h, 1d; "
            "log-normal, at least 1 hour, at most 3 days).",
        ),
    ] = "12h",
    chargeback_delay: Annotated[
        str,
        typer.Option(
            help="Median delay of a missed fraud's chargeback in simulated time (14d, 2w; "
            "log-normal with a tail past 90 days, capped at 120 days).",
        ),
    ] = "14d",
    label_horizon: Annotated[
        str | None,
        typer.Option(
            help="Deliver the labels known up to this long after the last transaction "
            "(simulated; e.g. 7d); later ones stay pending. Default: all of them.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token for /feedback (default: the config's auth token, else "
            "$FRAUDGATE_ADMIN_TOKEN).",
        ),
    ] = None,
    protocol: Annotated[str, typer.Option(help="Inference protocol: rest or grpc.")] = "rest",
    grpc_address: Annotated[
        str | None, typer.Option(help="gRPC host:port (default: the URL's port + 1).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling, delays, simulation.")] = 7,
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir",
            "-w",
            help="Reads <workdir>/data (the demo's simulation) if present; writes replay.json.",
        ),
    ] = Path(".fraudgate/demo"),
    days: Annotated[
        int, typer.Option(min=8, help="Days to simulate when <workdir>/data has no simulation.")
    ] = 120,
    tx_per_day: Annotated[
        int, typer.Option(min=100, help="Transactions a day when simulating.")
    ] = 10_000,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> dict[str, Any]:
    from rich.console import Console

    from fraudgate.replay import LabelDelays, ReplaySettings, run_replay, target_from_config
    from fraudgate.report.replay import render_summary

    console = Console()
    try:
        delays = LabelDelays(
            investigation_median_days=parse_days(investigation_delay, "--investigation-delay"),
            chargeback_median_days=parse_days(chargeback_delay, "--chargeback-delay"),
        )
        horizon = None if label_horizon is None else parse_days(label_horizon, "--label-horizon")
        if protocol not in ("rest", "grpc"):
            raise ValueError(f"--protocol: expected rest or grpc, received {protocol!r}")
        target = target_from_config(config)
        url = url or target.url
        if not url:
            raise ValueError("--url: required (or give --config to take the server's address)")
    except (ValueError, OSError) as exc:
        typer.secho(f"fraudgate replay: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    settings = ReplaySettings(
        url=url,
        transactions=transactions,
        rate=rate if rate > 0 else math.inf,
        concurrency=concurrency,
        delays=delays,
        label_horizon_days=horizon,
        token=token or target.token,
        seed=seed,
        workdir=workdir,
        model=target.model,
        routing_parameter=target.routing_parameter,
        protocol=protocol,
        grpc_address=grpc_address,
        days=days,
        transactions_per_day=tx_per_day,
    )
    summary = run_replay(settings, console=console, show_progress=not quiet)
    render_summary(summary, console)
    console.print(f"wrote [bold]{Path(workdir) / 'replay.json'}[/]")
    if summary["ok"] == 0:
        raise typer.Exit(code=1)
    return summary


replay.__doc__ = (
    "Replay simulated transactions from after the emerging pattern through a running server, "
    "then deliver their labels.\n\n"
    "Streams N transactions in time order (concurrent, rate-limited, routing key = card id, "
    "transaction id, amount and event time as request parameters) to the experiment's default "
    "model. Labels arrive in simulated time as they would: the served model's alerts get an "
    "investigation outcome within hours to days, missed frauds a chargeback weeks later, "
    "legitimate unflagged transactions nothing; each is POSTed to /feedback once the replay's "
    "simulated clock reaches the time it became known. Prints sent / ok / errors, the observed "
    "split per model, labels by source / pending, throughput and latency; writes replay.json in "
    "the work directory."
)

app = typer.Typer(add_completion=False, help="fraudgate traffic replay.")
app.command()(replay)
