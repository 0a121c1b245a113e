"""Terminal rendering for `fraudgate experiment show|set` and `fraudgate feedback`.

The inputs are the client's results (`fraudgate.client.ExperimentInfo`, `WeightChange`,
`FeedbackResult`), described here by the attributes rendered, so this room imports no client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table


class WeightChangeView(Protocol):
    @property
    def at(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def old(self) -> Mapping[str, Any]: ...
    @property
    def new(self) -> Mapping[str, Any]: ...
    @property
    def generation(self) -> int | None: ...


class ExperimentView(Protocol):
    @property
    def spec(self) -> Mapping[str, Any]: ...
    @property
    def generation(self) -> int: ...
    @property
    def history(self) -> Sequence[WeightChangeView]: ...


class FeedbackView(Protocol):
    @property
    def inserted(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def unknown_transaction_ids(self) -> Sequence[str]: ...
    @property
    def unknown_count(self) -> int: ...


class RowProblem(Protocol):
    """A label row the file check refused (its ``str`` says row, field and reason)."""

    @property
    def row(self) -> int: ...


def weights_text(weights: Mapping[str, Any]) -> str:
    """``a=80, b=20`` (``-`` for none)."""
    return ", ".join(f"{k}={v}" for k, v in weights.items()) or "-"


def render_experiment(view: ExperimentView, console: Console) -> None:
    """The split (weight and share per candidate), the mirror, then the weight history."""
    spec = view.spec
    table = Table(title=f"experiment {spec['name']} (generation {view.generation})")
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
    if view.history:
        history = Table(title="weight changes")
        for column in ("at", "actor", "old", "new"):
            history.add_column(column)
        for change in view.history:
            history.add_row(
                change.at, change.actor, weights_text(change.old), weights_text(change.new)
            )
        console.print(history)


def render_weight_change(experiment: str, change: WeightChangeView, console: Console) -> None:
    console.print(
        f"experiment {experiment}: {weights_text(change.old)} -> "
        f"[bold]{weights_text(change.new)}[/] by {change.actor} at {change.at} "
        f"(generation {change.generation})",
        highlight=False,
    )


def render_feedback(
    file: Path,
    stored: int,
    result: FeedbackView,
    errors: Sequence[RowProblem],
    console: Console,
    err_console: Console,
) -> None:
    """What happened to a labels file: counts, the unknown ids, then each refused field."""
    table = Table(title=f"labels from {file}")
    for column in ("stored", "inserted", "updated", "unchanged", "unknown ids", "rejected rows"):
        table.add_column(column, justify="right")
    unknown = list(result.unknown_transaction_ids)
    unknown_count = max(result.unknown_count, len(unknown))
    table.add_row(
        str(stored),
        str(result.inserted),
        str(result.updated),
        str(result.unchanged),
        str(unknown_count),
        str(len({e.row for e in errors})),
    )
    console.print(table)
    if unknown_count:
        shown = ", ".join(unknown[:10]) + (" ..." if unknown_count > 10 else "")
        console.print(f"no decision recorded for {unknown_count} transaction ids: {shown}")
    for error in errors[:50]:
        err_console.print(f"rejected {error}", highlight=False)
    if len(errors) > 50:
        err_console.print(f"... and {len(errors) - 50} more rejected fields", highlight=False)


# -- promote, rollback, rollout, history ---------------------------------------------------------


class ActionView(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def experiment(self) -> str: ...
    @property
    def at(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def before(self) -> Mapping[str, Any]: ...
    @property
    def state(self) -> Mapping[str, Any]: ...


def _aliases_text(aliases: Mapping[str, Any]) -> str:
    return ", ".join(f"@{alias}=v{version}" for alias, version in sorted(aliases.items())) or "-"


def render_action(result: ActionView, console: Console) -> None:
    """A promote / rollback as done: champion, aliases and weights before and after."""
    table = Table(
        title=f"{result.action} of {result.experiment} at {result.at} by {result.actor}",
        title_justify="left",
    )
    for column in ("", "before", "after"):
        table.add_column(column)
    before, after = result.before, result.state
    table.add_row("champion", str(before.get("champion")), str(after.get("champion")))
    table.add_row(
        "registry aliases",
        _aliases_text(before.get("aliases", {})),
        _aliases_text(after.get("aliases", {})),
    )
    table.add_row(
        "traffic", weights_text(before.get("weights", {})), weights_text(after.get("weights", {}))
    )
    versions = after.get("versions", {})
    table.add_row(
        "serving names",
        "",
        ", ".join(f"{name} = MLflow v{version}" for name, version in versions.items()),
    )
    table.caption = f"reason: {result.reason}"
    table.caption_justify = "left"
    console.print(table)


class RolloutEventView(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def weights(self) -> Mapping[str, int] | None: ...


_EVENT_STYLE = {"rollback": "bold red", "promote": "bold green", "step": "cyan", "end": "bold"}


def render_rollout_event(event: RolloutEventView, console: Console) -> None:
    """One line per thing the rollout did or saw."""
    style = _EVENT_STYLE.get(event.kind, "")
    weights = f" [{weights_text(event.weights)}]" if event.weights else ""
    kind = f"[{style}]{event.kind:>8}[/]" if style else f"{event.kind:>8}"
    from datetime import datetime

    now = datetime.now().strftime("%H:%M:%S")
    console.print(f"{now} {kind} {event.message}{weights}", highlight=False)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of `fraudgate experiment history`: a weight change or a recorded act."""

    at: float
    kind: str
    actor: str
    what: str
    reason: str


def render_history(experiment: str, entries: Sequence[HistoryEntry], console: Console) -> None:
    from fraudgate.weights import iso_utc

    table = Table(title=f"history of {experiment}", title_justify="left")
    for column in ("time (UTC)", "kind", "actor", "what", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            iso_utc(entry.at)[:19].replace("T", " "),
            entry.kind,
            entry.actor,
            entry.what,
            entry.reason,
        )
    if not entries:
        table.caption = "nothing recorded yet"
    console.print(table)
