"""`batching.max_batch_size` bounds every runtime call, whatever the config serves.

Regression: with an experiment or a ledger configured, the experiment's tick used to score all the
requests of a tick in one runtime call per model, ignoring ``max_batch_size`` (ten concurrent
requests with ``max_batch_size: 2`` gave one call of 10 rows instead of five of 2). The data plane
runs in-process here, with the models of a real MLflow registry on their real (native) runtime;
the runtime calls are read from the model's ``fraudgate_batch_size`` histogram.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml

from fraudgate.config import load_config, write_default_config
from fraudgate.protocol.rest_codec import parse_infer_request
from fraudgate.serving.dataplane import DataPlane
from fraudgate.serving.experiment import ExperimentPlane
from fraudgate.serving.metrics import BATCH_BUCKETS, ServerMetrics
from fraudgate.serving.server import registry_loader

pytestmark = pytest.mark.slow

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
MAX_BATCH_SIZE = 2
CONCURRENT = 10


def _config(root: Path, tracking_uri: str, mode: str) -> Path:
    path = write_default_config(root / "fraudgate.yaml", tracking_uri, experiment=mode != "plain")
    data = yaml.safe_load(path.read_text())
    for model in data["models"]:
        model["runtime"] = "native"
        model["batching"] = {"max_batch_size": MAX_BATCH_SIZE, "max_wait_ms": 1000.0}
    if mode == "experiment":
        del data["ledger"]
    elif mode in ("journal", "commit"):
        data["ledger"]["acknowledge"] = mode
        data["ledger"]["journal_dir"] = str(root / "journal")
        data["ledger"]["shipper"] = "external"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _body(row: np.ndarray, card: int) -> bytes:
    tensor = {"name": "fraud_features", "shape": [1, 30], "datatype": "FP32"}
    tensor["data"] = [float(v) for v in row]
    return orjson.dumps({"inputs": [tensor], "parameters": {"card_id": f"card-{card}"}})


def _calls(metrics: ServerMetrics, name: str) -> list[int]:
    """Runtime calls of ``name`` by size bucket: (bucket bound, calls) of the non-empty ones."""
    histogram = metrics.models[(name, "1")].batch_size
    bounds = (*BATCH_BUCKETS, float("inf"))
    return [b for b, count in zip(bounds, histogram.counts, strict=True) for _ in range(count)]


async def _serve(config_path: Path, model: str, sample: np.ndarray) -> tuple[ServerMetrics, list]:
    config = load_config(config_path)
    plane = ExperimentPlane.from_config(config)
    metrics = ServerMetrics()
    dataplane = DataPlane(config, registry_loader(config), metrics, plane)
    try:
        assert await dataplane.start() == []
        if plane is not None:
            await asyncio.to_thread(plane.start)

        async def one(i: int):  # the transport's call: decode lazily, as REST does
            body = _body(sample[i], i)
            return await dataplane.infer(model, None, lambda: parse_infer_request(body), "rest")

        responses = await asyncio.gather(*(one(i) for i in range(CONCURRENT)))
    finally:
        if plane is not None:
            await plane.aclose()
        dataplane.close()
    return metrics, [response for _, response in responses]


@pytest.mark.parametrize("mode", ["plain", "experiment", "journal", "commit"])
def test_max_batch_size_bounds_runtime_calls_in_every_mode(tmp_path, trained_registry, mode):
    config = _config(tmp_path, trained_registry.tracking_uri, mode)
    sample = trained_registry.sample
    # a candidate addressed by name is not routed: all ten requests go to one model
    metrics, responses = asyncio.run(_serve(config, V2, sample))
    assert _calls(metrics, V2) == [MAX_BATCH_SIZE] * (CONCURRENT // MAX_BATCH_SIZE)
    expected = trained_registry.challenger.predict(sample[:CONCURRENT], num_threads=1)
    scores = [float(r.outputs[0].data.reshape(-1)[0]) for r in responses]
    assert np.allclose(scores, expected.astype(np.float32), atol=1e-6)


@pytest.mark.parametrize("mode", ["experiment", "journal", "commit"])
def test_max_batch_size_bounds_routed_requests(tmp_path, trained_registry, mode):
    config = _config(tmp_path, trained_registry.tracking_uri, mode)
    # routed by card between both arms (and mirrored to the other one)
    metrics, responses = asyncio.run(_serve(config, V1, trained_registry.sample))
    calls = _calls(metrics, V1) + _calls(metrics, V2)
    assert calls and all(size <= MAX_BATCH_SIZE for size in calls)
    served = {r.model_name for r in responses}
    assert served <= {V1, V2} and len(responses) == CONCURRENT
