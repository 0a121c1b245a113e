"""The server watches its ledger pipeline: the child shipper, the journal's lag, stalled commits.

One `LedgerHealth` per server with a ledger (built by `ExperimentPlane`). Everything it measures
is measured in one background task about once a second, never per request or per scrape:

* ``ledger.shipper: child``: `ShipperSupervisor` reaps the ``fraudgate ledger ship`` child when
  it exits (no zombie), logs the exit code or signal and starts a new one after a bounded
  backoff (0.5 s doubling to 30 s while it keeps dying young).
* ``acknowledge: journal`` (child or external shipper): how far behind shipping is. The server
  knows how many bytes it wrote to each segment; the shipped offsets are read from the store's
  ``journal_offsets`` (in a thread). Bytes behind is the difference; the age of the oldest
  unshipped decision is read from its journal line (its ``decided_at``), or else counted from
  when that offset was first seen unshipped. Past ``ledger.max_lag_s`` the server is unready.
* A deleted journal directory (see `fraudgate.ledger.journal.Journal`): the append that finds its
  file unlinked answers 503 and the journal opens a fresh instance; this task re-journals the
  deleted segment's acknowledged, unshipped tail (`recover_orphan`: exactly once, under the
  deleted instance's shipper lock) and counts what it could not recover.
* ``acknowledge: commit``: commits in flight for longer than ``ledger.commit_timeout_ms`` (their
  requests got 503) make the server unready until they finish.

`LedgerHealth.unready_reason` says why the server is not ready (None: it is); the data plane's
readiness (REST ``/v2/health/ready``, gRPC ``ServerReady``) includes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fraudgate.ledger.journal import Journal
    from fraudgate.ledger.store import LedgerStore

log = logging.getLogger(__name__)

_DECIDED_AT = re.compile(rb'"decided_at":(-?[0-9.eE+]+)')
_LINE_PEEK_BYTES = 1 << 20  # the first batch's decided_at is near the start of its line


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ShipperSupervisor:
    """Keeps the child ``fraudgate ledger ship`` running: reap, log, restart with backoff."""

    def __init__(
        self,
        spawn: Callable[[], subprocess.Popen[bytes]],
        process: subprocess.Popen[bytes],
        *,
        poll_s: float = 0.2,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        healthy_after_s: float = 30.0,
    ) -> None:
        self._spawn = spawn
        self.process: subprocess.Popen[bytes] | None = process
        self.restarts = 0
        self._poll_s = poll_s
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._healthy_after_s = healthy_after_s
        self._backoff_s = first_backoff_s
        self._started = time.monotonic()

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            process = self.process
            if process is None or process.poll() is None:  # poll() reaps an exited child
                continue
            ran_s = time.monotonic() - self._started
            if ran_s >= self._healthy_after_s:
                self._backoff_s = self._first_backoff_s
            delay = self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, self._max_backoff_s)
            log.error(
                "the ledger shipper (pid %d) %s after %.1f s; restarting it in %.1f s (restart %d)",
                process.pid,
                _describe_exit(process.returncode),
                ran_s,
                delay,
                self.restarts + 1,
            )
            self.process = None
            await asyncio.sleep(delay)
            try:
                self.process = await asyncio.to_thread(self._spawn)
            except OSError as exc:  # retried after the next backoff
                log.error("the ledger shipper could not be started: %s", exc)
                self.process = process  # still exited: the next poll retries
                continue
            self._started = time.monotonic()
            self.restarts += 1
            log.info("the ledger shipper runs again (pid %d)", self.process.pid)


@dataclass(frozen=True)
class JournalLag:
    """How far behind shipping is, for one measurement."""

    bytes: int
    seconds: float


class LedgerHealth:
    """Supervision, lag and stall tracking of one server's ledger. See the module docstring."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        journal: Journal | None = None,
        supervisor: ShipperSupervisor | None = None,
        max_lag_s: float = 30.0,
        commit_timeout_s: float = 2.0,
        poll_s: float = 1.0,
        recover_wait_s: float = 10.0,
    ) -> None:
        self.store = store
        self.journal = journal
        self.supervisor = supervisor
        self.max_lag_s = max_lag_s
        self.commit_timeout_s = commit_timeout_s
        self.poll_s = poll_s
        self.recover_wait_s = recover_wait_s
        self.lag = JournalLag(0, 0.0)
        self.recovered_rows = 0  # decisions re-journaled from deleted segments
        self.unrecovered_rows = 0  # decisions of deleted segments that could not be recovered
        self.commit_timeouts = 0  # requests answered 503 because their commit took too long
        self._commits: dict[asyncio.Future[Any], float] = {}  # in flight -> monotonic start
        self._first_unshipped: tuple[str, int, float] | None = None  # key, offset, wall time
        self._measured_at = time.monotonic()
        self._store_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.supervisor is not None:
            self._tasks.append(loop.create_task(self.supervisor.run()))
        if self.journal is not None:
            self._tasks.append(loop.create_task(self._monitor()))

    async def stop(self) -> subprocess.Popen[bytes] | None:
        """Stop watching; returns the current shipper process (the caller stops it)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        return None if self.supervisor is None else self.supervisor.process

    # -- acknowledge: commit ------------------------------------------------------------------
    def track_commit(self, commit: asyncio.Future[Any]) -> None:
        """Count ``commit`` in flight until it finishes (its requests may have had a 503)."""
        self._commits[commit] = time.monotonic()
        commit.add_done_callback(self._commit_done)

    def _commit_done(self, commit: asyncio.Future[Any]) -> None:
        del self._commits[commit]
        if not commit.cancelled():
            commit.exception()  # retrieved: a late failure was already answered (503)

    def _stalled_commit_s(self) -> float:
        if not self._commits:
            return 0.0
        return time.monotonic() - min(self._commits.values())

    # -- readiness ----------------------------------------------------------------------------
    def unready_reason(self) -> str | None:
        journal = self.journal
        if journal is not None:
            if journal.orphans:
                return (
                    f"the decision journal was deleted under the server; re-journaling its "
                    f"unshipped decisions into {journal.directory} (check what removes files "
                    f"under {journal.root})"
                )
            if not journal.writable and not journal.closed:
                return f"no decision journal can be opened under {journal.root}"
        stalled = self._stalled_commit_s()
        if stalled > self.commit_timeout_s:
            return (
                f"a ledger commit has been waiting {stalled:.1f} s, longer than "
                f"ledger.commit_timeout_ms={self.commit_timeout_s * 1000:.0f}; check that the "
                f"ledger database {self.store.url} is reachable and not locked"
            )
        if journal is None:
            return None
        unmeasured = time.monotonic() - self._measured_at
        if self._store_error is not None and unmeasured > self.max_lag_s:
            return (
                f"the shipped journal offsets could not be read from the ledger for "
                f"{unmeasured:.0f} s (ledger.max_lag_s={self.max_lag_s:g}): {self._store_error}"
            )
        if self.lag.seconds > self.max_lag_s:
            if self.supervisor is None:
                shipper = "is `fraudgate ledger ship` running on this journal (ledger.shipper: "
                shipper += "external)?"
            elif self.supervisor.up:
                shipper = "the child shipper runs"
            else:
                shipper = "the child shipper is not running (being restarted)"
            return (
                f"the decision journal is {self.lag.seconds:.1f} s behind "
                f"(ledger.max_lag_s={self.max_lag_s:g}): {self.lag.bytes} bytes not shipped "
                f"into the ledger; {shipper}"
            )
        return None

    # -- the background task ------------------------------------------------------------------
    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.check()
            except Exception:  # a bug must not end the monitoring
                log.exception("checking the decision journal failed")

    async def check(self) -> None:
        """One round: deleted journal, recovery, lag. Runs on the event loop (I/O in threads)."""
        journal = self.journal
        assert journal is not None
        if not journal.closed:
            journal.reopen()  # if a deletion left it without a journal
            journal.check_unlinked()  # no append may come to notice a deletion
        if journal.orphans:
            await self._recover()
        key, size = journal.position()
        sealed = dict(journal.sealed)
        try:
            lag, shipped_sealed = await asyncio.to_thread(self._measure, key, size, sealed)
        except Exception as exc:  # the database is down: the lag cannot be measured
            self._store_error = str(exc)
            log.warning("reading the shipped journal offsets failed: %s", exc)
            return
        for done in shipped_sealed:
            journal.sealed.pop(done, None)
        self.lag, self._store_error, self._measured_at = lag, None, time.monotonic()

    def _measure(self, key: str, size: int, sealed: dict[str, int]) -> tuple[JournalLag, list[str]]:
        """Blocking (a thread): bytes behind and the age of the oldest unshipped decision."""
        journal = self.journal
        assert journal is not None
        instance = key.partition("/")[0]
        offsets = self.store.journal_offsets(prefix=f"{instance}/")
        behind = 0
        oldest: tuple[str, int] | None = None
        shipped_sealed = []
        for segment, written in [*sorted(sealed.items()), (key, size)]:
            done = offsets.get(segment, 0)
            if segment != key and (done >= written or not (journal.root / segment).exists()):
                shipped_sealed.append(segment)  # shipped (and deleted by the shipper)
                continue
            if done < written:
                behind += written - done
                if oldest is None:
                    oldest = (segment, done)
        if oldest is None:
            self._first_unshipped = None
            return JournalLag(0, 0.0), shipped_sealed
        now = time.time()
        previous = self._first_unshipped
        if previous is None or previous[:2] != oldest:
            self._first_unshipped = previous = (*oldest, now)
        decided_at = self._decided_at(*oldest)
        seconds = now - (decided_at if decided_at is not None else previous[2])
        return JournalLag(behind, max(0.0, seconds)), shipped_sealed

    def _decided_at(self, segment: str, offset: int) -> float | None:
        """The ``decided_at`` of the journal line at ``offset`` (None if unreadable)."""
        assert self.journal is not None
        try:
            head = self.journal.read_at(segment, offset, _LINE_PEEK_BYTES)
        except OSError:
            return None
        end = head.find(b"\n")
        match = _DECIDED_AT.search(head, 0, end if end >= 0 else len(head))
        if match is None:
            return None
        try:
            return float(match.group(1))
        except ValueError:
            return None

    async def _recover(self) -> None:
        """Re-journal the acknowledged, unshipped tails of deleted segments, exactly once."""
        from fraudgate.ledger.journal import JournalWriteError, close_orphan, recover_orphan

        journal = self.journal
        assert journal is not None
        for orphan in list(journal.orphans):
            try:
                tail = await asyncio.to_thread(
                    recover_orphan, self.store, orphan, wait_s=self.recover_wait_s
                )
            except Exception as exc:  # the database is down: retried at the next round
                log.warning("recovering the deleted journal segment %s: %s", orphan.key, exc)
                return
            if not tail.exclusive:
                self.unrecovered_rows += tail.rows
                log.error(
                    "%d acknowledged decisions of the deleted journal segment %s could not be "
                    "recovered: a shipper still holds its lock after %.0f s",
                    tail.rows,
                    orphan.key,
                    self.recover_wait_s,
                )
            elif tail.data:
                try:
                    journal.append_raw(tail.data)
                except JournalWriteError as exc:  # the orphan keeps the tail: next round
                    log.warning("re-journaling %s failed (retrying): %s", orphan.key, exc)
                    return
                self.recovered_rows += tail.rows
                log.warning(
                    "re-journaled %d acknowledged decisions (%d bytes) of the deleted journal "
                    "segment %s into %s",
                    tail.rows,
                    len(tail.data),
                    orphan.key,
                    journal.directory,
                )
            if tail.exclusive:
                with contextlib.suppress(Exception):  # a stale offset row is harmless
                    await asyncio.to_thread(self.store.forget_journal_segment, orphan.key)
            journal.orphans.remove(orphan)
            close_orphan(orphan)

    # -- metrics ------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.supervisor is not None:
            yield GaugeMetricFamily(
                "fraudgate_ledger_shipper_up",
                "1 while the child ledger shipper process runs (ledger.shipper: child).",
                value=1 if self.supervisor.up else 0,
            )
            yield CounterMetricFamily(
                "fraudgate_ledger_shipper_restarts",
                "Times the server restarted its child ledger shipper after it exited.",
                value=self.supervisor.restarts,
            )
        journal = self.journal
        if journal is not None:
            yield GaugeMetricFamily(
                "fraudgate_ledger_journal_lag_seconds",
                "Age of the oldest journaled decision not yet shipped into the ledger (0: none).",
                value=self.lag.seconds,
            )
            yield GaugeMetricFamily(
                "fraudgate_ledger_journal_lag_bytes",
                "Bytes of this server's journal not yet shipped into the ledger.",
                value=self.lag.bytes,
            )
            yield CounterMetricFamily(
                "fraudgate_ledger_journal_lost",
                "Times this server's journal file was found deleted (its appends answered 503).",
                value=journal.lost,
            )
            decisions = CounterMetricFamily(
                "fraudgate_ledger_journal_orphaned_decisions",
                "Acknowledged, unshipped decisions of deleted journal segments: re-journaled "
                "(recovered) or lost (unrecovered).",
                labels=["outcome"],
            )
            decisions.add_metric(["recovered"], self.recovered_rows)
            decisions.add_metric(["unrecovered"], self.unrecovered_rows)
            yield decisions
        else:
            yield CounterMetricFamily(
                "fraudgate_ledger_commit_timeouts",
                "Requests answered 503 because their ledger commit exceeded "
                "ledger.commit_timeout_ms (acknowledge: commit).",
                value=self.commit_timeouts,
            )
