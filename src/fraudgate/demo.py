"""The online half of `fraudgate demo`: serve the experiment, replay days of traffic with labels
arriving in simulated time, read the ledger, evaluate once per simulated day, write the report;
then act: promote when the evaluation says PROMOTE (the aliases and the traffic move), or, with
``--bad-challenger``, ramp a challenger that flags everything and watch the rollout roll it back."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from fraudgate.config import load_config
from fraudgate.replay import LabelDelays, ReplaySettings, run_replay, target_from_config
from fraudgate.report.online import render_online
from fraudgate.report.replay import render_summary
from fraudgate.server_process import running_server


def online_outcomes(config_path: Path) -> list[dict[str, Any]]:
    """Per model and role (served / mirror): decisions joined with the labels that came back."""
    from fraudgate.ledger import open_ledger

    config = load_config(config_path)
    if config.ledger_config is None:
        return []
    experiment = config.experiment_spec.name if config.experiment_spec else None
    store = open_ledger(config.ledger_config.url)
    try:
        outcomes = store.labelled_outcomes(experiment=experiment)
    finally:
        store.close()
    rows = []
    for outcome in sorted(outcomes, key=lambda o: (o.role, o.model_name)):
        c = outcome.counts
        rows.append(
            {
                "model": outcome.model_name,
                "version": outcome.model_version,
                "role": outcome.role,
                "decisions": c.total,
                "labelled": c.labelled,
                **c.as_dict(),
                "precision": c.precision_interval().as_dict(),
                "recall": c.recall_interval().as_dict(),
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class DemoReplay:
    """How the demo replays: days of traffic after the pattern emerged, and label arrival."""

    transactions: int = 40_000  # at most this many, drawn from the replayed days
    days: float = 7.0  # simulated days of traffic (from the start of the holdout window)
    label_days: float = 14.0  # simulated days of label arrival after the last transaction
    rate: float = 0.0  # requests per second; 0: as fast as the server answers
    concurrency: int = 32
    delays: LabelDelays = field(default_factory=LabelDelays)


def drain_ledger(config_path: Path, console: Console) -> None:
    """Ship what the stopped server's journal still holds (decisions, shadow scores) into the
    ledger, so the evaluation sees every replayed transaction."""
    command = [sys.executable, "-m", "fraudgate", "ledger", "ship", "--config", str(config_path)]
    with console.status("shipping the rest of the decision journal into the ledger"):
        done = subprocess.run(
            [*command, "--once", "--nice", "0"], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"fraudgate ledger ship --once failed:\n{done.stderr[-2000:]}")


def serve_and_replay(
    config_path: Path,
    workdir: Path,
    *,
    plan: DemoReplay,
    seed: int,
    console: Console,
) -> dict[str, Any]:
    """Serve the demo's experiment, replay `plan.days` of traffic through it with labels
    arriving in simulated time, stop the server (the ledger is flushed), read the outcomes."""
    target = target_from_config(config_path)
    log = workdir / "server.log"
    with running_server(config_path, log, ready_timeout=300) as server:
        console.print(
            f"serving the experiment at [bold]{server.url}[/] (gRPC {server.grpc_address})"
        )
        settings = ReplaySettings(
            url=server.url,
            transactions=plan.transactions,
            rate=plan.rate if plan.rate > 0 else math.inf,
            concurrency=plan.concurrency,
            seed=seed,
            workdir=workdir,
            token=target.token,
            model=target.model,
            routing_parameter=target.routing_parameter,
            delays=plan.delays,
            label_horizon_days=plan.label_days,
            window_days=plan.days,
        )
        summary = run_replay(settings, console=console)
    drain_ledger(config_path, console)
    render_summary(summary, console)
    rows = online_outcomes(config_path)
    render_online(rows, console)
    online = {"replay": summary, "outcomes": rows}
    (workdir / "online.json").write_text(json.dumps(online, indent=2, default=str))
    return online


@dataclass(frozen=True, slots=True)
class DayOutcome:
    """The evaluation as of the end of one simulated day of the demo's experiment."""

    day: int
    as_of: str  # ISO date-time (simulated)
    outcome: str  # PROMOTE / CONTINUE / ROLLBACK / STOP
    reason: str  # the first of the decision's reasons
    expected_days: float | None


def evaluate_daily(
    config_path: Path, first_day: str, days: int, console: Console
) -> tuple[list[DayOutcome], Any]:
    """Evaluate the experiment as of the end of each simulated day (valid under daily looks:
    the decision rule is sequential); print each day's outcome; return them and the last
    `fraudgate.evaluation.Evaluation`."""
    from datetime import UTC, datetime, timedelta

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from fraudgate.evaluation import evaluate
    from fraudgate.ledger import open_ledger

    config = load_config(config_path)
    if config.ledger_config is None:
        raise RuntimeError("the demo's config has no ledger: nothing to evaluate")
    start = datetime.fromisoformat(first_day[:10]).replace(tzinfo=UTC)
    outcomes: list[DayOutcome] = []
    evaluation: Any = None
    store = open_ledger(config.ledger_config.url)
    progress = Progress(
        TextColumn("[bold]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("simulated days"),
        console=console,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task("evaluating", total=days)
            for day in range(1, days + 1):
                as_of = start + timedelta(days=day)
                evaluation = evaluate(config, store, as_of)
                decision = evaluation.decision
                outcome = DayOutcome(
                    day=day,
                    as_of=as_of.isoformat(),
                    outcome=str(decision.outcome),
                    reason=decision.reasons[0] if decision.reasons else "",
                    expected_days=decision.expected_days_to_decision,
                )
                outcomes.append(outcome)
                progress.console.print(render_day(outcome))
                progress.update(task, advance=1)
    finally:
        store.close()
    return outcomes, evaluation


_COLOURS = {"PROMOTE": "green", "CONTINUE": "yellow", "ROLLBACK": "red", "STOP": "magenta"}


def render_day(outcome: DayOutcome) -> str:
    """One line per simulated day: date, outcome, reason."""
    colour = _COLOURS.get(outcome.outcome, "white")
    return (
        f"day {outcome.day:>2} (as of {outcome.as_of[:10]}): "
        f"[bold {colour}]{outcome.outcome:<8}[/] {outcome.reason}"
    )


def write_reports(evaluation: Any, outcomes: list[DayOutcome], workdir: Path) -> list[Path]:
    """report.json and report.html of the last evaluation (`fraudgate report`'s writers), and
    the daily outcomes in decisions.json."""
    from dataclasses import asdict

    from fraudgate.report.evaluation import write_evaluation_json
    from fraudgate.report.evaluation_html import write_evaluation_html

    daily = workdir / "decisions.json"
    daily.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    return [
        write_evaluation_json(evaluation, workdir / "report.json"),
        write_evaluation_html(evaluation, workdir / "report.html"),
        daily,
    ]


# -- acting: promote on PROMOTE, or ramp a bad challenger and watch it roll back ---------------

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
BAD_THRESHOLD = 0.0  # --bad-challenger: fraud-v2-candidate flags every transaction
DEMO_ROLLOUT = {
    "steps": [{"weight": 20, "min_duration_s": 60, "min_sample": 2000}, {"weight": 100}],
    "check_interval_s": 1.0,
    "promote": "on_primary",
}


def reset_aliases(tracking_uri: str, console: Console) -> None:
    """A fresh demo experiment starts from @champion = v1, @challenger = v2 (a previous run may
    have promoted v2; its ledger is gone, so nothing else would say so)."""
    from fraudgate.registry import Registry

    registry = Registry(tracking_uri)
    latest = registry.latest_by_serving_name()
    if V1 not in latest or V2 not in latest:
        return
    wanted = {"champion": latest[V1], "challenger": latest[V2]}
    aliases = registry.aliases()
    if {a: aliases.get(a) for a in wanted} != wanted or "previous" in aliases:
        registry.set_aliases({**wanted, "previous": None})
        console.print("registry aliases reset for a fresh experiment: @champion v1, @challenger v2")


def write_bad_challenger(config_path: Path) -> None:
    """The demo's config with fraud-v2-candidate's threshold at 0 and a short rollout plan."""
    import yaml

    data = yaml.safe_load(config_path.read_text())
    for model in data["models"]:
        if model["name"] == V2:
            model["threshold"] = BAD_THRESHOLD
    data["rollout"] = DEMO_ROLLOUT
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_config(config_path)  # still valid


def traffic_split(url: str, n: int = 400) -> dict[str, int]:
    """Who answers ``n`` requests to the experiment from ``n`` different cards."""
    import numpy as np

    from fraudgate.client import FraudgateClient

    rows = np.zeros((1, 30), dtype=np.float32)
    seen: dict[str, int] = {}
    with FraudgateClient(url) as client:
        for i in range(n):
            result = client.score(rows[0], model=V1, routing_key=f"demo-card-{i}")
            seen[result.model_name] = seen.get(result.model_name, 0) + 1
    return seen


def _split_text(split: dict[str, int]) -> str:
    total = sum(split.values()) or 1
    return ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in sorted(split.items()))


def promote_on_decision(config_path: Path, workdir: Path, evaluation: Any, console: Console):
    """Serve again; if the evaluation says PROMOTE, promote (with it as the evidence) and show
    the aliases and the live traffic moving to the new champion. Returns the act or None."""
    from fraudgate.client import FraudgateClient
    from fraudgate.ledger import open_ledger
    from fraudgate.report.experiment import render_action
    from fraudgate.rollout.acting import act_on_server

    outcome = evaluation.decision.outcome.value
    if outcome != "PROMOTE":
        console.print(f"the evaluation says [bold]{outcome}[/]: nothing to promote")
        return None
    config = load_config(config_path)
    assert config.ledger_config is not None and config.experiment_spec is not None
    console.rule("Acting on the decision: promote")
    with running_server(config_path, workdir / "server-promote.log", ready_timeout=300) as server:
        console.print(f"live traffic before: {_split_text(traffic_split(server.url))}")
        store = open_ledger(config.ledger_config.url)
        try:
            with FraudgateClient(server.url, token=config.auth.token) as client:
                acted = act_on_server(
                    client,
                    config,
                    store,
                    "promote",
                    experiment=config.experiment_spec.name,
                    reason="fraudgate demo: the evaluation says PROMOTE",
                    actor="fraudgate-demo",
                    evaluation=evaluation,
                )
        finally:
            store.close()
        render_action(acted.result, console)
        console.print(f"live traffic after: {_split_text(traffic_split(server.url))}")
    return acted.result


def bad_challenger_rollout(
    config_path: Path, workdir: Path, *, plan: DemoReplay, seed: int, console: Console
) -> Any:
    """Serve a challenger that flags everything, replay traffic through it while `fraudgate
    rollout` ramps it: the alert-rate guardrail rolls it back by itself. Returns the result."""
    import threading

    from fraudgate.client import FraudgateClient
    from fraudgate.ledger import open_ledger
    from fraudgate.report.experiment import render_rollout_event
    from fraudgate.rollout.controller import RolloutController

    config = load_config(config_path)
    assert config.ledger_config is not None
    target = target_from_config(config_path)
    console.rule("A bad challenger (flags every transaction), ramped by the rollout")
    outcome: dict[str, Any] = {}
    with running_server(config_path, workdir / "server-bad.log", ready_timeout=300) as server:
        store = open_ledger(config.ledger_config.url)
        client = FraudgateClient(server.url, token=config.auth.token)
        rollout_config = replace_servers(config, server.url)
        replayed = threading.Event()
        controller = RolloutController(
            rollout_config,
            store,
            client,
            token=config.auth.token,
            on_event=lambda event: render_rollout_event(event, console),
            should_stop=replayed.is_set,
        )

        def run() -> None:
            try:
                outcome["result"] = controller.run()
            except Exception as exc:  # shown below; the replay goes on
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="demo-rollout")
        thread.start()
        settings = ReplaySettings(
            url=server.url,
            transactions=plan.transactions,
            rate=plan.rate if plan.rate > 0 else math.inf,
            concurrency=plan.concurrency,
            seed=seed,
            workdir=workdir,
            token=target.token,
            model=target.model,
            routing_parameter=target.routing_parameter,
            delays=plan.delays,
            label_horizon_days=plan.label_days,
            window_days=plan.days,
        )
        try:
            run_replay(settings, console=console)
        finally:
            replayed.set()  # no more traffic: a rollout still undecided stops at its next look
            thread.join()
            client.close()
            store.close()
        if "error" in outcome:
            raise RuntimeError(f"the rollout failed: {outcome['error']}")
        console.print(f"live traffic now: {_split_text(traffic_split(server.url))}")
    result = outcome.get("result")
    if result is not None and result.breach_detected_at is not None:
        took = result.champion_back_at - result.breach_detected_at
        console.print(
            f"[bold red]rolled back[/] at the first failing guardrail; traffic back on the "
            f"champion {took * 1000:.0f} ms after the breach was seen: {result.reason}"
        )
    return result


def replace_servers(config: Any, url: str) -> Any:
    """``config`` whose rollout reads the one demo server's metrics."""
    from dataclasses import replace

    return replace(config, rollout=replace(config.rollout, servers=(url,)))
