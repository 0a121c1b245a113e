"""`fraudgate promote`, `fraudgate rollback` and `fraudgate rollout`: act on the experiment.

Thin: the act is the server's (``POST /admin/experiments/{name}/promote|rollback``, through
`fraudgate.client`), the evidence and the ramp `fraudgate.rollout`'s, the rendering
`fraudgate.report.experiment`'s. The ledger (for the evaluation sent with an act, and the
rollout's state) is the config's ``ledger.url``.

Exit codes: 0 done; 1 refused (the evaluation does not support a promotion, the registry and
the servers disagree: the message says what to do) or rolled back; 2 unusable input or an
unreachable server.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from fraudgate.cli.experiment import (
    NameOption,
    TokenOption,
    UrlOption,
    _calling,
    _client,
    _Fail,
    _run,
    console,
    server_target,
)

ConfigArg = Annotated[
    Path, typer.Option("--config", "-c", help="fraudgate YAML config (experiment, ledger).")
]
ReasonOption = Annotated[
    str, typer.Option(help="Why (recorded in the ledger with the act, at most 500 characters).")
]
ActorOption = Annotated[str | None, typer.Option(help="Who acts (default: $USER).")]


def _load(config: Path):  # -> FraudgateConfig
    from fraudgate.config import ConfigError, load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        raise _Fail(f"--config: {exc}", 2) from None


def _act(
    action: str,
    config: Path,
    reason: str,
    actor: str | None,
    force: bool,
    url: str | None,
    token: str | None,
    name: str | None,
) -> None:
    from fraudgate.ledger import open_ledger
    from fraudgate.report.experiment import render_action
    from fraudgate.rollout.acting import ActionRefused, act_on_server

    loaded = _load(config)
    target = server_target(url, token, config, name)
    who = actor or os.environ.get("USER") or "fraudgate-cli"
    store = open_ledger(loaded.ledger_config.url) if loaded.ledger_enabled else None
    try:
        with _client(target) as client, _calling(action, target.url):
            try:
                acted = act_on_server(
                    client,
                    loaded,
                    store,
                    action,
                    experiment=target.experiment,
                    reason=reason,
                    actor=who,
                    force=force,
                )
            except ActionRefused as exc:
                raise _Fail(str(exc), 1) from None
    finally:
        if store is not None:
            store.close()
    render_action(acted.result, console)


def promote(
    config: ConfigArg,
    reason: ReasonOption,
    actor: ActorOption = None,
    force: Annotated[
        bool, typer.Option(help="Promote even if the evaluation does not say PROMOTE.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    name: NameOption = None,
) -> None:
    """Promote the challenger (aliases, 100% of the traffic, recorded with the evaluation).

    @champion moves to it and @previous keeps the old champion; every replica sharing the
    ledger routes all traffic to it. Refused unless the evaluation says PROMOTE (--force).
    """
    _run(lambda: _act("promote", config, reason, actor, force, url, token, name))


def rollback(
    config: ConfigArg,
    reason: ReasonOption,
    actor: ActorOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    name: NameOption = None,
) -> None:
    """Roll back: all traffic to the champion, recorded with the evaluation.

    After a promotion the aliases move back too (@champion to @previous's version).
    """
    _run(lambda: _act("rollback", config, reason, actor, False, url, token, name))


def rollout(
    config: ConfigArg,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print each step it would take and why; act on nothing."),
    ] = False,
    actor: ActorOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    name: NameOption = None,
) -> None:
    """Ramp the challenger through rollout.steps, guarded; promote or roll back by itself.

    The guardrails are checked at every look; the first breach rolls back. A rollout killed
    and started again resumes its recorded step.
    """

    def run() -> None:
        from fraudgate.ledger import open_ledger
        from fraudgate.report.experiment import render_rollout_event
        from fraudgate.rollout.controller import RolloutController, RolloutError

        loaded = _load(config)
        if not loaded.ledger_enabled or loaded.experiment_spec is None:
            raise _Fail(f"{config}: a rollout needs `experiment:` and `ledger:` sections", 2)
        target = server_target(url, token, config, name)
        store = open_ledger(loaded.ledger_config.url)
        # SIGTERM ends the loop like Ctrl-C; the state is in the ledger, a rerun resumes
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            with _client(target) as client, _calling("rollout", target.url):
                try:
                    controller = RolloutController(
                        loaded,
                        store,
                        client,
                        token=target.token,
                        actor=actor or "fraudgate-rollout",
                        on_event=lambda event: render_rollout_event(event, console),
                    )
                    if dry_run:
                        for event in controller.describe():
                            render_rollout_event(event, console)
                        return
                    result = controller.run()
                except RolloutError as exc:
                    raise _Fail(str(exc), 1) from None
        finally:
            store.close()
        if result.status != "promoted":
            raise _Fail(f"rollout {result.rollout_id} {result.status}: {result.reason}", 1)

    _run(run)
