"""End-to-end: a real `python -m fraudgate serve` process, real clients (httpx, tritonclient)."""

from __future__ import annotations

import asyncio
import gzip

import grpc
import httpx
import numpy as np
import orjson
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from fraudgate.config import write_default_config
from fraudgate.data.contract import FEATURE_NAMES
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"


def seed_payload(row) -> dict:
    return {
        "inputs": [
            {
                "name": "fraud_features",
                "shape": [1, 30],
                "datatype": "FP32",
                "data": [float(v) for v in row],
            }
        ],
        "parameters": {"content_type": "np"},
    }


def expected(booster, x: np.ndarray) -> np.ndarray:
    return booster.predict(x, num_threads=1).astype(np.float32)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.http_url, timeout=30.0) as client:
        yield client


def infer(http, model: str, body, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return http.post(f"/v2/models/{model}/infer", content=content, **kwargs)


# -- the seed's client and agreement across clients ---------------------------------------------


def test_seed_client_payload_reads_outputs_0_data_0(http, trained_registry):
    row = trained_registry.sample[0]
    response = infer(http, V1, seed_payload(row))
    assert response.status_code == 200, response.text
    body = response.json()
    score = body["outputs"][0]["data"][0]
    assert body["outputs"][0]["name"] == "fraud_probability"
    assert body["outputs"][0]["datatype"] == "FP32"
    assert body["outputs"][0]["shape"] == [1, 1]
    assert body["model_name"] == V1 and body["model_version"] == "1"
    want = float(expected(trained_registry.champion, row[None])[0])
    assert abs(score - want) <= 1e-6


def _rest_json(http, model, x):
    body = {
        "id": "rest-json",
        "inputs": [
            {
                "name": "fraud_features",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.tolist(),
            }
        ],  # nested
    }
    response = infer(http, model, body)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "rest-json"
    return np.asarray(response.json()["outputs"][0]["data"], dtype=np.float32)


def _rest_pd(http, model, x):
    order = list(reversed(range(30)))  # any column order
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": FEATURE_NAMES[j],
                "shape": [len(x)],
                "datatype": "FP64",
                "data": x[:, j].astype(np.float64).tolist(),
            }
            for j in order
        ],
    }
    response = infer(http, model, body)
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["outputs"][0]["data"], dtype=np.float32)


def _triton_http(server, model, x, binary: bool):
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    inp = thttp.InferInput("fraud_features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    outputs = [thttp.InferRequestedOutput("fraud_probability", binary_data=binary)]
    result = client.infer(model, [inp], outputs=outputs, request_id="triton-http")
    assert result.get_response()["id"] == "triton-http"
    assert result.get_response()["model_name"] == model
    return result.as_numpy("fraud_probability").reshape(-1)


def _triton_http_default(server, model, x):
    """tritonclient.http's defaults: binary input, no outputs named (binary_data_output)."""
    client = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    inp = thttp.InferInput("fraud_features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp])
    assert result.as_numpy("fraud_decision").dtype == np.bool_
    return result.as_numpy("fraud_probability").reshape(-1)


def _triton_grpc(server, model, x):
    client = tgrpc.InferenceServerClient(server.grpc_address)
    inp = tgrpc.InferInput("fraud_features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(model, [inp], request_id="triton-grpc")
    response = result.get_response()
    assert response.id == "triton-grpc" and response.model_name == model
    assert response.model_version == "1"
    return result.as_numpy("fraud_probability").reshape(-1)


def _grpc_typed(server, model, x):
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name=model, id="typed")
        tensor = request.inputs.add(name="fraud_features", datatype="FP32", shape=list(x.shape))
        tensor.contents.fp32_contents.extend(x.reshape(-1).tolist())
        response = stub.ModelInfer(request)
    assert response.id == "typed" and not response.raw_output_contents
    assert list(response.outputs[1].contents.bool_contents)  # typed outputs for typed inputs
    return np.asarray(response.outputs[0].contents.fp32_contents, dtype=np.float32)


@pytest.mark.parametrize("model", [V1, V2])
def test_scores_identical_across_all_clients(http, server, trained_registry, model):
    x = trained_registry.sample[:16]
    booster = trained_registry.champion if model == V1 else trained_registry.challenger
    results = {
        "rest-json": _rest_json(http, model, x),
        "rest-pd": _rest_pd(http, model, x),
        "triton-http-json": _triton_http(server, model, x, binary=False),
        "triton-http-binary": _triton_http(server, model, x, binary=True),
        "triton-http-default": _triton_http_default(server, model, x),
        "triton-grpc": _triton_grpc(server, model, x),
        "grpc-typed": _grpc_typed(server, model, x),
    }
    reference = results["triton-grpc"]
    for name, scores in results.items():
        assert scores.dtype == np.float32
        assert np.array_equal(scores, reference), name
    np.testing.assert_allclose(reference, expected(booster, x), atol=1e-6)
    # one row at a time through the seed payload: the same float32 scores
    single = [infer(http, model, seed_payload(r)).json()["outputs"][0]["data"][0] for r in x[:4]]
    assert np.array_equal(np.asarray(single, dtype=np.float32), reference[:4])


def test_large_binary_batch_matches_booster(server, trained_registry):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 30)).astype(np.float32)  # above the off-loop threshold
    scores = _triton_http(server, V1, x, binary=True)
    np.testing.assert_allclose(scores, expected(trained_registry.champion, x), atol=1e-6)


def test_concurrent_requests_all_scored_correctly(server, trained_registry):
    x = trained_registry.sample[:64]

    async def run():
        async with httpx.AsyncClient(base_url=server.http_url, timeout=30.0) as client:
            responses = await asyncio.gather(
                *(
                    client.post(f"/v2/models/{V1}/infer", content=orjson.dumps(seed_payload(r)))
                    for r in x
                )
            )
        return np.asarray([r.json()["outputs"][0]["data"][0] for r in responses], dtype=np.float32)

    scores = asyncio.run(run())
    np.testing.assert_allclose(scores, expected(trained_registry.champion, x), atol=1e-6)


# -- outputs, names and versions -----------------------------------------------------------------


def test_decision_output_and_requested_outputs(http, trained_registry):
    x = trained_registry.sample[:50]
    body = {
        "inputs": [
            {
                "name": "fraud_features",
                "shape": [50, 30],
                "datatype": "FP32",
                "data": x.reshape(-1).tolist(),
            }
        ],
        "outputs": [{"name": "fraud_decision"}, {"name": "fraud_probability"}],
    }
    out = infer(http, V2, body).json()["outputs"]
    assert [o["name"] for o in out] == ["fraud_decision", "fraud_probability"]
    assert out[0]["datatype"] == "BOOL" and out[0]["shape"] == [50, 1]
    scores = np.asarray(out[1]["data"], dtype=np.float32)
    threshold = trained_registry.thresholds[V2]
    assert out[0]["data"] == [bool(s >= np.float32(threshold)) for s in scores]
    only = infer(http, V2, {**body, "outputs": [{"name": "fraud_probability"}]}).json()
    assert [o["name"] for o in only["outputs"]] == ["fraud_probability"]


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/models/{V1}/infer",
        f"/v2/models/{V1}_1/infer",
        f"/v2/models/{V1}/versions/1/infer",
        f"/v2/models/{V1}_1/versions/1/infer",
    ],
)
def test_version_suffixed_names_resolve_to_the_same_model(http, trained_registry, path):
    row = trained_registry.sample[5]
    response = http.post(path, content=orjson.dumps(seed_payload(row)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == V1 and body["model_version"] == "1"
    want = float(expected(trained_registry.champion, row[None])[0])
    assert abs(body["outputs"][0]["data"][0] - want) <= 1e-6


def test_metadata_health_and_readiness(http, server):
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    meta = http.get("/v2").json()
    assert meta["name"] == "fraudgate" and "model_repository" in meta["extensions"]
    for path in (f"/v2/models/{V1}", f"/v2/models/{V1}_1", f"/v2/models/{V1}/versions/1"):
        model = http.get(path).json()
        assert model["name"] == V1 and model["versions"] == ["1"]
        assert model["inputs"] == [
            {"name": "fraud_features", "datatype": "FP32", "shape": [-1, 30]}
        ]
        params = model["parameters"]
        assert params["mlflow_model_version"] == "1"
        assert params["mlflow_model_uri"] == "models:/fraud-detection@champion"
        assert params["threshold"] == 0.5 and params["runtime"]
        assert params["feature_version"] == "fraudgate-features-v1"
    v2 = http.get(f"/v2/models/{V2}").json()["parameters"]
    assert v2["mlflow_model_version"] == "2" and v2["threshold"] == 0.3
    assert http.get(f"/v2/models/{V1}/ready").status_code == 200
    assert http.get(f"/v2/models/{V1}/versions/1/ready").status_code == 200
    assert http.get(f"/v2/models/{V1}/versions/7/ready").status_code == 404
    assert http.get("/v2/models/nope/ready").status_code == 404

    triton = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(V1) and triton.is_model_ready(V1, "1")
    assert triton.get_model_metadata(V1)["platform"] == "lightgbm"

    client = tgrpc.InferenceServerClient(server.grpc_address)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(V1)
    assert client.get_server_metadata().name == "fraudgate"
    grpc_meta = client.get_model_metadata(V1)
    assert grpc_meta.versions == ["1"] and grpc_meta.inputs[0].shape == [-1, 30]
    with pytest.raises(InferenceServerException, match="NOT_FOUND"):
        client.get_model_metadata("nope")


# -- bad input never yields a 500 ----------------------------------------------------------------

ROW = [0.5] * 30


def _tensor(**overrides):
    tensor = {"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": ROW}
    tensor.update(overrides)
    return {"inputs": [tensor]}


BAD_REQUESTS = {
    "malformed json": (b'{"inputs": [', 400, "malformed JSON"),
    "not an object": (b"[1, 2]", 400, "expected a JSON object"),
    "empty body": (b"", 400, "malformed JSON"),
    "missing inputs": ({"parameters": {}}, 400, "inputs: required"),
    "inputs not a list": ({"inputs": {"a": 1}}, 400, "inputs: expected a non-empty list"),
    "empty inputs": ({"inputs": []}, 400, "inputs: expected a non-empty list"),
    "missing name": (
        {"inputs": [{"shape": [1, 30], "datatype": "FP32", "data": ROW}]},
        400,
        "inputs[0].name: required",
    ),
    "missing shape": (
        {"inputs": [{"name": "x", "datatype": "FP32", "data": ROW}]},
        400,
        "inputs[0].shape: required",
    ),
    "missing datatype": (
        {"inputs": [{"name": "x", "shape": [1, 30], "data": ROW}]},
        400,
        "inputs[0].datatype: required",
    ),
    "missing data": (
        {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP32"}]},
        400,
        "inputs[0].data: required",
    ),
    "wrong feature count": (
        _tensor(shape=[1, 29], data=ROW[:29]),
        400,
        "expected [n, 30] (30 features per row), received [1, 29]",
    ),
    "one-dimensional": (_tensor(shape=[30]), 400, "expected [n, 30]"),
    "shape/data mismatch": (
        _tensor(shape=[2, 30]),
        400,
        "shape [2, 30] needs 60 values, received 30",
    ),
    "ragged nested data": (_tensor(shape=[2, 30], data=[ROW, ROW[:10]]), 400, "ragged"),
    "negative shape": (_tensor(shape=[-1, 30]), 400, "non-negative integers"),
    "unknown datatype": (_tensor(datatype="FP8"), 400, "received 'FP8'"),
    "bytes datatype": (_tensor(datatype="BYTES"), 400, "numeric datatype"),
    "strings": (_tensor(data=["a"] * 30), 400, "expected numbers, received strings"),
    "nulls": (_tensor(data=[None] * 30), 400, "expected numbers"),
    "booleans": (_tensor(data=[True] * 30), 400, "received booleans"),
    "data not a list": (_tensor(data="0.5"), 400, "expected a list of numbers"),
    "overflowing fp32": (_tensor(data=[1e39] * 30), 400, "FP32 range"),
    "bad content_type": (
        {**_tensor(), "parameters": {"content_type": "xml"}},
        400,
        "parameters.content_type",
    ),
    "pd missing columns": (
        {
            "parameters": {"content_type": "pd"},
            "inputs": [{"name": "amount", "shape": [1], "datatype": "FP32", "data": [1.0]}],
        },
        400,
        "missing 29",
    ),
    "unknown output": ({**_tensor(), "outputs": [{"name": "nope"}]}, 400, "outputs[0].name"),
    "id not a string": ({**_tensor(), "id": 5}, 400, "id: expected a string"),
    "zero rows": (_tensor(shape=[0, 30], data=[]), 400, "at least one row"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_400_with_a_precise_error(http, case):
    body, status, fragment = BAD_REQUESTS[case]
    response = infer(http, V1, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert list(error) == ["error"]
    assert fragment in error["error"]


def test_binary_nan_and_bad_binary_sizes(http):
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "fraud_features",
                    "shape": [1, 30],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 120},
                }
            ]
        }
    )
    raw = np.full(30, np.nan, dtype=np.float32).tobytes()
    response = infer(
        http, V1, header + raw, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 400 and "finite" in response.json()["error"]
    inf = np.full(30, np.inf, dtype=np.float32).tobytes()
    response = infer(
        http, V1, header + inf, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 400 and "finite" in response.json()["error"]
    short = np.zeros(29, dtype=np.float32).tobytes()
    response = infer(
        http, V1, header + short, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 400 and "binary_data_size" in response.json()["error"]
    response = infer(http, V1, header + raw, headers={"Inference-Header-Content-Length": "x"})
    assert response.status_code == 400
    response = infer(http, V1, header + raw)  # binary size without the header
    assert response.status_code == 400


def test_too_large_unknown_model_and_routes(http):
    big = b'{"inputs": [' + b" " * (4 * 1024 * 1024 + 10) + b"]}"
    response = infer(http, V1, big)
    assert response.status_code == 413 and "at most 4194304 bytes" in response.json()["error"]
    response = infer(http, "nope", _tensor())
    assert response.status_code == 404 and "nope" in response.json()["error"]
    response = infer(http, f"{V1}/versions/9", _tensor())
    assert response.status_code == 404 and "version '9'" in response.json()["error"]
    assert http.get("/no/such/route").status_code == 404
    assert http.get(f"/v2/models/{V1}/infer").status_code == 405
    assert http.post("/v2/health/live").status_code == 405
    gz = gzip.compress(orjson.dumps(seed_payload(ROW)))
    response = infer(http, V1, gz, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text


def test_grpc_errors_use_matching_status_codes(server):
    client = tgrpc.InferenceServerClient(server.grpc_address)
    inp = tgrpc.InferInput("fraud_features", [1, 29], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 29), dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        client.infer(V1, [inp])
    assert "INVALID_ARGUMENT" in str(err.value.status()) and "[1, 29]" in err.value.message()
    inp = tgrpc.InferInput("fraud_features", [1, 30], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 30), dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        client.infer("nope", [inp])
    assert "NOT_FOUND" in str(err.value.status())
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name=V1)
        tensor = request.inputs.add(name="fraud_features", datatype="FP32", shape=[1, 30])
        tensor.contents.fp64_contents.extend([0.0] * 30)
        with pytest.raises(grpc.RpcError) as rpc_err:
            stub.ModelInfer(request)
        assert rpc_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "fp32_contents" in rpc_err.value.details()
        big = pb.ModelInferRequest(model_name=V1, raw_input_contents=[b"\0" * (5 << 20)])
        big.inputs.add(name="fraud_features", datatype="FP32", shape=[1, 30])
        with pytest.raises(grpc.RpcError) as rpc_err:
            stub.ModelInfer(big)
        assert rpc_err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- metrics and OpenAPI -------------------------------------------------------------------------


def _samples(http) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_parse_and_move(http, trained_registry):
    labels = (("model", V1), ("protocol", "rest"), ("version", "1"))
    before = _samples(http)
    x = trained_registry.sample[:10]
    body = {
        "inputs": [
            {
                "name": "fraud_features",
                "shape": [10, 30],
                "datatype": "FP32",
                "data": x.reshape(-1).tolist(),
            }
        ]
    }
    assert infer(http, V1, body).status_code == 200
    assert infer(http, V1, _tensor(shape=[1, 29], data=ROW[:29])).status_code == 400
    after = _samples(http)

    def delta(name, lab):
        return after.get((name, lab), 0.0) - before.get((name, lab), 0.0)

    assert delta("fraudgate_inference_requests_total", labels) == 2
    assert (
        delta("fraudgate_inference_failures_total", tuple(sorted((*labels, ("code", "400"))))) == 1
    )
    assert delta("fraudgate_inference_request_duration_seconds_count", labels) == 1
    mv = (("model", V1), ("version", "1"))
    assert delta("fraudgate_fraud_score_count", mv) == 10
    fraud = delta("fraudgate_decisions_total", (("decision", "fraud"), *mv))
    legit = delta("fraudgate_decisions_total", (("decision", "legit"), *mv))
    assert fraud + legit == 10
    assert delta("fraudgate_batch_size_count", mv) >= 1
    assert after[("fraudgate_model_ready", mv)] == 1


def test_openapi_document_is_valid_and_covers_every_route(http):
    from openapi_spec_validator import validate

    doc = http.get("/openapi.json").json()
    validate(doc)
    routes = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert routes == {
        ("get", "/v2/health/live"),
        ("get", "/v2/health/ready"),
        ("get", "/v2"),
        ("get", "/v2/models/{name}"),
        ("get", "/v2/models/{name}/ready"),
        ("post", "/v2/models/{name}/infer"),
        ("get", "/v2/models/{name}/versions/{version}"),
        ("get", "/v2/models/{name}/versions/{version}/ready"),
        ("post", "/v2/models/{name}/versions/{version}/infer"),
        ("post", "/v2/repository/index"),
        ("post", "/v2/repository/models/{name}/load"),
        ("post", "/v2/repository/models/{name}/unload"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("post", "/feedback"),
        ("get", "/admin/experiments/{name}"),
        ("put", "/admin/experiments/{name}/weights"),
        ("post", "/admin/experiments/{name}/promote"),
        ("post", "/admin/experiments/{name}/rollback"),
        ("get", "/ui"),
        ("get", "/ui/api/dashboard"),
    }
    # every read-only route answers with a documented status and a body matching its schema
    import jsonschema

    def check(method, template, response):
        documented = doc["paths"][template][method]["responses"]
        assert str(response.status_code) in documented, (template, response.status_code)
        content = documented[str(response.status_code)].get("content", {})
        if "application/json" in content:
            schema = {**content["application/json"]["schema"], "components": doc["components"]}
            jsonschema.validate(response.json(), schema)

    for template, path in [
        ("/v2/health/live", "/v2/health/live"),
        ("/v2/health/ready", "/v2/health/ready"),
        ("/v2", "/v2"),
        ("/v2/models/{name}", f"/v2/models/{V1}"),
        ("/v2/models/{name}", "/v2/models/unknown"),
        ("/v2/models/{name}/ready", f"/v2/models/{V1}/ready"),
        ("/v2/models/{name}/versions/{version}", f"/v2/models/{V1}/versions/1"),
        ("/v2/models/{name}/versions/{version}/ready", f"/v2/models/{V1}/versions/1/ready"),
        ("/metrics", "/metrics"),
        ("/openapi.json", "/openapi.json"),
    ]:
        check("get", template, http.get(path))
    check("post", "/v2/models/{name}/infer", infer(http, V1, seed_payload(ROW)))
    check("post", "/v2/models/{name}/infer", infer(http, V1, b"{"))
    check(
        "post",
        "/v2/models/{name}/versions/{version}/infer",
        http.post(f"/v2/models/{V1}/versions/1/infer", content=orjson.dumps(seed_payload(ROW))),
    )
    check("post", "/v2/repository/index", http.post("/v2/repository/index", content=b"{}"))
    check(
        "post", "/v2/repository/models/{name}/load", http.post("/v2/repository/models/unknown/load")
    )


# -- model repository (its own server: it changes versions) -------------------------------------


ADMIN_TOKEN = "repository-test-token"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def private_server(trained_registry, launch, tmp_path):
    import yaml

    config = write_default_config(
        tmp_path / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
    data = yaml.safe_load(config.read_text())
    data["auth"] = {"token": ADMIN_TOKEN}  # model management needs the admin token
    config.write_text(yaml.safe_dump(data))
    return launch(config)


def test_repository_index_load_unload(private_server, trained_registry):
    server = private_server
    http = httpx.Client(base_url=server.http_url, timeout=30.0, headers=ADMIN)
    index = http.post("/v2/repository/index").json()
    assert {(m["name"], m["state"], m.get("version")) for m in index} == {
        (V1, "READY", "1"),
        (V2, "READY", "1"),
    }

    # a new name from an MLflow URI, through tritonclient.http's repository API
    triton = thttp.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    anonymous = httpx.post(f"{server.http_url}/v2/repository/models/{V2}/unload", timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    extra = "fraud-v3-extra"
    response = http.post(
        f"/v2/repository/models/{extra}/load",
        content=orjson.dumps(
            {"parameters": {"uri": "models:/fraud-detection@challenger", "threshold": 0.9}}
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"name": extra, "version": "1", "state": "READY"}
    assert triton.is_model_ready(extra)
    meta = triton.get_model_metadata(extra)
    assert meta["parameters"]["threshold"] == 0.9
    triton.unload_model(extra, headers=ADMIN)
    assert not triton.is_model_ready(extra)
    response = infer(http, extra, seed_payload(ROW))
    assert response.status_code == 503 and "not ready" in response.json()["error"]
    assert http.get(f"/v2/models/{extra}/ready").status_code == 503
    states = {m["name"]: m["state"] for m in triton.get_model_repository_index()}
    assert states[extra] == "UNAVAILABLE"
    ready_only = http.post("/v2/repository/index", content=b'{"ready": true}').json()
    assert extra not in {m["name"] for m in ready_only}

    # reloading a served name deploys the next serving version; old version numbers stop resolving
    client = tgrpc.InferenceServerClient(server.grpc_address)
    client.load_model(V2, headers=ADMIN)
    assert client.get_model_metadata(V2).versions == ["2"]
    row = trained_registry.sample[1]
    response = infer(http, f"{V2}_2", seed_payload(row))
    assert response.status_code == 200 and response.json()["model_version"] == "2"
    want = float(expected(trained_registry.challenger, row[None])[0])
    assert abs(response.json()["outputs"][0]["data"][0] - want) <= 1e-6
    assert infer(http, f"{V2}_1", seed_payload(row)).status_code == 404
    assert http.get(f"/v2/models/{V2}/versions/1").status_code == 404
    client.unload_model(V2, headers=ADMIN)
    assert not client.is_model_ready(V2)
    assert http.get("/v2/health/ready").status_code == 200  # V1 still serves
    client.load_model(V2, headers=ADMIN)
    assert client.is_model_ready(V2, "3")
    grpc_index = {m.name: m.state for m in client.get_model_repository_index().models}
    assert grpc_index[V2] == "READY"

    # errors: unknown name without a URI, bad URI
    assert http.post("/v2/repository/models/nope/unload").status_code == 404
    assert http.post("/v2/repository/models/nope/load").status_code == 404
    response = http.post(
        f"/v2/repository/models/{extra}/load",
        content=orjson.dumps({"parameters": {"uri": "models:/no-such@x"}}),
    )
    assert response.status_code == 400 and "no-such" in response.json()["error"]
    response = http.post(f"/v2/repository/models/{V1}/load", content=b"{bad")
    assert response.status_code == 400
