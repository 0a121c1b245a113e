"""The scheduler: concurrent requests become one runtime call per model and tick, bounded by
``max_batch_size``; big ones are a call on their own or scored off the event loop.

Each test serves a `DeployedModel` (the data plane's) whose runtime is a plain function of the
features, through the scheduler plain serving uses (nothing to route, nothing to record).
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from fraudgate.config import BatchingConfig, ModelConfig
from fraudgate.serving.dataplane import DeployedModel, LoadedRuntime
from fraudgate.serving.metrics import ServerMetrics
from fraudgate.serving.recording import NoRecorder
from fraudgate.serving.scheduler import OFFLOAD_ROWS, Scheduler, Tasks


class FunctionRuntime:
    """A runtime scoring ``fn(x)``; remembers each call's rows and thread."""

    name = "function"

    def __init__(self, fn, delay_s: float = 0.0) -> None:
        self.fn, self.delay_s = fn, delay_s
        self.sizes: list[int] = []
        self.threads: list[str] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)  # an expensive model call (e.g. the MLflow pyfunc path)
        self.sizes.append(x.shape[0])
        self.threads.append(threading.current_thread().name)
        return self.fn(x)


def _model(runtime: FunctionRuntime, max_batch_size: int, max_wait_ms: float) -> DeployedModel:
    config = ModelConfig(
        name="m",
        uri="models:/m/1",
        threshold=0.5,
        batching=BatchingConfig(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms),
    )
    loaded = LoadedRuntime(SimpleNamespace(uri=config.uri, threshold=0.5), runtime)
    return DeployedModel(config, 1, loaded, ServerMetrics())


def _score(scheduler: Scheduler, model: DeployedModel, x: np.ndarray):
    return scheduler.submit(model, x, None, None, None, None, time.perf_counter())


def _rows(n: int, value: float = 1.0) -> np.ndarray:
    return np.full((n, 3), value, dtype=np.float32)


def _scheduler() -> Scheduler:
    return Scheduler(NoRecorder(), None, Tasks())


@pytest.mark.parametrize("delay_s", [0.002, 0.0], ids=["slow", "cheap"])
def test_concurrent_calls_are_coalesced_into_one_call(delay_s):
    runtime = FunctionRuntime(lambda x: x.sum(axis=1) / 100, delay_s)
    model, scheduler = _model(runtime, 64, 5.0), _scheduler()

    async def run():
        await _score(scheduler, model, _rows(1))  # alone: a batch of one
        xs = [_rows(1, i) for i in range(20)]
        return xs, await asyncio.gather(*(_score(scheduler, model, x) for x in xs))

    xs, answers = asyncio.run(run())
    for x, answer in zip(xs, answers, strict=True):
        expected = (x.sum(axis=1) / 100).astype(np.float32)  # the answer's rows, flattened
        assert np.array_equal(answer.scores.reshape(-1), expected)
        assert np.array_equal(answer.decisions.reshape(-1), expected >= np.float32(0.5))
    assert runtime.sizes[0] == 1 and sum(runtime.sizes[1:]) == 20 and len(runtime.sizes) <= 3
    assert model.metrics.batch_size.count == len(runtime.sizes)


def test_max_batch_size_flushes_immediately_and_large_requests_are_a_call_alone():
    runtime = FunctionRuntime(lambda x: x[:, 0], 0.002)
    model, scheduler = _model(runtime, 4, 1000.0), _scheduler()

    async def run():
        await _score(scheduler, model, _rows(1))
        await asyncio.gather(*(_score(scheduler, model, _rows(1)) for _ in range(8)))
        await _score(scheduler, model, _rows(10))
        # a group is pending when a large request arrives: it goes alone, the group stays
        small = [_score(scheduler, model, _rows(1)) for _ in range(2)]
        large = await _score(scheduler, model, _rows(6))
        return large, await asyncio.gather(*small)

    large, small = asyncio.run(asyncio.wait_for(run(), timeout=5))
    assert runtime.sizes == [1, 4, 4, 10, 6, 2]
    assert large.scores.shape == (6, 1) and [s.scores.size for s in small] == [1, 1]


def test_multi_row_requests_get_their_own_rows():
    runtime = FunctionRuntime(lambda x: x[:, 0] / 10, 0.0)
    model, scheduler = _model(runtime, 32, 5.0), _scheduler()
    xs = [_rows(n, n) for n in (1, 3, 2)]

    async def run():
        return await asyncio.gather(*(_score(scheduler, model, x) for x in xs))

    answers = asyncio.run(run())
    assert runtime.sizes == [6]
    for x, answer in zip(xs, answers, strict=True):
        assert np.array_equal(answer.scores[:, 0], (x[:, 0] / 10).astype(np.float32))


def test_huge_batches_are_scored_off_the_event_loop():
    runtime = FunctionRuntime(lambda x: x[:, 0], 0.0)
    model, scheduler = _model(runtime, 32, 1.0), _scheduler()

    async def run():
        small = await _score(scheduler, model, _rows(2))
        huge = await _score(scheduler, model, _rows(OFFLOAD_ROWS + 1))
        return small, huge

    small, huge = asyncio.run(run())
    assert small.scores.shape == (2, 1) and huge.scores.shape == (OFFLOAD_ROWS + 1, 1)
    assert runtime.sizes == [2, OFFLOAD_ROWS + 1]
    assert runtime.threads[0] == "MainThread"
    assert runtime.threads[1].startswith("fraudgate-large-batch")
    model.close()


def test_a_failing_model_call_fails_every_waiting_request():
    def broken(x):
        time.sleep(0.001)
        raise RuntimeError("boom")

    model, scheduler = _model(FunctionRuntime(broken), 8, 5.0), _scheduler()

    async def run():
        return await asyncio.gather(
            *(_score(scheduler, model, _rows(1)) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) for r in results)

    async def alone():
        return await _score(scheduler, model, _rows(9))

    with pytest.raises(RuntimeError):
        asyncio.run(alone())
    assert not scheduler.pending
