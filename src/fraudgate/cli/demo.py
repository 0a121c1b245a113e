"""`fraudgate demo`: the whole loop on embedded defaults (the work is in `fraudgate.demo`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from fraudgate.cli._common import RegistryOption, SeedOption, WorkdirOption, console, fail
from fraudgate.cli.train import simulation_config, train_and_compare


def demo(
    workdir: WorkdirOption = Path(".fraudgate/demo"),
    registry: RegistryOption = None,
    days: Annotated[int, typer.Option(min=8, help="Days to simulate.")] = 120,
    tx_per_day: Annotated[int, typer.Option(min=100, help="Mean transactions per day.")] = 10_000,
    replay: Annotated[
        int,
        typer.Option(
            min=0,
            help="At most this many transactions of the replayed days go through the served "
            "experiment (0: serve nothing).",
        ),
    ] = 40_000,
    replay_days: Annotated[
        float,
        typer.Option(
            min=0.1, help="Simulated days of traffic replayed, from after the pattern emerged."
        ),
    ] = 7.0,
    label_days: Annotated[
        float,
        typer.Option(
            min=0, help="Simulated days of label arrival (and daily evaluation) after the traffic."
        ),
    ] = 14.0,
    rate: Annotated[
        float, typer.Option(min=0, help="Replay rate, requests per second (0: no limit).")
    ] = 0.0,
    aa: Annotated[
        bool,
        typer.Option(
            "--aa", help="A/A test: serve the champion in both arms (must not end in PROMOTE)."
        ),
    ] = False,
    seed: SeedOption = 7,
) -> None:
    """The whole loop on embedded defaults.

    simulate -> train v1 and v2 -> register in MLflow -> offline comparison on a holdout ->
    serve both as an 80/20 experiment with 100% shadow mirror -> replay days of transactions
    from after the new fraud pattern emerged, labels arriving as they would (investigations of
    alerts within days, chargebacks of missed frauds weeks later) -> evaluate once per simulated
    day (PROMOTE / CONTINUE / ROLLBACK / STOP with the reason) -> the decision, report.json and
    report.html. ``--aa`` serves the same model in both arms.
    """
    from fraudgate.config import write_default_config
    from fraudgate.demo import DemoReplay, serve_and_replay
    from fraudgate.registry import resolve_tracking_uri
    from fraudgate.report.offline import render_offline
    from fraudgate.report.progress import StepProgress
    from fraudgate.training.run import run_simulation, simulated_training_data

    config = simulation_config(seed, days, tx_per_day, None)
    with StepProgress(5, console) as steps:
        sim = run_simulation(config, workdir / "data", steps)
        training_data = simulated_training_data(sim, steps)
        offline = train_and_compare(training_data, workdir, registry, seed, steps)
    render_offline(offline, console)
    config_path = write_default_config(
        workdir / "fraudgate.yaml", resolve_tracking_uri(registry, workdir), aa=aa
    )
    for stale in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):  # a fresh experiment each run
        (workdir / stale).unlink(missing_ok=True)
    shutil.rmtree(workdir / "ledger-journal", ignore_errors=True)
    console.print(
        f"wrote [bold]{workdir / 'offline.json'}[/], {workdir / 'offline.html'} and "
        f"[bold]{config_path}[/]"
    )
    if replay:
        try:
            plan = DemoReplay(
                transactions=replay, days=replay_days, label_days=label_days, rate=rate
            )
            serve_and_replay(config_path, workdir, plan=plan, seed=seed, console=console)
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        console.print(f"wrote [bold]{workdir / 'online.json'}[/] and {workdir / 'replay.json'}")
    console.print(f"serve both models yourself: [bold]fraudgate serve --config {config_path}[/]")
