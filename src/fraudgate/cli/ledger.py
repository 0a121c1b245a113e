"""`fraudgate ledger ship`: move the decision journal into the ledger store;
`fraudgate ledger quarantine [reship]`: list (re-ship) the journal lines the store refused;
`fraudgate ledger rollup`: count the experiment's closed days into the ledger for the report.

The ledger (SQLAlchemy) is imported inside each command; tables are `fraudgate.report.ledger`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

ledger_app = typer.Typer(
    no_args_is_help=True, help="The decision ledger: ship the journal into the store."
)
quarantine_app = typer.Typer(
    help="Journal lines the ledger store refused (their data). Without a command: list them "
    "(file, line, rows, reason, time); `reship`: ship them again once the cause is fixed."
)
ledger_app.add_typer(quarantine_app, name="quarantine")

ConfigOption = Annotated[
    Path | None,
    typer.Option(help="fraudgate YAML config: its ledger.url and ledger.journal_dir."),
]
LedgerOption = Annotated[
    str | None, typer.Option(help="Ledger URL (overrides the config's ledger.url).")
]
JournalOption = Annotated[
    Path | None,
    typer.Option(help="Journal directory (overrides the config's ledger.journal_dir)."),
]


def _locations(
    console: Console, config: Path | None, ledger: str | None, journal: Path | None
) -> tuple[str | None, Path | None]:
    """(ledger URL, journal directory) from the options, else the config (exit 2 if broken)."""
    from fraudgate.config import ConfigError, load_config

    url, directory = ledger, journal
    if config is not None:
        try:
            ledger_config = load_config(config, resolve_secrets=False).ledger_config
        except (ConfigError, OSError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        if ledger_config is None:
            console.print(f"[red]error:[/] {config}: no `ledger:` section")
            raise typer.Exit(2)
        url = url or ledger_config.url
        directory = directory or Path(ledger_config.journal_dir)
    return url, directory


@ledger_app.command("ship")
def ship(
    config: ConfigOption = None,
    ledger: LedgerOption = None,
    journal: JournalOption = None,
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
    from fraudgate.ledger.journal import run_shipper

    console = Console(stderr=True)
    url, directory = _locations(console, config, ledger, journal)
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
            f"{shipper.torn_lines} torn and {shipper.bad_lines} corrupt lines skipped; "
            f"{shipper.quarantined_lines} lines ({shipper.quarantined_rows} decisions) the store "
            "refused moved to quarantine: see `fraudgate ledger quarantine`)"
        )


@ledger_app.command("rollup")
def rollup(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="fraudgate YAML config (experiment, ledger).")
    ],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="As of this time (ISO-8601 or epoch seconds; default now)."),
    ] = None,
    ledger: LedgerOption = None,
) -> None:
    """Count the experiment's closed days into the ledger's count cache, as `fraudgate report`
    reads them, so the next report counts only the open days.

    The server does this every monitoring.rollup_interval_s; run it by hand after a bulk import
    or a `report --recount`. A ledger under 200,000 decisions is left alone (counted live).
    """
    from fraudgate.cli._common import console
    from fraudgate.cli.report import load_for_evaluation

    inputs = load_for_evaluation(config, ledger, as_of)
    from fraudgate.evaluation import registry_references, roll_up
    from fraudgate.ledger import open_ledger

    store = open_ledger(inputs.url)
    references = registry_references(inputs.config)
    try:
        with console.status("counting the closed days into the ledger ..."):
            result = roll_up(inputs.config, store, inputs.as_of, references=references)
    finally:
        store.close()
    if not result.counted:
        from fraudgate.ledger.day_cache import MIN_DECISIONS

        console.print(f"the ledger holds under {MIN_DECISIONS:,} decisions: reports count it live")
    else:
        console.print(f"{result.days} closed days kept, counted in {result.seconds:.1f} s")


@quarantine_app.callback(invoke_without_command=True)
def quarantine_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    journal: JournalOption = None,
) -> None:
    """List the journal lines the ledger store refused (file, line, rows, reason, time).

    A line the store refuses because of its data (too long, a NUL, a constraint) is moved here
    so shipping goes on; fix the cause, then `fraudgate ledger quarantine reship`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from fraudgate.ledger.quarantine import records
    from fraudgate.report.ledger import render_quarantine

    _, directory = _locations(Console(stderr=True), config, None, journal)
    if directory is None:
        Console(stderr=True).print("[red]error:[/] give --config or --journal")
        raise typer.Exit(2)
    render_quarantine(directory, records(directory), Console())


@quarantine_app.command("reship")
def quarantine_reship(
    config: ConfigOption = None,
    ledger: LedgerOption = None,
    journal: JournalOption = None,
) -> None:
    """Ship the quarantined lines again (after fixing the schema or the store), exactly once.

    Lines that go in leave the quarantine; lines still refused stay, with the fresh reason
    (exit code 1 then).
    """
    from fraudgate.ledger.journal import JournalShipper
    from fraudgate.ledger.store import open_ledger
    from fraudgate.report.ledger import render_reship

    console = Console(stderr=True)
    url, directory = _locations(console, config, ledger, journal)
    if url is None or directory is None:
        console.print("[red]error:[/] give --config, or both --ledger and --journal")
        raise typer.Exit(2)
    try:
        store = open_ledger(url)
        try:
            shipper = JournalShipper(store, directory)
            try:
                result = shipper.reship_quarantined()
            finally:
                shipper.close()
        finally:
            store.close()
    except Exception as exc:
        console.print(f"[red]error:[/] re-shipping the quarantine of {directory} failed: {exc}")
        raise typer.Exit(1) from None
    render_reship(result.shipped_lines, result.shipped_rows, result.kept, console)
    if result.kept:
        raise typer.Exit(1)
