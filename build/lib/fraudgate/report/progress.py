"""A progress bar over the named steps of a long job (simulate, features, train, ...)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class StepProgress:
    """`with steps.step("training v1"): ...` advances one bar and records each step's seconds."""

    def __init__(self, total: int, console: Console | None = None, enabled: bool = True):
        self.timings: dict[str, float] = {}
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task("starting", total=total)

    def __enter__(self) -> StepProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def note(self, message: str) -> None:
        self._progress.update(self._task, description=message)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.note(name)
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - began
            self._progress.advance(self._task)
