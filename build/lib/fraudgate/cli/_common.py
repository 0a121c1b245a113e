"""What the commands share: the console, the exit-2 failure, the common options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` and return the exit (code 2: unusable input) to raise."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)
