"""Batching: concurrent requests become one model call; big ones bypass or are offloaded."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from fraudgate.serving.batching import Batcher


def _slow(x: np.ndarray) -> np.ndarray:
    time.sleep(0.002)  # an expensive model call (e.g. the MLflow pyfunc path)
    return x.sum(axis=1)


@pytest.mark.parametrize("model", [_slow, lambda x: x.sum(axis=1)], ids=["slow", "cheap"])
def test_concurrent_calls_are_coalesced_into_one_predict(model):
    sizes: list[int] = []
    batcher = Batcher(model, max_batch_size=64, max_wait_ms=5.0, on_batch=sizes.append)

    async def run():
        await batcher.predict(np.ones((1, 3), dtype=np.float32))  # alone: a batch of one
        xs = [np.full((1, 3), i, dtype=np.float32) for i in range(20)]
        return xs, await asyncio.gather(*(batcher.predict(x) for x in xs))

    xs, outs = asyncio.run(run())
    for x, out in zip(xs, outs, strict=True):
        assert np.array_equal(out, x.sum(axis=1))
    assert sizes[0] == 1 and sum(sizes[1:]) == 20 and len(sizes) <= 3


def test_max_batch_size_flushes_immediately_and_large_requests_bypass():
    sizes: list[int] = []
    batcher = Batcher(_slow, max_batch_size=4, max_wait_ms=1000.0, on_batch=sizes.append)

    async def run():
        await batcher.predict(np.ones((1, 3), dtype=np.float32))
        await asyncio.gather(
            *(batcher.predict(np.ones((1, 3), dtype=np.float32)) for _ in range(8))
        )
        await batcher.predict(np.ones((10, 3), dtype=np.float32))

    asyncio.run(asyncio.wait_for(run(), timeout=5))
    assert sizes == [1, 4, 4, 10]


def test_huge_batches_are_offloaded():
    batcher = Batcher(lambda x: x[:, 0], max_batch_size=32, max_wait_ms=1.0, offload_rows=100)

    async def run():
        small = await batcher.predict(np.ones((2, 3), dtype=np.float32))
        huge = await batcher.predict(np.ones((500, 3), dtype=np.float32))
        return small, huge

    small, huge = asyncio.run(run())
    assert small.shape == (2,) and huge.shape == (500,) and batcher.calls == 2
    batcher.close()


def test_a_failing_model_call_fails_every_waiting_request():
    def broken(x):
        time.sleep(0.001)
        raise RuntimeError("boom")

    batcher = Batcher(broken, max_batch_size=8, max_wait_ms=5.0)

    async def run():
        return await asyncio.gather(
            *(batcher.predict(np.ones((1, 3), dtype=np.float32)) for _ in range(3)),
            return_exceptions=True,
        )

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError):
        asyncio.run(batcher.predict(np.ones((9, 3), dtype=np.float32)))
