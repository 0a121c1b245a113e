"""Mirror copies: the requests the router mirrors are scored by a second model, off the answer.

Two ways, by ``ledger.acknowledge``:

* `JournaledMirror` (``acknowledge: journal``): a scored group's copies are not scored here; their
  features go into the journal with the group's served decisions
  (`fraudgate.ledger.mirror.mirror_entry`), and the shipper scores them in its own process. The
  serving process spends no CPU on them.
* `ShadowScorer` (no journal: no ledger, or ``acknowledge: commit``): the copies of a flush are
  scored here, in one more event-loop callback queued behind the answered requests (so they never
  add to the callers' latency), in runtime calls of at most the mirror model's
  ``max_batch_size`` rows, and their mirror decisions are recorded best effort
  (`fraudgate.ledger.mirror.mirror_decisions`, the shipper's implementation too). The queue is
  bounded: beyond ``max_pending_mirror_rows`` rows waiting, copies are dropped and counted, never
  a served request.

A copy whose mirror model is not loaded (unloaded, not ready) is dropped and counted as failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudgate.serving.recording import request_columns
from fraudgate.serving.scheduler import OFFLOAD_ROWS, Flushed, Queued, Tasks

if TYPE_CHECKING:
    from fraudgate.ledger.records import MirrorEntry, MirrorModel

log = logging.getLogger(__name__)

MAX_PENDING_MIRROR_ROWS = 50_000


@dataclass(slots=True)
class MirrorCounts:
    """Mirrored rows by outcome, for the metrics: journaled (for the shipper to score), scored in
    shadow (by this server), dropped (queue full or not recordable), failed."""

    journaled: int = 0
    scored: int = 0
    dropped: int = 0
    failed: int = 0


def _mirror_of(item: Queued) -> str | None:
    route = item.route
    return None if route is None else route.mirror


class JournaledMirror:
    """``acknowledge: journal``: the copies ride in the served batch, for the shipper."""

    def __init__(
        self, resolve: Callable[[str], Any], counts: MirrorCounts, tracking_uri: str
    ) -> None:
        from fraudgate.ledger.mirror import mirror_entry, model_spec

        self._resolve = resolve  # the data plane's resolve(name) -> DeployedModel
        self.counts = counts
        self._tracking_uri = tracking_uri  # named in the journaled copies
        self._specs: dict[tuple[str, str], MirrorModel] = {}  # mirror models' specs
        self._mirror_entry = mirror_entry
        self._model_spec = model_spec

    def copy(
        self, items: list[Queued], x: np.ndarray, one_row: bool, flushed: Flushed
    ) -> list[Any] | None:
        """The mirror entries of a scored group (None: nothing mirrored)."""
        copies: dict[str, list[int] | None] = {}  # mirror model -> rows of x (None: every row)
        if one_row:
            mirrors = [None if item.route is None else item.route.mirror for item in items]
            first = mirrors[0]
            if first is not None and mirrors.count(first) == len(mirrors):
                copies[first] = None  # every row to one model (a 100% mirror)
            else:
                for row, name in enumerate(mirrors):
                    if name is not None:
                        copies.setdefault(name, []).append(row)  # type: ignore[union-attr]
        else:
            offset = 0
            for item in items:
                n = item.x.shape[0]
                name = _mirror_of(item)
                if name is not None:
                    copies.setdefault(name, []).extend(range(offset, offset + n))  # type: ignore[union-attr]
                offset += n
        if not copies:
            return None
        entries: list[MirrorEntry] = []
        for name, rows in copies.items():
            n = x.shape[0] if rows is None else len(rows)
            try:
                model = self._resolve(name)
            except Exception as exc:  # mirror model unloaded / not ready: drop the copies
                self.counts.failed += n
                log.debug("mirror %s unavailable: %s", name, exc)
                continue
            key = (model.name, model.version)
            spec = self._specs.get(key)
            if spec is None:
                spec = self._specs[key] = self._model_spec(model, self._tracking_uri)
            if rows is None or n == x.shape[0]:
                entries.append(self._mirror_entry(spec, None, x))
            else:
                entries.append(self._mirror_entry(spec, rows, x[rows]))
            flushed.journaled += n
        return entries

    def queue(self, items: list[Queued]) -> None:  # pragma: no cover - copies are journaled
        raise AssertionError("journaled copies are never queued")

    @property
    def pending(self) -> bool:
        return False


class ShadowScorer:
    """No journal: the copies are scored in this process after the answers (see the module)."""

    def __init__(
        self,
        resolve: Callable[[str], Any],
        recorder: Any,  # a fraudgate.serving.recording recorder
        counts: MirrorCounts,
        tasks: Tasks,
        max_pending_rows: int = MAX_PENDING_MIRROR_ROWS,
    ) -> None:
        self._resolve = resolve
        self._recorder = recorder
        self.counts = counts
        self._tasks = tasks
        self.max_pending_rows = max_pending_rows
        self._pending_rows = 0  # mirror rows waiting to be scored
        self._decisions: Any = None  # mirror_decisions, when the decisions are recorded
        if recorder.records:
            from fraudgate.ledger.mirror import CopiedColumns, MirrorTarget, mirror_decisions

            self._decisions = mirror_decisions
            self._target = MirrorTarget
            self._copied = CopiedColumns

    @property
    def pending(self) -> bool:
        return self._pending_rows > 0

    def copy(
        self, items: list[Queued], x: np.ndarray, one_row: bool, flushed: Flushed
    ) -> list[Any] | None:
        """Keep a scored group's mirrored requests for `queue` (after the answers)."""
        flushed.mirrored.extend(item for item in items if _mirror_of(item) is not None)
        return None

    def queue(self, items: list[Queued]) -> None:
        rows = sum(item.x.shape[0] for item in items)
        if self._pending_rows + rows > self.max_pending_rows:
            self.counts.dropped += rows
            return
        self._pending_rows += rows
        # Scheduled after the answered requests' wake-ups, whose steps write their responses
        # without yielding: the copies are scored once the callers have their answers.
        asyncio.get_running_loop().call_soon(self._score, items, rows)

    def _score(self, items: list[Queued], rows: int) -> None:
        self._pending_rows -= rows
        by_mirror: dict[str, list[Queued]] = {}
        for item in items:
            by_mirror.setdefault(item.route.mirror, []).append(item)  # type: ignore[union-attr,arg-type]
        for name, group in by_mirror.items():
            try:
                model = self._resolve(name)
            except Exception as exc:  # mirror model unloaded / not ready: drop the copies
                self.counts.failed += sum(item.x.shape[0] for item in group)
                log.debug("mirror %s unavailable: %s", name, exc)
                continue
            for call in _calls(group, model.max_batch_size):
                x = call[0].x if len(call) == 1 else np.concatenate([item.x for item in call])
                if x.shape[0] > OFFLOAD_ROWS:
                    self._tasks.spawn(self._score_offloaded(model, call, x))
                    continue
                try:
                    self._scored(model, call, x, self._score_now(model, call, x))
                except Exception as exc:
                    self.counts.failed += x.shape[0]
                    log.warning("mirror scoring on %s failed: %s", name, exc)

    async def _score_offloaded(self, model: Any, items: list[Queued], x: np.ndarray) -> None:
        try:
            batch = await model.offload(self._score_now, model, items, x)
        except Exception as exc:
            self.counts.failed += x.shape[0]
            log.warning("mirror scoring on %s failed: %s", model.name, exc)
            return
        self._scored(model, items, x, batch)

    def _score_now(self, model: Any, items: list[Queued], x: np.ndarray) -> Any:
        """Score the copies; their mirror decisions when they are recorded, else None."""
        if self._decisions is None:
            model.call(x)
            return None
        target = self._target(model.name, model.version, model.threshold)
        return self._decisions(model.call, x, target, self._copied_columns(items, x.shape[0]))

    def _copied_columns(self, items: list[Queued], n: int) -> Any:
        request_ids, transactions, amounts, routes, _, events = request_columns(items, n)
        return self._copied(
            request_id=request_ids,
            transaction_id=transactions,
            experiment=routes[0].experiment,  # one experiment per server
            arm=[route.model for route in routes],  # the arm that served each request
            amount=amounts,
            routing_key_hash=[route.key_hash for route in routes],
            event_time=None if events.count(None) == n else events,
        )

    def _scored(self, model: Any, items: list[Queued], x: np.ndarray, batch: Any) -> None:
        n = x.shape[0]
        self.counts.scored += n
        if batch is None:
            return
        if self._recorder.record_mirror(batch):
            self._recorder.counts.mirror += n
        else:
            self.counts.dropped += n


def _calls(items: list[Queued], max_batch_size: int) -> Iterator[list[Queued]]:
    """``items`` in runtime calls of at most ``max_batch_size`` rows (a request of more rows
    is a call on its own)."""
    call: list[Queued] = []
    rows = 0
    for item in items:
        n = item.x.shape[0]
        if call and rows + n > max_batch_size:
            yield call
            call, rows = [], 0
        call.append(item)
        rows += n
    if call:
        yield call
