"""fraudgate.client against real server processes (no mocks): REST and gRPC, sync and async."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import orjson
import pytest

from fraudgate.client import (
    AsyncFraudgateClient,
    ConnectionFailed,
    FraudDetectionClient,
    FraudgateClient,
    InvalidInput,
    ModelNotFound,
    PayloadTooLarge,
    ScoreResult,
)

pytestmark = pytest.mark.slow

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
PROTOCOLS = ["rest", "grpc"]


def expected(booster, x: np.ndarray) -> np.ndarray:
    return booster.predict(x, num_threads=1).astype(np.float32)


def client_for(server, protocol: str, **kwargs) -> FraudgateClient:
    return FraudgateClient(
        server.http_url, protocol=protocol, grpc_address=server.grpc_address, **kwargs
    )


def async_client_for(server, protocol: str, **kwargs) -> AsyncFraudgateClient:
    return AsyncFraudgateClient(
        server.http_url, protocol=protocol, grpc_address=server.grpc_address, **kwargs
    )


# -- scoring ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [V1, V2])
def test_rest_and_grpc_score_identically(server, trained_registry, model):
    x = trained_registry.sample[:16]
    booster = trained_registry.champion if model == V1 else trained_registry.challenger
    threshold = np.float32(trained_registry.thresholds[model])
    results = {}
    for protocol in PROTOCOLS:
        with client_for(server, protocol) as client:
            result = client.score(x, model=model, request_id=f"batch-{protocol}")
        assert isinstance(result, ScoreResult)
        assert result.model_name == model and result.model_version == "1"
        assert result.request_id == f"batch-{protocol}"
        assert isinstance(result.probability, np.ndarray) and result.probability.shape == (16,)
        assert result.probability.dtype == np.float32
        assert np.array_equal(result.is_fraud, result.probability >= threshold)
        results[protocol] = result.probability
    assert np.array_equal(results["rest"], results["grpc"])
    np.testing.assert_allclose(results["rest"], expected(booster, x), atol=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_single_row_gives_scalars(server, trained_registry, protocol):
    row = trained_registry.sample[3]
    with client_for(server, protocol) as client:
        one = client.score(row.tolist())  # a plain list of 30 floats, default model
        batch = client.score(trained_registry.sample[:4])
    assert isinstance(one.probability, float) and isinstance(one.is_fraud, bool)
    assert one.model_name == V1 and one.n == 1
    assert np.float32(one.probability) == batch.probabilities[3]
    assert one.latency_ms > 0


def test_sync_and_async_agree_on_both_protocols(server, trained_registry):
    x = trained_registry.sample[20:52]
    with client_for(server, "rest") as client:
        reference = client.score(x).probability
        many_sync = client.score_many(x[:8], transaction_ids=[f"s-{i}" for i in range(8)])

    async def run(protocol):
        async with async_client_for(server, protocol) as client:
            batch = await client.score(x)
            many = await client.score_many(
                x, routing_keys=list(range(len(x))), amounts=[1.5] * len(x), concurrency=8
            )
            assert await client.ready() and await client.live()
            return batch, many

    for protocol in PROTOCOLS:
        batch, many = asyncio.run(run(protocol))
        assert np.array_equal(batch.probability, reference), protocol
        assert [r.model_name for r in many] == [V1] * len(x)  # no experiment: the model addressed
        assert np.array_equal(np.array([r.probability for r in many], np.float32), reference)
    assert np.array_equal(np.array([r.probability for r in many_sync], np.float32), reference[:8])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_health(server, protocol):
    with client_for(server, protocol) as client:
        assert client.live() and client.ready()
        assert client.ready(V1) and client.ready(V2)
        assert client.ready("nope") is False
        client.wait_ready(timeout=5)


# -- the seed's client -----------------------------------------------------------------------------


def test_seed_client_usage_and_exact_payload(server, trained_registry):
    row = trained_registry.sample[0]
    sent: list[bytes] = []
    client = FraudDetectionClient(server.http_url)
    client._client._http.event_hooks["request"] = [lambda request: sent.append(request.read())]
    result = client.predict_fraud([float(v) for v in row])
    assert set(result) >= {"probability", "is_fraud", "confidence"}
    p = result["probability"]
    assert isinstance(p, float) and isinstance(result["is_fraud"], bool)
    assert abs(p - float(expected(trained_registry.champion, row[None])[0])) <= 1e-6
    assert result["is_fraud"] == (np.float32(p) >= np.float32(trained_registry.thresholds[V1]))
    assert result["confidence"] == pytest.approx(abs(p - 0.5) * 2)
    assert 0.0 <= result["confidence"] <= 1.0
    assert result["model_name"] == V1 and result["model_version"] == "1"
    # exactly the seed's request body: same keys, order, shape, datatype; the same FP32 values
    # (written as the shortest text that reads back as that float32)
    assert len(sent) == 1
    body = orjson.loads(sent[0])
    assert list(body) == ["inputs", "parameters"]
    assert body["parameters"] == {"content_type": "np"}
    (tensor,) = body["inputs"]
    assert list(tensor) == ["name", "shape", "datatype", "data"]
    assert tensor["name"] == "fraud_features" and tensor["shape"] == [1, 30]
    assert tensor["datatype"] == "FP32"
    assert np.array_equal(np.asarray(tensor["data"], dtype=np.float32), row.astype(np.float32))
    assert client.health_check()
    client.close()
    with FraudDetectionClient(server.http_url, V2) as challenger:
        other = challenger.predict_fraud(row)
    assert other["model_name"] == V2
    assert (
        abs(other["probability"] - float(expected(trained_registry.challenger, row[None])[0]))
        < 1e-6
    )


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_map_to_classes_with_the_servers_message(server, protocol):
    with client_for(server, protocol) as client:
        with pytest.raises(InvalidInput) as bad_shape:
            client.score([0.5] * 29)
        assert bad_shape.value.status == 400
        assert (
            "expected [n, 30]" in bad_shape.value.message and "[1, 29]" in bad_shape.value.message
        )
        with pytest.raises(ModelNotFound) as unknown:
            client.score([0.5] * 30, model="nope")
        assert unknown.value.status == 404 and "nope" in unknown.value.message
        with pytest.raises(InvalidInput) as non_finite:
            client.score([float("nan")] * 30)
        assert non_finite.value.status == 400
        with pytest.raises(PayloadTooLarge) as too_big:
            client.score(np.zeros((50_000, 30), dtype=np.float32))
        assert too_big.value.status == 413
    if protocol == "grpc":
        assert bad_shape.value.grpc_code == "INVALID_ARGUMENT"
        assert unknown.value.grpc_code == "NOT_FOUND"
        assert too_big.value.grpc_code == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unreachable_server_raises_connection_failed(free_port, protocol):
    port = free_port()
    with socket.socket() as probe:  # nothing listens there
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    client = FraudgateClient(
        f"http://127.0.0.1:{port}",
        protocol=protocol,
        grpc_address=f"127.0.0.1:{port}",
        timeout=2.0,
    )
    with client, pytest.raises(ConnectionFailed):
        client.score([0.0] * 30)

    async def run():
        async with AsyncFraudgateClient(
            f"http://127.0.0.1:{port}",
            protocol=protocol,
            grpc_address=f"127.0.0.1:{port}",
            timeout=2.0,
        ) as aclient:
            await aclient.score([0.0] * 30)

    with pytest.raises(ConnectionFailed):
        asyncio.run(run())


def test_client_side_argument_errors(server):
    with FraudgateClient(server.http_url) as client:
        with pytest.raises(InvalidInput, match="transaction_ids: expected 2"):
            client.score(np.zeros((2, 30)), transaction_ids=["a"])
        with pytest.raises(InvalidInput, match="transaction_ids"):
            client.score(np.zeros((2, 30)), transaction_id="a")
        with pytest.raises(InvalidInput, match="routing_key"):
            client.score(np.zeros(30), routing_key=1.5)
