"""The evaluation behind the dashboard: computed in a worker thread, at most once per ``ttl_s``.

`evaluate(config, store, as_of)` reads the ledger's counts and runs the statistics: tens of
milliseconds to seconds, depending on the ledger. The page polls every few seconds and any number
of people may have it open, so `DashboardSource.snapshot` bounds the cost whatever the polling
rate: a snapshot younger than ``ttl_s`` is answered as it is; else one computation runs off the
event loop (``asyncio.to_thread``) and every caller arriving meanwhile awaits that same one. A
failure (ledger unreachable, an experiment without a challenger) is a snapshot too, carrying the
message, so a broken ledger is not hammered either. An admin action through this server (a weight
change) drops the snapshot (`invalidate`), so the page shows its effect on the next refresh.

The monitoring's panels (`panels`: the label-free estimate and drift) are not cached here: their
sources read what the server's monitor last computed (microseconds), on the event loop where
the monitor updates it, so the page shows the same figures as ``/metrics`` at that moment.

``fraudgate.evaluation`` (and the statistics under it: scipy) is imported on the first
computation, never when the server starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fraudgate.config.schema import FraudgateConfig
from fraudgate.ui.view import DriftPanel, EvaluationSnapshot, PerformanceEstimate

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 5.0
NO_LEDGER = (
    "no ledger is configured, so there is nothing to evaluate: add a `ledger:` section to the "
    "config (decisions and labels are recorded there)"
)

EstimateSource = Callable[[], PerformanceEstimate | None]
DriftSource = Callable[[], DriftPanel | None]


@dataclass(frozen=True, slots=True)
class MonitoringPanels:
    """The monitoring's panels as read now (None: no source, or it failed)."""

    estimated: PerformanceEstimate | None
    drift: DriftPanel | None


class DashboardSource:
    """Cached evaluation snapshots of one server's experiment. See the module docstring.

    ``estimate`` and ``drift`` (optional) fill the label-free estimate and drift panels; they
    are read by `panels` on every request, on the event loop (not cached, not in a thread).
    """

    def __init__(
        self,
        config: FraudgateConfig,
        store: Any,  # fraudgate.ledger.LedgerStore | None
        *,
        ttl_s: float = DEFAULT_TTL_S,
        estimate: EstimateSource | None = None,
        drift: DriftSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s: expected a positive number of seconds, received {ttl_s!r}")
        self.config = config
        self.store = store
        self.ttl_s = ttl_s
        self.estimate = estimate
        self.drift = drift
        self._clock = clock
        self._snapshot: EvaluationSnapshot | None = None
        self._taken_at = 0.0  # monotonic time of the snapshot's computation
        self._pending: asyncio.Future[EvaluationSnapshot] | None = None
        self._epoch = 0  # bumped by `invalidate`: a computation started before is not kept
        self.computations = 0  # how many evaluations ran (the cache's effect, for tests)

    async def snapshot(self) -> EvaluationSnapshot:
        """A snapshot at most ``ttl_s`` old (see the module docstring)."""
        current = self._snapshot
        if current is not None and self._clock() - self._taken_at < self.ttl_s:
            return current
        if self._pending is None:
            started, epoch = self._clock(), self._epoch
            pending = asyncio.ensure_future(asyncio.to_thread(self.compute))
            pending.add_done_callback(lambda done: self._keep(done, started, epoch))
            self._pending = pending
        return await asyncio.shield(self._pending)

    def invalidate(self) -> None:
        """Forget the snapshot, and any computation under way: the next read computes a new
        one (after an admin action here, so the page shows its effect at once)."""
        self._epoch += 1
        self._snapshot = None
        self._pending = None

    def _keep(self, done: asyncio.Future[EvaluationSnapshot], started: float, epoch: int) -> None:
        if self._pending is done:
            self._pending = None
        if epoch == self._epoch and not done.cancelled() and done.exception() is None:
            self._snapshot, self._taken_at = done.result(), started

    def panels(self) -> MonitoringPanels:
        """The monitoring's panels now (on the event loop; see the module docstring)."""
        return MonitoringPanels(
            _optional(self.estimate, "performance estimate"), _optional(self.drift, "drift")
        )

    def compute(self) -> EvaluationSnapshot:
        """Blocking (a worker thread): evaluate now and read the weight history."""
        self.computations += 1
        if self.store is not None:  # the first time: the statistics' import, not timed below
            from fraudgate.evaluation import evaluate
        start = time.perf_counter()
        at = time.time()
        evaluation, error, history = None, None, ()
        if self.store is None:
            error = NO_LEDGER
        else:
            try:
                evaluation = evaluate(self.config, self.store, at)
            except Exception as exc:  # shown on the page; the server keeps serving
                error = f"the evaluation failed: {type(exc).__name__}: {exc}"
            spec = self.config.experiment_spec
            if spec is not None:
                try:
                    history = tuple(self.store.weight_history(spec.name))
                except Exception as exc:
                    error = error or f"the weight history could not be read: {exc}"
        return EvaluationSnapshot(
            evaluation=evaluation,
            error=error,
            history=history,
            computed_at=at,
            computed_in_s=time.perf_counter() - start,
        )


def _optional(source: Callable[[], Any] | None, what: str) -> Any:
    """An optional panel's data; None (the page says "not available") if it has none or fails."""
    if source is None:
        return None
    try:
        return source()
    except Exception:
        log.exception("the dashboard's %s failed", what)
        return None
