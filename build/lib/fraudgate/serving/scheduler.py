"""The one scheduler: concurrent requests become one runtime call per model per loop tick.

Every request joins its model's group for this tick (`Scheduler.submit`); a group is flushed as one
runtime call:

* as soon as it holds the model's ``batching.max_batch_size`` rows (a request of that many rows
  or more is a group on its own), or
* at the first event-loop tick in which no request joined it, or
* ``max_wait_ms`` after its first request started, whichever comes first.

So an idle server never waits for a batch to fill (a lone request costs one extra loop tick, a
few microseconds), and a busy one batches what is already arriving: the model's code and trees
stay hot in the CPU caches instead of being evicted by the HTTP work in between. A group of more
than ``OFFLOAD_ROWS`` rows is scored on the model's own worker thread (the runtimes release the
GIL for big batches) so it does not stall the event loop; smaller ones never leave the event-loop
thread.

A flush scores each group once, takes the decisions at the model's threshold once
(`DeployedModel.decide`), hands the decisions to the recorder (`fraudgate.serving.recording`: none,
the journal, or the store's commit) and the mirror copies to the shadow
(`fraudgate.serving.shadow`), and resolves the requests only once the recorder says their
decisions are durable. Per request this is one slotted record and a list append; the per-row work
is done per group, in C where it can be (zip, map).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from fraudgate.protocol.errors import Unavailable

if TYPE_CHECKING:
    from fraudgate.experiments import RouteDecision
    from fraudgate.ledger.records import DecisionBatch

log = logging.getLogger(__name__)

# rows above which a group is scored off the event-loop thread
OFFLOAD_ROWS = 2048


class Scorer(Protocol):
    """What the scheduler needs of a model (`fraudgate.serving.dataplane.DeployedModel`)."""

    max_batch_size: int
    max_wait_s: float

    def call(self, x: np.ndarray) -> np.ndarray: ...

    async def call_offloaded(self, x: np.ndarray) -> np.ndarray: ...

    def decide(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class Scored(NamedTuple):
    """A request's answer: its rows of the FP32 scores ([n, 1]) and of their decisions."""

    scores: np.ndarray
    decisions: np.ndarray


_new_scored = partial(tuple.__new__, Scored)  # Scored from a (scores, decisions) pair, in C


@dataclass(slots=True)
class Queued:
    """A request waiting for its tick.

    A one-row request holds a str ``transaction`` and one ``amount`` (the common case: nothing
    to expand); a multi-row one holds lists of one per row. Plain serving records nothing:
    ``request_id`` is the caller's (or None) and ``transaction``/``amount`` are None.
    """

    model: Any  # a Scorer (DeployedModel), hashed by identity
    x: np.ndarray
    request_id: str | None
    transaction: Any
    amount: Any
    route: RouteDecision | None
    started: float  # perf_counter at the request's start
    future: asyncio.Future[Scored]
    event_time: float | None = None  # when its transactions happened (None: decision time)


_x = attrgetter("x")
_future = attrgetter("future")


@dataclass(slots=True)
class Flushed:
    """What one flush produced, for the recorder and then the answers."""

    answers: list[tuple[asyncio.Future[Scored], Scored]] = field(default_factory=list)
    batches: list[DecisionBatch] = field(default_factory=list)  # served decisions to record
    mirrored: list[Queued] = field(default_factory=list)  # copies for the in-process shadow
    served_rows: int = 0  # rows of ``batches``
    journaled: int = 0  # mirror copies carried in ``batches`` (acknowledge: journal)

    def fail(self, exc: BaseException) -> None:
        """The decisions could not be recorded: every request answers 503."""
        error = Unavailable(f"the decision could not be recorded: {exc}")
        for future, _ in self.answers:
            settle(future, exception=error)


class Recorder(Protocol):
    """Makes a flush's decisions durable, then calls ``settle`` (see `recording`)."""

    records: bool  # whether flushes build decision batches at all

    def served_batch(
        self,
        model: Any,
        items: list[Queued],
        scores: np.ndarray,
        decisions: np.ndarray,
        mirror: list[Any] | None,
    ) -> DecisionBatch: ...

    def record(self, flushed: Flushed, settle: Any) -> None: ...


class Mirror(Protocol):
    """Takes a scored group's mirror copies (see `shadow`)."""

    def copy(
        self, items: list[Queued], x: np.ndarray, one_row: bool, flushed: Flushed
    ) -> list[Any] | None: ...

    def queue(self, items: list[Queued]) -> None: ...


class Tasks:
    """Background tasks (offloaded groups, commits, offloaded shadow scoring), kept referenced
    until done so a close can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.track(task)
        return task

    def track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)

    def __bool__(self) -> bool:
        return bool(self._tasks)

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _Group:
    """One model's requests of this tick."""

    __slots__ = ("model", "items", "rows", "seen", "first")

    def __init__(self, item: Queued, rows: int) -> None:
        self.model = item.model
        self.items = [item]
        self.rows = rows
        self.seen = 1  # requests at the previous tick
        self.first = item.started


class Scheduler:
    """Per-tick batching, scoring and answering for every model of a server."""

    def __init__(self, recorder: Recorder, mirror: Mirror | None, tasks: Tasks) -> None:
        self.recorder = recorder
        self.mirror = mirror
        self.tasks = tasks
        self._records = recorder.records
        self._groups: dict[Any, _Group] = {}  # model (by identity) -> its group
        self._scheduled = False
        self._settle = self.settle  # bound once: handed to the recorder every flush

    @property
    def pending(self) -> bool:
        """Requests wait for a flush."""
        return bool(self._groups)

    def submit(
        self,
        model: Any,
        x: np.ndarray,
        request_id: str | None,
        transaction: Any,
        amount: Any,
        route: RouteDecision | None,
        started: float,
        event_time: float | None = None,
    ) -> asyncio.Future[Scored]:
        """Queue a request; its future resolves to its `Scored` rows once they are durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Scored] = loop.create_future()
        item = Queued(model, x, request_id, transaction, amount, route, started, future, event_time)
        n = x.shape[0]
        if n >= model.max_batch_size:  # a batch on its own
            self._flush((_Group(item, n),))
            return future
        group = self._groups.get(model)
        if group is None:
            self._groups[model] = _Group(item, n)
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._tick, loop)
            return future
        group.items.append(item)
        group.rows += n
        if group.rows >= model.max_batch_size:  # full: flushed now
            del self._groups[model]
            self._flush((group,))
        return future

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush each group at the first tick in which no request joined it (or after its
        model's ``max_wait``): under load a batch gathers what is already arriving."""
        groups = self._groups
        ready = []
        for group in groups.values():
            n = len(group.items)
            if n > group.seen and time.perf_counter() - group.first < group.model.max_wait_s:
                group.seen = n  # still growing: give stragglers one more tick
            else:
                ready.append(group)
        for group in ready:
            del groups[group.model]
        if groups:
            loop.call_soon(self._tick, loop)
        else:
            self._scheduled = False
        if ready:
            self._flush(ready)

    def _flush(self, groups: Iterable[_Group]) -> None:
        flushed = Flushed()
        try:
            for group in groups:
                model, items = group.model, group.items
                x = items[0].x if len(items) == 1 else np.concatenate(list(map(_x, items)))
                if x.shape[0] > OFFLOAD_ROWS:  # a huge batch: off the event loop
                    self.tasks.spawn(self._flush_offloaded(model, items, x))
                    continue
                try:
                    out = model.call(x)
                except Exception as exc:  # the runtime failed: every request learns why
                    _fail_items(items, exc)
                    continue
                self._scored(model, items, x, out, flushed)
            self.recorder.record(flushed, self._settle)
        except Exception as exc:  # a bug: no request may wait forever for its answer
            log.exception("scoring a batch failed")
            for group in groups:
                _fail_items(group.items, exc)

    async def _flush_offloaded(self, model: Any, items: list[Queued], x: np.ndarray) -> None:
        try:
            out = await model.call_offloaded(x)
        except Exception as exc:
            _fail_items(items, exc)
            return
        flushed = Flushed()
        try:
            self._scored(model, items, x, out, flushed)
            self.recorder.record(flushed, self._settle)
        except Exception as exc:  # a bug
            log.exception("scoring a batch of %d rows failed", x.shape[0])
            _fail_items(items, exc)

    def _scored(
        self, model: Any, items: list[Queued], x: np.ndarray, out: np.ndarray, flushed: Flushed
    ) -> None:
        """A scored group's answers, mirror copies and (when recording) decision batch."""
        scores, decisions = model.decide(out)
        n = scores.shape[0]
        one_row = n == len(items)
        if one_row:  # one row per request (the common case): in C
            rows = map(_new_scored, zip(scores, decisions, strict=True))
            flushed.answers.extend(zip(map(_future, items), rows, strict=True))
        else:
            offset = 0
            answers = flushed.answers
            for item in items:
                end = offset + item.x.shape[0]
                answers.append((item.future, Scored(scores[offset:end], decisions[offset:end])))
                offset = end
        entries = None
        if self.mirror is not None:
            entries = self.mirror.copy(items, x, one_row, flushed)
        if self._records:
            flushed.batches.append(
                self.recorder.served_batch(model, items, scores, decisions, entries)
            )
            flushed.served_rows += n

    def settle(self, flushed: Flushed) -> None:
        """The decisions are durable: the requests answer, then the mirror copies queue."""
        for future, scored in flushed.answers:
            if not future.done():  # else the waiting request was cancelled (client gone)
                future.set_result(scored)
        if flushed.mirrored:
            assert self.mirror is not None
            self.mirror.queue(flushed.mirrored)


def settle(
    future: asyncio.Future[Any], result: Any = None, exception: BaseException | None = None
) -> None:
    """Resolve ``future`` unless its request was cancelled meanwhile (client gone)."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


def _fail_items(items: list[Queued], exc: BaseException) -> None:
    for item in items:
        settle(item.future, exception=exc)
