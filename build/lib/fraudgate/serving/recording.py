"""Recording decisions: nothing (plain serving), the journal, or the store's commit.

The scheduler hands each flush to one `Recorder` (`fraudgate.serving.scheduler.Recorder`), which
makes its decisions durable and only then lets the requests answer, so an acknowledged decision
is never lost:

* `NoRecorder` (no ledger): the requests answer at once.
* `JournalRecorder` (``ledger.acknowledge: journal``, the default): one ``os.write`` of the
  flush's decision batches (`fraudgate.ledger.journal`; one append per tick in the common case); a
  shipper process moves them into the store, and scores the mirror copies the batches carry.
* `CommitRecorder` (``acknowledge: commit``): the store's group commit (`DecisionWriter`), waited
  for at most ``ledger.commit_timeout_ms``; past it the requests get 503 (their commit goes on and
  may still land: recorded though not acknowledged, as with any 503 whose work was done).

A decision batch (`fraudgate.ledger.records.DecisionBatch`) holds one group's decisions in
columns (`served_batch`). The ledger modules are imported when a ledger recorder
is built, so plain serving never loads them (nor SQLAlchemy).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudgate.serving.scheduler import Flushed, Queued, Tasks

if TYPE_CHECKING:
    from collections.abc import Callable

    from fraudgate.ledger.records import DecisionBatch

_NO_ROUTE = (None, None, None, None, None)  # a request addressed to a model directly
_ledger_columns = attrgetter(
    "request_id", "transaction", "amount", "route", "started", "event_time"
)


@dataclass(slots=True)
class RecordCounts:
    """Decisions recorded, for the metrics: served ones durable before their response, mirror
    ones journaled or queued for the commit; flushes that could not be recorded (503)."""

    served: int = 0
    mirror: int = 0
    failures: int = 0


def request_columns(items: list[Queued], n: int) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(request ids, transaction ids, amounts, routes, start times, event times) of ``items``'
    ``n`` rows."""
    if n == len(items):
        rows: Any = map(_ledger_columns, items)
    else:  # multi-row requests: one entry per row
        rows = [
            (item.request_id, transaction, amount, item.route, item.started, item.event_time)
            for item in items
            for transaction, amount in _per_row(item.transaction, item.amount)
        ]
    # columns by transposing (in C): the per-flush cost of recording stays small
    return tuple(zip(*rows, strict=True))  # type: ignore[return-value]


def _per_row(transaction: Any, amount: Any) -> Any:
    """(transaction id, amount) of each row of a queued request."""
    if type(transaction) is str:
        return ((transaction, amount),)
    return zip(transaction, amount, strict=True)


class NoRecorder:
    """Plain serving: nothing is recorded, the requests answer at once."""

    records = False

    def __init__(self) -> None:
        self.counts = RecordCounts()

    def served_batch(self, *args: Any) -> DecisionBatch:  # pragma: no cover - records is False
        raise AssertionError("NoRecorder builds no decision batches")

    def record(self, flushed: Flushed, settle: Callable[[Flushed], None]) -> None:
        settle(flushed)

    def record_mirror(self, batch: DecisionBatch) -> bool:  # pragma: no cover - never called
        return False

    async def aclose(self) -> None:
        return None


class _LedgerRecorder:
    """What both ledger recorders share: the decision batches and the write errors."""

    records = True

    def __init__(self) -> None:
        from fraudgate.ledger import LedgerWriteError, WriterClosed
        from fraudgate.ledger.journal import JournalWriteError
        from fraudgate.ledger.records import DecisionBatch

        self.counts = RecordCounts()
        self._write_errors = (LedgerWriteError, WriterClosed, JournalWriteError)
        self._decision_batch = DecisionBatch

    def served_batch(
        self,
        model: Any,  # DeployedModel
        items: list[Queued],
        scores: np.ndarray,
        decisions: np.ndarray,
        mirror: list[Any] | None,
    ) -> DecisionBatch:
        """The served decisions of one model's runtime call on ``items``, in columns.

        ``scores`` and ``decisions``: `DeployedModel.decide`'s, the FP32 scores and the decisions
        the responses carry; latency: per request, from its start to now."""
        n = scores.shape[0]
        request_ids, transactions, amounts, routes, starts, events = request_columns(items, n)
        experiments: Any
        arms: Any
        keys: Any
        if None in routes:  # some requests addressed a model directly
            experiments, arms, _, keys, _ = zip(
                *[route or _NO_ROUTE for route in routes], strict=True
            )
        else:  # one experiment per server, and a group is one served model: one arm
            experiments, arms = routes[0].experiment, routes[0].model
            keys = [route.key_hash for route in routes]
        now = time.perf_counter()
        return self._decision_batch(
            n=n,
            request_id=request_ids,
            transaction_id=transactions,
            decided_at=time.time(),
            experiment=experiments,
            arm=arms,
            role="served",
            model_name=model.name,
            model_version=model.version,
            score=scores.reshape(-1).tolist(),
            threshold=model.threshold,
            is_fraud_decision=decisions.reshape(-1).tolist(),
            latency_ms=[(now - started) * 1000.0 for started in starts],
            amount=amounts,
            routing_key_hash=keys,
            event_time=None if events.count(None) == n else events,  # None: the decision time
            mirror=mirror or (),
        )


class JournalRecorder(_LedgerRecorder):
    """``acknowledge: journal``: durable once appended to this process's decision journal."""

    def __init__(self, journal: Any, mirror_counts: Any) -> None:
        super().__init__()
        self.journal = journal  # fraudgate.ledger.journal.Journal
        self._mirror_counts = mirror_counts  # fraudgate.serving.shadow.MirrorCounts

    def record(self, flushed: Flushed, settle: Callable[[Flushed], None]) -> None:
        if flushed.batches:
            try:
                self.journal.append(flushed.batches)
            except self._write_errors as exc:
                self.counts.failures += 1
                flushed.fail(exc)
                return
            self.counts.served += flushed.served_rows
            self._mirror_counts.journaled += flushed.journaled
        settle(flushed)

    def record_mirror(self, batch: DecisionBatch) -> bool:  # pragma: no cover - the shipper's
        self.journal.append([batch])
        return True

    async def aclose(self) -> None:
        self.journal.close()


class CommitRecorder(_LedgerRecorder):
    """``acknowledge: commit``: durable once the store's group commit (`DecisionWriter`) lands,
    waited for at most ``ledger.commit_timeout_ms``."""

    def __init__(self, writer: Any, health: Any, store_url: str, tasks: Tasks) -> None:
        super().__init__()
        self.writer = writer  # fraudgate.ledger.DecisionWriter
        self.health = health  # fraudgate.serving.supervisor.LedgerHealth | None
        self._store_url = store_url
        self._tasks = tasks

    def record(self, flushed: Flushed, settle: Callable[[Flushed], None]) -> None:
        if flushed.batches:
            self._tasks.spawn(self._commit(flushed, settle))
        else:
            settle(flushed)

    async def _commit(self, flushed: Flushed, settle: Callable[[Flushed], None]) -> None:
        # A bounded wait: past ledger.commit_timeout_ms the requests get 503. Their commit goes
        # on (shielded) and may still land: then the decisions are recorded though they were not
        # acknowledged, as with any 503 whose work was done; an acknowledged one is never lost.
        commit = asyncio.ensure_future(self.writer.submit_batches(flushed.batches))
        self._tasks.track(commit)
        health = self.health
        if health is not None:
            health.track_commit(commit)
        try:
            await asyncio.wait_for(
                asyncio.shield(commit), health.commit_timeout_s if health else None
            )
        except TimeoutError:
            assert health is not None
            health.commit_timeouts += len(flushed.answers)
            self.counts.failures += 1
            flushed.fail(
                TimeoutError(
                    f"the ledger did not commit within ledger.commit_timeout_ms="
                    f"{health.commit_timeout_s * 1000:.0f}; check that the ledger database "
                    f"{self._store_url} is reachable and not locked by another process"
                )
            )
            return
        except self._write_errors as exc:
            self.counts.failures += 1
            flushed.fail(exc)
            return
        self.counts.served += flushed.served_rows
        settle(flushed)

    def record_mirror(self, batch: DecisionBatch) -> bool:
        """Fire-and-forget mirror decisions; False if dropped (back-pressure, closed writer)."""
        try:
            return bool(self.writer.record_mirror_batch(batch))
        except self._write_errors:
            return False

    async def aclose(self) -> None:
        await self.writer.aclose()


__all__ = [
    "CommitRecorder",
    "JournalRecorder",
    "NoRecorder",
    "RecordCounts",
    "request_columns",
]
