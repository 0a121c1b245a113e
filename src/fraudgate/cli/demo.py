"""`fraudgate demo`: the whole loop on embedded defaults (the work is in `fraudgate.demo`)."""

from __future__ import annotations

import math
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
    bad_challenger: Annotated[
        bool,
        typer.Option(
            "--bad-challenger",
            help="Serve a challenger that flags every transaction and ramp it with `fraudgate "
            "rollout`: the alert-rate guardrail rolls it back by itself.",
        ),
    ] = False,
    reuse_models: Annotated[
        bool,
        typer.Option(
            "--reuse-models",
            help="Skip simulation and training when the work directory already holds them "
            "(data/, offline.json, the registry): serve and evaluate the registered models again.",
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
    report.html -> on PROMOTE, promote (aliases and traffic move). ``--aa`` serves the same
    model in both arms; ``--bad-challenger`` shows the automatic rollback instead.
    """
    from fraudgate.config import write_default_config
    from fraudgate.demo import (
        DemoReplay,
        bad_challenger_rollout,
        drain_ledger,
        promote_on_decision,
        reset_aliases,
        serve_and_replay,
        write_bad_challenger,
    )
    from fraudgate.registry import resolve_tracking_uri
    from fraudgate.report.offline import render_offline
    from fraudgate.report.progress import StepProgress
    from fraudgate.training.run import run_simulation, simulated_training_data

    trained = (workdir / "offline.json").is_file() and (workdir / "data").is_dir()
    if reuse_models and trained:
        console.print(f"reusing the simulation and the models registered in [bold]{workdir}[/]")
    else:
        config = simulation_config(seed, days, tx_per_day, None)
        with StepProgress(5, console) as steps:
            sim = run_simulation(config, workdir / "data", steps)
            training_data = simulated_training_data(sim, steps)
            offline = train_and_compare(training_data, workdir, registry, seed, steps)
        render_offline(offline, console)
    tracking_uri = resolve_tracking_uri(registry, workdir)
    config_path = write_default_config(workdir / "fraudgate.yaml", tracking_uri, aa=aa)
    reset_aliases(tracking_uri, console)
    if bad_challenger:
        write_bad_challenger(config_path)
    for stale in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):  # a fresh experiment each run
        (workdir / stale).unlink(missing_ok=True)
    shutil.rmtree(workdir / "ledger-journal", ignore_errors=True)
    if reuse_models and trained:
        console.print(f"wrote [bold]{config_path}[/]")
    else:
        console.print(
            f"wrote [bold]{workdir / 'offline.json'}[/], {workdir / 'offline.html'} and "
            f"[bold]{config_path}[/]"
        )
    plan = DemoReplay(transactions=replay, days=replay_days, label_days=label_days, rate=rate)
    if replay and bad_challenger:
        try:
            bad_challenger_rollout(config_path, workdir, plan=plan, seed=seed, console=console)
            drain_ledger(config_path, console)
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        show_history(config_path)
    elif replay:
        try:
            online = serve_and_replay(config_path, workdir, plan=plan, seed=seed, console=console)
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        console.print(f"wrote [bold]{workdir / 'online.json'}[/] and {workdir / 'replay.json'}")
        days = math.ceil(replay_days + label_days)
        evaluation = decide_and_report(
            config_path, workdir, online["replay"]["window"]["from"], days
        )
        if not aa:
            try:
                promote_on_decision(config_path, workdir, evaluation, console)
            except RuntimeError as exc:
                raise fail(str(exc)) from None
        show_history(config_path)
    console.print(f"serve both models yourself: [bold]fraudgate serve --config {config_path}[/]")


def show_history(config_path: Path) -> None:
    """The experiment's record: weight changes, acts and rollout steps with their reasons."""
    from fraudgate.config import load_config
    from fraudgate.ledger import open_ledger
    from fraudgate.report.experiment import render_history
    from fraudgate.rollout.history import experiment_history

    config = load_config(config_path)
    if config.ledger_config is None or config.experiment_spec is None:
        return
    store = open_ledger(config.ledger_config.url)
    try:
        entries = experiment_history(store, config.experiment_spec.name, 50)
    finally:
        store.close()
    render_history(config.experiment_spec.name, entries, console)


def decide_and_report(config_path: Path, workdir: Path, first_day: str, days: int):
    """Evaluate once per simulated day, print each outcome, end with the decision and write
    report.json / report.html."""
    from fraudgate.demo import evaluate_daily, write_reports
    from fraudgate.report.evaluation import render_evaluation

    console.rule("Daily evaluation (simulated days, sequential decision rule)")
    outcomes, evaluation = evaluate_daily(config_path, first_day, days, console)
    final = outcomes[-1]
    render_evaluation(evaluation, console)
    colour = {"PROMOTE": "green", "ROLLBACK": "red"}.get(final.outcome, "yellow")
    console.print(f"decision after {final.day} simulated days: [bold {colour}]{final.outcome}[/]")
    for reason in evaluation.decision.reasons:
        console.print(f"  - {reason}")
    paths = write_reports(evaluation, outcomes, workdir)
    console.print("wrote " + ", ".join(f"[bold]{p}[/]" for p in paths))
    return evaluation
