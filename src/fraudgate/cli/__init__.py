"""The `fraudgate` command line: parses arguments and calls the rooms that do the work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fraudgate.cli.experiment import experiment_app, feedback
from fraudgate.cli.ledger import ledger_app
from fraudgate.cli.replay import replay
from fraudgate.cli.serve import serve

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Roll out fraud-detection models safely: simulate, train, register, serve, compare.",
)
app.command("serve")(serve)
app.command("replay")(replay)
app.command("feedback")(feedback)
app.add_typer(experiment_app, name="experiment")
app.add_typer(ledger_app, name="ledger")
# tables stay readable in CI logs and pipes, where rich would otherwise assume 80 columns
console = Console(width=None if sys.stdout.isatty() else 120)

WorkdirOption = Annotated[
    Path, typer.Option("--workdir", "-w", help="Where data, the MLflow store and reports go.")
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="MLflow tracking URI (e.g. http://mlflow:5000). Default: $MLFLOW_TRACKING_URI, "
        "else an embedded SQLite store <workdir>/mlflow.db.",
    ),
]
SeedOption = Annotated[int, typer.Option(help="Seed for every random draw (same seed, same data).")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _simulation_config(seed: int, days: int, tx_per_day: int, emerging_day: int | None):
    from fraudgate.data.simulator import SimulationConfig

    try:
        return SimulationConfig(
            seed=seed,
            days=days,
            transactions_per_day=tx_per_day,
            emerging_day=emerging_day if emerging_day is not None else round(days * 63 / 120),
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory for Parquet.")] = Path(
        ".fraudgate/data"
    ),
    days: Annotated[int, typer.Option(min=1, help="Days of transactions.")] = 120,
    tx_per_day: Annotated[int, typer.Option(min=1, help="Mean transactions per day.")] = 10_000,
    emerging_day: Annotated[
        int | None,
        typer.Option(min=0, help="Day the card-testing pattern starts (default: 63 of 120)."),
    ] = None,
    seed: SeedOption = 7,
) -> None:
    """Simulate customers, cards, terminals and labelled transactions (with an emerging pattern)."""
    from fraudgate.report.progress import StepProgress
    from fraudgate.training.run import run_simulation

    config = _simulation_config(seed, days, tx_per_day, emerging_day)
    with StepProgress(2, console) as steps:
        sim = run_simulation(config, out, steps)
    console.print_json(json.dumps(sim.summary))
    console.print(
        f"wrote [bold]{out}[/] (transactions.parquet, customers.parquet, terminals.parquet)"
    )


def _train(data, workdir: Path, registry: str | None, seed: int, steps) -> dict:
    from fraudgate.registry import Registry, resolve_tracking_uri
    from fraudgate.training.run import train_and_register

    workdir.mkdir(parents=True, exist_ok=True)
    reg = Registry(resolve_tracking_uri(registry, workdir))
    train_and_register(data, reg, workdir, steps, seed=seed)
    return json.loads((workdir / "offline.json").read_text())


@app.command()
def train(
    data: Annotated[
        Path | None,
        typer.Option(help="Directory written by `fraudgate simulate` (default: simulate now)."),
    ] = None,
    creditcard: Annotated[
        Path | None,
        typer.Option(help="A creditcard.csv file (Kaggle ULB layout) to train on instead."),
    ] = None,
    workdir: WorkdirOption = Path(".fraudgate/train"),
    registry: RegistryOption = None,
    seed: SeedOption = 7,
) -> None:
    """Train fraud-v1-baseline and fraud-v2-candidate, register both, compare them on a holdout."""
    from fraudgate.data.creditcard import CreditcardFormatError
    from fraudgate.data.simulator import SimulatedData
    from fraudgate.report.offline import render_offline
    from fraudgate.report.progress import StepProgress
    from fraudgate.training.run import creditcard_training_data, simulated_training_data

    if data is not None and creditcard is not None:
        raise _fail("give either --data or --creditcard, not both")
    with StepProgress(3 if creditcard else 4, console) as steps:
        if creditcard is not None:
            try:
                training_data = creditcard_training_data(creditcard)
            except CreditcardFormatError as exc:
                raise _fail(str(exc)) from None
        else:
            if data is None:
                from fraudgate.data.simulator import SimulationConfig, simulate

                with steps.step("simulating transactions"):
                    sim = simulate(SimulationConfig(seed=seed))
            else:
                if not (data / "simulation.json").is_file():
                    raise _fail(
                        f"{data} holds no simulation; run `fraudgate simulate --out {data}`"
                    )
                with steps.step(f"reading {data}"):
                    sim = SimulatedData.read(data)
            training_data = simulated_training_data(sim, steps)
        offline = _train(training_data, workdir, registry, seed, steps)
    render_offline(offline, console)
    console.print(f"wrote [bold]{workdir / 'offline.json'}[/] and {workdir / 'offline.html'}")


@app.command()
def demo(
    workdir: WorkdirOption = Path(".fraudgate/demo"),
    registry: RegistryOption = None,
    days: Annotated[int, typer.Option(min=8, help="Days to simulate.")] = 120,
    tx_per_day: Annotated[int, typer.Option(min=100, help="Mean transactions per day.")] = 10_000,
    replay: Annotated[
        int, typer.Option(min=0, help="Transactions to replay through the served experiment.")
    ] = 5_000,
    rate: Annotated[float, typer.Option(min=1, help="Replay rate, requests per second.")] = 500.0,
    seed: SeedOption = 7,
) -> None:
    """The whole loop on embedded defaults.

    simulate -> train v1 and v2 -> register in MLflow -> offline comparison on a holdout ->
    serve both as an 80/20 experiment with 100% shadow mirror -> replay transactions from after
    the new fraud pattern emerged -> deliver their (late) labels -> join them in the ledger.
    """
    from fraudgate.config import write_default_config
    from fraudgate.demo import serve_and_replay
    from fraudgate.registry import resolve_tracking_uri
    from fraudgate.report.offline import render_offline
    from fraudgate.report.progress import StepProgress
    from fraudgate.training.run import run_simulation, simulated_training_data

    config = _simulation_config(seed, days, tx_per_day, None)
    with StepProgress(5, console) as steps:
        sim = run_simulation(config, workdir / "data", steps)
        training_data = simulated_training_data(sim, steps)
        offline = _train(training_data, workdir, registry, seed, steps)
    render_offline(offline, console)
    config_path = write_default_config(
        workdir / "fraudgate.yaml", resolve_tracking_uri(registry, workdir)
    )
    console.print(
        f"wrote [bold]{workdir / 'offline.json'}[/], {workdir / 'offline.html'} and "
        f"[bold]{config_path}[/]"
    )
    if replay:
        try:
            serve_and_replay(
                config_path, workdir, transactions=replay, rate=rate, seed=seed, console=console
            )
        except RuntimeError as exc:
            raise _fail(str(exc)) from None
        console.print(f"wrote [bold]{workdir / 'online.json'}[/] and {workdir / 'replay.json'}")
    console.print(f"serve both models yourself: [bold]fraudgate serve --config {config_path}[/]")


def main() -> None:  # pragma: no cover - console script entry
    app()
