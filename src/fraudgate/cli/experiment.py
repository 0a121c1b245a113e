"""`fraudgate experiment show|set` and `fraudgate feedback FILE`.

```python
from fraudgate.cli.experiment import experiment_app, feedback
app.add_typer(experiment_app, name="experiment")
app.command()(feedback)
```

Both talk to a running server through `fraudgate.client.FraudgateClient` with a bearer token
(``--token``, else ``$FRAUDGATE_ADMIN_TOKEN``, else the ``auth`` section of ``--config``);
``feedback`` can also write straight into a ledger (``--ledger URL``) without a server.
Rendering is `fraudgate.report.experiment`'s.

Exit codes: 0 success; 1 some label rows rejected (the good ones are stored) or the server
refused/failed; 2 unusable input (unreadable labels file, bad --weights, server unreachable).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fraudgate.config import ADMIN_TOKEN_ENV, DEFAULT_HOST, DEFAULT_HTTP_PORT, DEMO_EXPERIMENT

if TYPE_CHECKING:
    from fraudgate.client import FeedbackResult, FraudgateClient
    from fraudgate.ledger import Label

console = Console()
err_console = Console(stderr=True)

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_HTTP_PORT}"
FEEDBACK_CHUNK = 5000
CLI_TIMEOUT_S = 60.0  # admin calls and feedback batches may wait for the ledger

UrlOption = Annotated[
    str | None,
    typer.Option(help="Server base URL (default: from --config, else http://127.0.0.1:8080)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        help=f"Bearer token (default: ${ADMIN_TOKEN_ENV}, else the auth section of --config).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="fraudgate YAML config: supplies URL, token and experiment name."
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option(
        "--name", help=f"Experiment name (default: from --config, else {DEMO_EXPERIMENT})."
    ),
]


class _Fail(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """Which server, with which token, and which experiment a command addresses."""

    url: str
    token: str | None
    experiment: str


def server_target(
    url: str | None, token: str | None, config: Path | None, name: str | None = None
) -> ServerTarget:
    """The options, else the config (read through `fraudgate.config`), else the defaults."""
    from fraudgate.config import ConfigError, load_config

    loaded = None
    if config is not None:
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            raise _Fail(f"--config: {exc}", 2) from None
    if url is None:
        url = loaded.server.client_url if loaded is not None else DEFAULT_URL
    if token is None:
        token = os.environ.get(ADMIN_TOKEN_ENV) or None
        if token is None and loaded is not None:
            token = loaded.auth.token
    if name is None:
        spec = loaded.experiment_spec if loaded is not None else None
        name = spec.name if spec is not None else DEMO_EXPERIMENT
    return ServerTarget(url.rstrip("/"), token, name)


@contextmanager
def _client(target: ServerTarget) -> Iterator[FraudgateClient]:
    from fraudgate.client import FraudgateClient

    with FraudgateClient(target.url, token=target.token, timeout=CLI_TIMEOUT_S) as client:
        yield client


@contextmanager
def _calling(what: str, url: str) -> Iterator[None]:
    """Client failures as CLI failures: unreachable is exit 2, a refusal or error exit 1."""
    from fraudgate.client import ConnectionFailed, FraudgateError

    try:
        yield
    except ConnectionFailed as exc:
        raise _Fail(f"cannot reach {url}: {exc}", 2) from None
    except FraudgateError as exc:
        raise _Fail(f"{what} at {url}: {exc}", 1) from None


def _run(fn: Callable[[], None]) -> None:
    try:
        fn()
    except _Fail as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.code) from None


def parse_weights(text: str, candidates: list[str] | None) -> dict[str, int]:
    """``"a=80,b=20"`` (any order), or ``"80,20"`` / ``"80/20"`` in the candidates' order."""
    parts = [p.strip() for p in text.replace("/", ",").split(",") if p.strip()]
    if not parts:
        raise _Fail("--weights: expected name=weight pairs or weights in order, received ''", 2)
    weights: dict[str, int] = {}
    if all("=" in p for p in parts):
        for part in parts:
            name, _, value = part.partition("=")
            weights[name.strip()] = _weight(value, f"--weights {name.strip()}")
        return weights
    if any("=" in p for p in parts):
        raise _Fail(f"--weights: expected all name=weight or all plain weights, got {text!r}", 2)
    if candidates is None or len(candidates) != len(parts):
        raise _Fail(
            f"--weights: {len(parts)} weights for candidates {candidates}; "
            "expected one per candidate (or name=weight pairs)",
            2,
        )
    pairs = zip(candidates, parts, strict=True)
    return {name: _weight(value, f"--weights {name}") for name, value in pairs}


def _weight(value: str, where: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise _Fail(f"{where}: expected a non-negative integer, received {value!r}", 2) from None
    if number < 0:
        raise _Fail(f"{where}: expected a non-negative integer, received {number}", 2)
    return number


experiment_app = typer.Typer(
    add_completion=False, help="Inspect and change a running server's experiment."
)


@experiment_app.command("show")
def experiment_show(
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    name: NameOption = None,
) -> None:
    """Show the experiment's split, mirror and the history of weight changes."""

    def run() -> None:
        from fraudgate.report.experiment import render_experiment

        target = server_target(url, token, config, name)
        with _client(target) as client, _calling("experiment show", target.url):
            info = client.get_experiment(target.experiment)
        render_experiment(info, console)

    _run(run)


@experiment_app.command("set")
def experiment_set(
    weights: Annotated[
        str,
        typer.Option(
            help="New weights: fraud-v1-baseline=50,fraud-v2-candidate=50 (or 50,50 in the "
            "candidates' order). Effective for the next request; recorded with time and actor."
        ),
    ],
    actor: Annotated[
        str | None, typer.Option(help="Who makes the change (default: $USER).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    name: NameOption = None,
) -> None:
    """Change the experiment's traffic split live, without a restart."""

    def run() -> None:
        from fraudgate.report.experiment import render_weight_change

        target = server_target(url, token, config, name)
        with _client(target) as client:
            candidates = None
            if "=" not in weights:
                with _calling("experiment set", target.url):
                    candidates = list(client.get_experiment(target.experiment).weights)
            new = parse_weights(weights, candidates)
            who = actor or os.environ.get("USER") or "fraudgate-cli"
            with _calling("experiment set", target.url):
                change = client.set_weights(target.experiment, new, who)
        render_weight_change(target.experiment, change, console)

    _run(run)


def feedback(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (with header) or Parquet: transaction_id, is_fraud, "
            "label_time, amount (optional), source (optional: investigation, chargeback "
            "or manual, the default).",
            show_default=False,
        ),
    ],
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    ledger: Annotated[
        str | None,
        typer.Option(help="Write straight into this ledger URL instead of a server's /feedback."),
    ] = None,
    actor: Annotated[
        str, typer.Option(help="Recorded in the label audit when a label changes.")
    ] = "fraudgate-feedback",
) -> None:
    """Deliver labels (chargebacks, investigations) for scored transactions.

    Bad rows are reported with their row number and reason and skipped; good rows are stored.
    A resent label counts as unchanged; a changed one is an audited update.
    """

    def run() -> None:
        from fraudgate.client import FeedbackResult
        from fraudgate.ledger import LabelFileError, parse_labels_file
        from fraudgate.protocol.errors import InvalidInput
        from fraudgate.protocol.limits import check_actor
        from fraudgate.report.experiment import render_feedback

        try:  # the server and the store check it too: say so before reading the file
            check_actor(actor, "--actor")
        except InvalidInput as exc:
            raise _Fail(str(exc), 2) from None
        try:
            labels, errors = parse_labels_file(file)
        except LabelFileError as exc:
            raise _Fail(str(exc), 2) from None
        result = FeedbackResult()
        if ledger is not None:
            result = _store_labels(ledger, labels, actor)
        elif labels:
            target = server_target(url, token, config)
            with _client(target) as client, _calling("feedback", target.url):
                result = client.send_labels(labels, batch_size=FEEDBACK_CHUNK, actor=actor)
            if result.rejected:  # validated locally already: should not happen
                raise _Fail(f"the server rejected rows: {list(result.rejected[:5])}", 1)
        render_feedback(file, len(labels), result, errors, console, err_console)
        if errors:
            raise typer.Exit(1)

    _run(run)


def _store_labels(url: str, labels: list[Label], actor: str) -> FeedbackResult:
    """Upsert straight into the ledger at ``url`` (no server), counted like the server's answer."""
    from fraudgate.client import FeedbackResult
    from fraudgate.ledger import open_ledger

    try:
        store = open_ledger(url)
    except Exception as exc:
        raise _Fail(f"--ledger: cannot open {url!r}: {exc}", 2) from None
    try:
        if not labels:
            return FeedbackResult()
        stored = store.upsert_labels(labels, actor)
    finally:
        store.close()
    unknown = tuple(stored.unknown_transaction_ids)
    return FeedbackResult(
        inserted=stored.inserted,
        updated=stored.updated,
        unchanged=stored.unchanged,
        unknown_transaction_ids=unknown,
        unknown_count=len(unknown),
    )


@experiment_app.command("history")
def experiment_history(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="fraudgate YAML config (experiment, ledger).")
    ],
    ledger: Annotated[
        str | None, typer.Option(help="Ledger URL (overrides the config's ledger.url).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Latest entries shown.")] = 200,
) -> None:
    """Every weight change, promotion, rollback and rollout step, with its reason.

    Read from the ledger directly (no server needed).
    """

    def run() -> None:
        from fraudgate.config import ConfigError, load_config
        from fraudgate.ledger import open_ledger
        from fraudgate.report.experiment import render_history
        from fraudgate.rollout.history import experiment_history as history

        try:
            loaded = load_config(config)
        except ConfigError as exc:
            raise _Fail(f"--config: {exc}", 2) from None
        url = ledger or (loaded.ledger_config.url if loaded.ledger_config else None)
        if url is None or loaded.experiment_spec is None:
            raise _Fail(f"{config}: needs `experiment:` and `ledger:` sections (or --ledger)", 2)
        store = open_ledger(url)
        try:
            entries = history(store, loaded.experiment_spec.name, limit)
        finally:
            store.close()
        render_history(loaded.experiment_spec.name, entries, console)

    _run(run)
