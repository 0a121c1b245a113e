"""`fraudgate simulate` and `fraudgate train`: the offline half (data, models, the registry).

Commands import the training stack (pandas, scikit-learn, MLflow) inside their bodies, so
``--help`` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fraudgate.cli._common import RegistryOption, SeedOption, WorkdirOption, console, fail

if TYPE_CHECKING:
    from fraudgate.data.simulator import SimulationConfig
    from fraudgate.report.progress import StepProgress


def simulation_config(
    seed: int, days: int, tx_per_day: int, emerging_day: int | None
) -> SimulationConfig:
    from fraudgate.data.simulator import SimulationConfig

    try:
        return SimulationConfig(
            seed=seed,
            days=days,
            transactions_per_day=tx_per_day,
            emerging_day=emerging_day if emerging_day is not None else round(days * 63 / 120),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


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

    config = simulation_config(seed, days, tx_per_day, emerging_day)
    with StepProgress(2, console) as steps:
        sim = run_simulation(config, out, steps)
    console.print_json(json.dumps(sim.summary))
    console.print(
        f"wrote [bold]{out}[/] (transactions.parquet, customers.parquet, terminals.parquet)"
    )


def train_and_compare(
    data: Any, workdir: Path, registry: str | None, seed: int, steps: StepProgress
) -> dict[str, Any]:
    """Train both models on ``data``, register them; return the offline comparison."""
    from fraudgate.registry import Registry, resolve_tracking_uri
    from fraudgate.training.run import train_and_register

    workdir.mkdir(parents=True, exist_ok=True)
    reg = Registry(resolve_tracking_uri(registry, workdir))
    train_and_register(data, reg, workdir, steps, seed=seed)
    offline: dict[str, Any] = json.loads((workdir / "offline.json").read_text())
    return offline


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
        raise fail("give either --data or --creditcard, not both")
    with StepProgress(3 if creditcard else 4, console) as steps:
        if creditcard is not None:
            try:
                training_data = creditcard_training_data(creditcard)
            except CreditcardFormatError as exc:
                raise fail(str(exc)) from None
        else:
            if data is None:
                from fraudgate.data.simulator import SimulationConfig
                from fraudgate.data.simulator import simulate as run_simulate

                with steps.step("simulating transactions"):
                    sim = run_simulate(SimulationConfig(seed=seed))
            else:
                if not (data / "simulation.json").is_file():
                    raise fail(f"{data} holds no simulation; run `fraudgate simulate --out {data}`")
                with steps.step(f"reading {data}"):
                    sim = SimulatedData.read(data)
            training_data = simulated_training_data(sim, steps)
        offline = train_and_compare(training_data, workdir, registry, seed, steps)
    render_offline(offline, console)
    console.print(f"wrote [bold]{workdir / 'offline.json'}[/] and {workdir / 'offline.html'}")
