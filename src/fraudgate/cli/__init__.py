"""The `fraudgate` command line: thin typer commands that parse arguments, call the room that
does the work (`fraudgate.client` for a running server) and hand the result to `fraudgate.report`.

Importing this package loads typer, rich and the config records only: each command imports what
it needs (pandas, MLflow, the ledger, the server) inside its body, so ``fraudgate --help`` and
every subcommand's ``--help`` answer at once (tests/cli/test_help_imports.py checks it).
"""

from __future__ import annotations

import typer

from fraudgate.cli._common import console
from fraudgate.cli.act import promote, rollback, rollout
from fraudgate.cli.demo import demo
from fraudgate.cli.experiment import experiment_app, feedback
from fraudgate.cli.export import export_app
from fraudgate.cli.ledger import ledger_app
from fraudgate.cli.replay import replay
from fraudgate.cli.report import report
from fraudgate.cli.serve import serve
from fraudgate.cli.train import simulate, train

__all__ = ["app", "console", "main"]

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
app.add_typer(export_app, name="export")
app.command("simulate")(simulate)
app.command("train")(train)
app.command("demo")(demo)
app.command("report")(report)
app.add_typer(export_app, name="export")
app.command("promote")(promote)
app.command("rollback")(rollback)
app.command("rollout")(rollout)


def main() -> None:  # pragma: no cover - console script entry
    app()
