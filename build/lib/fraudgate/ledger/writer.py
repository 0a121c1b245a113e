"""Group-commit decision writer: batched, off the event loop, and lossless once acknowledged.

The server does ``await writer.submit_batches(batches)`` (`DecisionBatch` columns) *before* it
sends its 200 (``submit`` and ``submit_many`` take `Decision` records and do the same). Batches
submitted from one event loop during one loop iteration are gathered into ONE group that is
handed to the writer thread by one ``call_soon`` callback at the end of that iteration: one queue
put (one thread wake-up) per iteration, not per request. The background thread takes everything
queued (up to ``max_batch`` rows), writes it in ONE transaction on its own long-lived connection
(`DecisionSink`, which turns the columns into rows, off the event loop), and only after the
commit returns resolves the futures of that batch (one ``call_soon_threadsafe`` per event loop
per batch). On PostgreSQL two such threads (``writers=2``) take turns, so one batch is
inserted while the previous one waits for its commit's fsync. So:

* the event loop never touches the database (no blocking I/O on the loop);
* a decision is acknowledged only once it is committed, so SIGKILL after the 200 loses nothing;
* under load, batches grow by themselves (everything that queued up during the previous commit
  goes into the next one) -- no timer, no added latency when idle.

If a batch cannot be written (database down) after ``retry_attempts`` tries, its waiters get a
:class:`LedgerWriteError` and the server should answer 5xx: nothing unacknowledged is claimed
durable. A retried batch whose first commit failed ambiguously may be written twice; the analysis
counts a transaction once per model (see ``LedgerStore.labelled_outcomes``).

Mirror decisions (shadow scores, never returned to anyone) take the fire-and-forget path
:meth:`DecisionWriter.record_mirror_batch`: they join the same batches but nobody waits for
them. They are written best-effort: flushed on graceful :meth:`close`, lost if the process is
SIGKILLed before their batch commits, and dropped (counted in ``stats().dropped_mirror``) if more
than ``max_pending_mirror`` are waiting, so a slow database can never grow memory without bound.
Served decisions are never dropped: their callers wait, which is the back-pressure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from fraudgate.ledger.records import Decision, DecisionBatch
from fraudgate.ledger.store import DecisionSink, LedgerStore

log = logging.getLogger(__name__)

_STOP = object()


class LedgerWriteError(RuntimeError):
    """The decisions could not be made durable; do not acknowledge the request."""


class WriterClosed(RuntimeError):
    """``submit`` after ``close``."""


@dataclass(frozen=True, slots=True)
class WriterStats:
    submitted: int  # decisions accepted (served + mirror)
    written: int  # decisions committed
    batches: int  # commits
    largest_batch: int
    dropped_mirror: int  # mirror decisions refused because too many were pending
    failed: int  # decisions whose batch could not be written
    pending_mirror: int

    @property
    def mean_batch(self) -> float:
        return self.written / self.batches if self.batches else 0.0


# A queue item: (seq, batches, rows, waiter). seq numbers items in submission order (for flush);
# rows counts the batches' decisions; waiter is None (mirror), a concurrent.futures.Future
# (blocking callers), or a tuple (loop, [asyncio.Future, ...]) (the awaiting requests of one
# loop iteration's group).
_Item = tuple[int, list[DecisionBatch], int, object]
_Waiters = tuple[asyncio.AbstractEventLoop, list[asyncio.Future[None]]]


class _Group:
    """Batches and waiters submitted from one event loop during one loop iteration."""

    __slots__ = ("batches", "futures")

    def __init__(self) -> None:
        self.batches: list[DecisionBatch] = []
        self.futures: list[asyncio.Future[None]] = []


class DecisionWriter:
    """Batches decisions into group commits on a background thread. See the module doc."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        max_batch: int = 2000,
        max_pending_mirror: int = 100_000,
        retry_attempts: int = 3,
        retry_backoff_s: float = 0.05,
        writers: int | None = None,
        checkpoint_interval_s: float = 0.5,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_pending_mirror = max_pending_mirror
        self._retry_attempts = max(1, retry_attempts)
        self._retry_backoff_s = retry_backoff_s
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._submitted = 0
        self._written = 0
        self._batches = 0
        self._largest = 0
        self._dropped_mirror = 0
        self._failed = 0
        self._pending_mirror = 0
        self._seq = 0  # last sequence number handed out
        self._watermark = 0  # every item with seq <= watermark is finished
        self._finished: set[int] = set()  # finished items above the watermark
        self._flush_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._groups: dict[asyncio.AbstractEventLoop, _Group] = {}  # open group per loop
        if writers is None:
            # SQLite has one write lock (a second thread would only wait on it); PostgreSQL
            # overlaps one batch's commit (fsync) with the next batch's insert.
            writers = 1 if store.backend == "sqlite" else 2
        self._threads = [
            threading.Thread(target=self._run, name=f"fraudgate-ledger-writer-{n}", daemon=True)
            for n in range(max(1, writers))
        ]
        self._stopped = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if store.backend == "sqlite":  # WAL checkpoints off the commit path (see DecisionSink)
            self._checkpointer = threading.Thread(
                target=self._checkpoint,
                args=(checkpoint_interval_s,),
                name="fraudgate-ledger-checkpoint",
                daemon=True,
            )
            self._checkpointer.start()
        for thread in self._threads:
            thread.start()

    # -- producer side (any thread / event loop) --------------------------------------------

    def _put(self, batches: list[DecisionBatch], waiter: object) -> None:
        rows = sum(batch.n for batch in batches)
        with self._lock:
            if self._closed:
                raise WriterClosed("the decision writer is closed")
            self._submitted += rows
            self._seq += 1
            self._queue.put((self._seq, batches, rows, waiter))

    async def submit(self, decision: Decision) -> None:
        """Resolve once ``decision`` is committed (durable). Raises LedgerWriteError if not."""
        await self.submit_batches([DecisionBatch.of([decision])])

    async def submit_many(self, decisions: Iterable[Decision]) -> None:
        """Resolve once all ``decisions`` are committed (they go into the same batch)."""
        await self.submit_batches([DecisionBatch.of(list(decisions))])

    async def submit_batches(self, batches: Iterable[DecisionBatch]) -> None:
        """Resolve once the decisions of all ``batches`` are committed.

        The batches join this loop iteration's group, handed to the writer thread at its end.
        """
        if self._closed:
            raise WriterClosed("the decision writer is closed")
        loop = asyncio.get_running_loop()
        group = self._groups.get(loop)
        if group is None:
            group = self._groups[loop] = _Group()
            loop.call_soon(self._hand_over, loop)
        future = loop.create_future()
        group.batches.extend(batches)
        group.futures.append(future)
        await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._groups.pop(loop)
        try:
            self._put(group.batches, (loop, group.futures))
        except WriterClosed as exc:
            _settle(group.futures, exc)

    def submit_blocking(self, decisions: Iterable[Decision], timeout: float | None = None) -> None:
        """For threads without an event loop (e.g. a sync gRPC handler): block until durable."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._put([DecisionBatch.of(list(decisions))], future)
        future.result(timeout)

    def record_mirror(self, decision: Decision) -> bool:
        """Fire-and-forget (never blocks). Returns False if dropped because of back-pressure."""
        return self.record_mirror_batch(DecisionBatch.of([decision]))

    def record_mirror_many(self, decisions: Iterable[Decision]) -> bool:
        return self.record_mirror_batch(DecisionBatch.of(list(decisions)))

    def record_mirror_batch(self, batch: DecisionBatch) -> bool:
        """Fire-and-forget a batch of mirror decisions; False if dropped (back-pressure)."""
        rows = batch.n
        with self._lock:
            if self._closed:
                raise WriterClosed("the decision writer is closed")
            if self._pending_mirror + rows > self._max_pending_mirror:
                self._dropped_mirror += rows
                return False
            self._pending_mirror += rows
            self._submitted += rows
            self._seq += 1
            self._queue.put((self._seq, [batch], rows, None))
        return True

    async def flush(self) -> None:
        """Resolve once everything submitted before this call (mirrors too) is finished."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._watermark >= self._seq:
                return
            self._flush_waiters.append((self._seq, loop, future))
        await future

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                submitted=self._submitted,
                written=self._written,
                batches=self._batches,
                largest_batch=self._largest,
                dropped_mirror=self._dropped_mirror,
                failed=self._failed,
                pending_mirror=self._pending_mirror,
            )

    def close(self, timeout: float | None = None) -> None:
        """Refuse new decisions, write everything queued, stop the thread. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        if self._checkpointer is not None:
            self._checkpointer.join(
                None if deadline is None else max(0.0, deadline - time.monotonic())
            )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> DecisionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> DecisionWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- consumer side (the writer thread) --------------------------------------------------

    def _run(self) -> None:
        sink = DecisionSink(self._store)
        try:
            self._consume(sink)
        finally:
            sink.close()

    def _consume(self, sink: DecisionSink) -> None:
        # Items are only queued before _STOP (close() holds the lock), so whoever takes _STOP
        # knows every decision has been taken by some thread: it commits its own batch, passes
        # _STOP on to the next thread and exits.
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._queue.put(_STOP)
                return
            items: list[_Item] = [first]  # type: ignore[list-item]
            size = first[2]  # type: ignore[index]
            stop = False
            while size < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                items.append(item)  # type: ignore[arg-type]
                size += item[2]  # type: ignore[index]
            self._commit(sink, items)
            if stop:
                self._queue.put(_STOP)
                return

    def _checkpoint(self, interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            try:
                self._store.checkpoint()
            except Exception as exc:  # the next commit or checkpoint will tell more
                log.warning("ledger WAL checkpoint failed: %s", exc)
        with contextlib.suppress(Exception):
            self._store.checkpoint()

    def _commit(self, sink: DecisionSink, items: list[_Item]) -> None:
        batches = items[0][1] if len(items) == 1 else [b for item in items for b in item[1]]
        rows = sum(item[2] for item in items)
        mirrors = sum(item[2] for item in items if item[3] is None)
        error: BaseException | None = None
        for attempt in range(self._retry_attempts):
            try:
                sink.write(batches)
                error = None
                break
            except Exception as exc:  # database down, lock timeout, ...
                error = exc
                log.warning(
                    "ledger write of %d decisions failed (attempt %d/%d): %s",
                    rows,
                    attempt + 1,
                    self._retry_attempts,
                    exc,
                )
                if attempt + 1 < self._retry_attempts:
                    time.sleep(self._retry_backoff_s * 2**attempt)
        with self._lock:
            self._pending_mirror -= mirrors
            if error is None:
                self._written += rows
                self._batches += 1
                self._largest = max(self._largest, rows)
            else:
                self._failed += rows
            self._finished.update(item[0] for item in items)
            while self._watermark + 1 in self._finished:
                self._watermark += 1
                self._finished.discard(self._watermark)
            flushed = [w for w in self._flush_waiters if w[0] <= self._watermark]
            if flushed:
                self._flush_waiters = [w for w in self._flush_waiters if w[0] > self._watermark]
        for _, loop, future in flushed:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, [future], None)
        if error is not None:
            log.error("dropping %d mirror decisions after failed ledger write", mirrors)
            failure: BaseException | None = LedgerWriteError(
                f"could not record {rows} decisions in the ledger: {error}"
            )
        else:
            failure = None
        self._resolve(items, failure)

    @staticmethod
    def _resolve(items: list[_Item], failure: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for item in items:
            waiter = item[3]
            if waiter is None:
                continue
            if isinstance(waiter, concurrent.futures.Future):
                if failure is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failure)
                continue
            loop, futures = cast(_Waiters, waiter)
            by_loop.setdefault(loop, []).extend(futures)
        for loop, futures in by_loop.items():
            # RuntimeError: the loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, futures, failure)


def _settle(futures: list[asyncio.Future[None]], failure: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the awaiting task was cancelled
            continue
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(failure)
