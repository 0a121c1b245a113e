"""`fraudgate experiment set|show` and `fraudgate feedback FILE` (the lead registers them).

```python
from fraudgate.cli.experiment import experiment_app, feedback
app.add_typer(experiment_app, name="experiment")
app.command()(feedback)
```

Both talk to a running server's admin/feedback API with a bearer token (``--token``, else
``$FRAUDGATE_ADMIN_TOKEN``, else the ``auth`` section of ``--config``); ``feedback`` can also write
straight into a ledger (``--ledger URL``) without a server.

Exit codes: 0 success; 1 some label rows rejected (the good ones are stored) or the server
refused/failed; 2 unusable input (unreadable labels file, bad --weights, server unreachable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fraudgate.config import ADMIN_TOKEN_ENV, DEMO_EXPERIMENT, ConfigError, load_config

console = Console()
err_console = Console(stderr=True)

DEFAULT_URL = "http://127.0.0.1:8080"
FEEDBACK_CHUNK = 5000

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


def _settings(
    url: str | None, token: str | None, config: Path | None, name: str | None = None
) -> tuple[str, str | None, str]:
    loaded = None
    if config is not None:
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            raise _Fail(f"--config: {exc}", 2) from None
    if url is None:
        if loaded is not None:
            host = loaded.server.host
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            url = f"http://{host}:{loaded.server.http_port}"
        else:
            url = DEFAULT_URL
    if token is None:
        token = os.environ.get(ADMIN_TOKEN_ENV) or None
        if token is None and loaded is not None:
            token = loaded.auth.token
    if name is None:
        spec = loaded.experiment_spec if loaded is not None else None
        name = spec.name if spec is not None else DEMO_EXPERIMENT
    return url.rstrip("/"), token, name


def _call(method: str, url: str, token: str | None, json: Any = None) -> Any:
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, json=json, headers=headers, timeout=60.0)
    except httpx.HTTPError as exc:
        raise _Fail(f"cannot reach {url}: {exc}", 2) from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text}
    if response.status_code != 200:
        message = body.get("error", response.text) if isinstance(body, dict) else response.text
        raise _Fail(f"{method} {url} -> {response.status_code}: {message}", 1)
    return body


def _run(fn: Any) -> None:
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


def _show_experiment(view: dict[str, Any]) -> None:
    spec = view["experiment"]
    table = Table(title=f"experiment {spec['name']} (generation {view['generation']})")
    table.add_column("candidate")
    table.add_column("weight", justify="right")
    table.add_column("share", justify="right")
    total = sum(c["weight"] for c in spec["candidates"]) or 1
    for c in spec["candidates"]:
        table.add_row(c["name"], str(c["weight"]), f"{100 * c['weight'] / total:.1f}%")
    mirror = spec.get("mirror")
    if mirror:
        target = mirror.get("name") or "the other arm"
        table.caption = f"mirror {mirror['percent']}% to {target}; default {spec.get('default')}"
    console.print(table)
    if view["history"]:
        history = Table(title="weight changes")
        for column in ("at", "actor", "old", "new"):
            history.add_column(column)
        for change in view["history"]:
            history.add_row(change["at"], change["actor"], _fmt(change["old"]), _fmt(change["new"]))
        console.print(history)


def _fmt(weights: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in weights.items()) or "-"


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
        base, bearer, experiment = _settings(url, token, config, name)
        _show_experiment(_call("GET", f"{base}/admin/experiments/{experiment}", bearer))

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
        base, bearer, experiment = _settings(url, token, config, name)
        path = f"{base}/admin/experiments/{experiment}"
        candidates = None
        if "=" not in weights:
            view = _call("GET", path, bearer)
            candidates = [c["name"] for c in view["experiment"]["candidates"]]
        new = parse_weights(weights, candidates)
        who = actor or os.environ.get("USER") or "fraudgate-cli"
        change = _call("PUT", f"{path}/weights", bearer, {"weights": new, "actor": who})
        console.print(
            f"experiment {experiment}: {_fmt(change['old'])} -> [bold]{_fmt(change['new'])}[/] "
            f"by {change['actor']} at {change['at']} (generation {change['generation']})",
            highlight=False,
        )

    _run(run)


def feedback(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (with header) or Parquet: transaction_id, is_fraud, "
            "label_time, amount (optional).",
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
        from fraudgate.ledger import LabelFileError, parse_labels_file
        from fraudgate.protocol.errors import InvalidInput
        from fraudgate.protocol.limits import check_actor

        try:  # the server and the store check it too: say so before reading the file
            check_actor(actor, "--actor")
        except InvalidInput as exc:
            raise _Fail(str(exc), 2) from None
        try:
            labels, errors = parse_labels_file(file)
        except LabelFileError as exc:
            raise _Fail(str(exc), 2) from None
        totals = {"inserted": 0, "updated": 0, "unchanged": 0}
        unknown: list[str] = []  # the ids listed (a server lists the first 100 per batch)
        unknown_count = 0
        if ledger is not None:
            from fraudgate.ledger import open_ledger

            try:
                store = open_ledger(ledger)
            except Exception as exc:
                raise _Fail(f"--ledger: cannot open {ledger!r}: {exc}", 2) from None
            try:
                if labels:
                    result = store.upsert_labels(labels, actor)
                    totals = {
                        "inserted": result.inserted,
                        "updated": result.updated,
                        "unchanged": result.unchanged,
                    }
                    unknown = list(result.unknown_transaction_ids)
                    unknown_count = len(unknown)
            finally:
                store.close()
        elif labels:
            base, bearer, _ = _settings(url, token, config)
            for start in range(0, len(labels), FEEDBACK_CHUNK):
                chunk = labels[start : start + FEEDBACK_CHUNK]
                rows = [
                    {
                        "transaction_id": label.transaction_id,
                        "is_fraud": label.is_fraud,
                        "label_time": label.label_time,
                        "amount": label.amount,
                    }
                    for label in chunk
                ]
                body = _call("POST", f"{base}/feedback", bearer, {"labels": rows, "actor": actor})
                for key in totals:
                    totals[key] += body[key]
                listed = body["unknown_transaction_ids"]
                unknown.extend(listed)
                unknown_count += body.get("unknown_count", len(listed))  # lists are truncated
                if body["rejected"]:  # validated locally already: should not happen
                    raise _Fail(f"the server rejected rows: {body['rejected'][:5]}", 1)
        _report(file, len(labels), totals, unknown, errors, max(unknown_count, len(unknown)))
        if errors:
            raise typer.Exit(1)

    _run(run)


def _report(
    file: Path,
    good: int,
    totals: dict[str, int],
    unknown: list[str],
    errors: list[Any],
    unknown_count: int,
) -> None:
    table = Table(title=f"labels from {file}")
    table.add_column("stored", justify="right")
    table.add_column("inserted", justify="right")
    table.add_column("updated", justify="right")
    table.add_column("unchanged", justify="right")
    table.add_column("unknown ids", justify="right")
    table.add_column("rejected rows", justify="right")
    rows_rejected = len({e.row for e in errors})
    table.add_row(
        str(good),
        str(totals["inserted"]),
        str(totals["updated"]),
        str(totals["unchanged"]),
        str(unknown_count),
        str(rows_rejected),
    )
    console.print(table)
    if unknown_count:
        shown = ", ".join(unknown[:10]) + (" ..." if unknown_count > 10 else "")
        console.print(f"no decision recorded for {unknown_count} transaction ids: {shown}")
    for error in errors[:50]:
        err_console.print(f"rejected {error}", highlight=False)
    if len(errors) > 50:
        err_console.print(f"... and {len(errors) - 50} more rejected fields", highlight=False)
