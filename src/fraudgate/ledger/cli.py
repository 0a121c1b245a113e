"""`fraudgate ledger ship`: move the decision journal into the ledger store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

ledger_app = typer.Typer(
    no_args_is_help=True, help="The decision ledger: ship the journal into the store."
)


@ledger_app.command("ship")
def ship(
    config: Annotated[
        Path | None,
        typer.Option(help="fraudgate YAML config: its ledger.url and ledger.journal_dir."),
    ] = None,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger URL (overrides the config's ledger.url).")
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(help="Journal directory (overrides the config's ledger.journal_dir)."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Ship what is there now and exit (default: follow).")
    ] = False,
    nice: Annotated[
        int,
        typer.Option(
            min=0, max=19, help="Lower the shipper's CPU priority by this much (background work)."
        ),
    ] = 10,
    parent: Annotated[
        int | None, typer.Option(hidden=True, help="Drain and exit when this process is gone.")
    ] = None,
) -> None:
    """Move decisions from the journal into the ledger store, exactly once, then keep following.

    `fraudgate serve` runs this beside itself (ledger.shipper: child). Run it yourself as a
    sidecar (ledger.shipper: external), or with --once to ship a journal a killed server left.
    SIGTERM drains what is complete and exits.
    """
    from fraudgate.config import ConfigError, load_config
    from fraudgate.ledger.journal import run_shipper

    console = Console(stderr=True)
    url, directory = ledger, journal
    if config is not None:
        try:
            ledger_config = load_config(config).ledger_config
        except (ConfigError, OSError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        if ledger_config is None:
            console.print(f"[red]error:[/] {config}: no `ledger:` section")
            raise typer.Exit(2)
        url = url or ledger_config.url
        directory = directory or Path(ledger_config.journal_dir)
    if url is None or directory is None:
        console.print("[red]error:[/] give --config, or both --ledger and --journal")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s shipper %(levelname)s %(message)s")
    try:
        shipper = run_shipper(url, directory, once=once, parent_pid=parent, nice=nice)
    except Exception as exc:
        console.print(f"[red]error:[/] shipping {directory} into {url} failed: {exc}")
        raise typer.Exit(1) from None
    if once:
        console.print(
            f"shipped {shipper.shipped_rows} decisions from {directory} "
            f"({shipper.mirror.scored} mirror copies scored, {shipper.mirror.failed} not; "
            f"{shipper.torn_lines} torn and {shipper.bad_lines} corrupt lines skipped)"
        )
