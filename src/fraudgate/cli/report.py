"""`fraudgate report`: evaluate the configured experiment from its ledger and say what to do.

Thin: the evaluation is `fraudgate.evaluation.evaluate`'s, the rendering `fraudgate.report`'s;
both (and SQLAlchemy, scipy, matplotlib) are imported inside the command, so ``--help`` is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudgate.cli._common import console, fail

if TYPE_CHECKING:
    from fraudgate.config import FraudgateConfig


def parse_as_of(text: str | None) -> float | None:
    """``--as-of``: ISO-8601 (no offset = UTC) or epoch seconds; None = now."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--as-of: expected ISO-8601 (2024-05-01T00:00:00Z) or epoch seconds, received {text!r}"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class EvaluationInputs:
    """What a command reading the experiment's counts needs: the config, its ledger URL, its
    experiment's name and T (None: now)."""

    config: FraudgateConfig
    url: str
    experiment: str
    as_of: float | None


def load_for_evaluation(config: Path, ledger: str | None, as_of: str | None) -> EvaluationInputs:
    """The inputs of a command reading the experiment's counts; exit 2 naming what is missing
    or wrong."""
    from fraudgate.config import ConfigError, load_config

    try:
        when = parse_as_of(as_of)
        loaded = load_config(config)
    except (ConfigError, ValueError) as exc:
        raise fail(str(exc)) from None
    url = ledger or (loaded.ledger_config.url if loaded.ledger_config else None)
    if url is None:
        raise fail(f"{config}: no `ledger:` section and no --ledger URL")
    if loaded.experiment_spec is None:
        raise fail(f"{config}: no `experiment:` section to evaluate")
    return EvaluationInputs(loaded, url, loaded.experiment_spec.name, when)


def report(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="fraudgate YAML config (experiment, ledger).")
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Evaluate as of this time (ISO-8601 or epoch seconds; default now)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write report.json (schema in the repo) here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the self-contained report.html here.")
    ] = None,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger URL (overrides the config's ledger.url).")
    ] = None,
    recount: Annotated[
        bool,
        typer.Option(
            "--recount",
            help="Drop the closed days' counts the ledger keeps for this experiment and count "
            "every day again (they are stored anew).",
        ),
    ] = False,
) -> None:
    """Evaluate the experiment from the ledger: metrics with intervals, tests, the decision.

    PROMOTE / CONTINUE / ROLLBACK / STOP with its reasons; exit code 0 whatever the outcome.
    Also per model the label-free estimated precision / recall beside the realised ones, and
    the score drift against the registry version's training reference.
    """
    from fraudgate.config import ConfigError

    inputs = load_for_evaluation(config, ledger, as_of)
    loaded = inputs.config

    from fraudgate.evaluation import evaluate, registry_references
    from fraudgate.ledger import open_ledger
    from fraudgate.report.evaluation import render_evaluation, write_evaluation_json

    store = open_ledger(inputs.url)
    try:
        if recount:
            dropped = store.clear_count_cache(inputs.experiment)
            console.print(f"count cache: {dropped} stored rows dropped, every day recounted")
        result = evaluate(loaded, store, as_of=inputs.as_of, references=registry_references(loaded))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    render_evaluation(result, console)
    if json_out is not None:
        console.print(f"report.json: {write_evaluation_json(result, json_out)}")
    if html_out is not None:
        from fraudgate.report.evaluation_html import write_evaluation_html

        console.print(f"report.html: {write_evaluation_html(result, html_out)}")
