"""Codecs and the error table, without a server."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from fraudgate.data.contract import FEATURE_NAMES
from fraudgate.protocol.codecs import decode_features
from fraudgate.protocol.errors import (
    STATUS_TABLE,
    InvalidInput,
    ModelNotFound,
    NotReady,
    PayloadTooLarge,
    grpc_code_name,
    http_status,
)
from fraudgate.protocol.grpc_codec import request_from_proto, response_to_proto
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.rest_codec import encode_infer_response, parse_infer_request
from fraudgate.protocol.types import InferenceResponse, ResponseOutput

X = np.arange(60, dtype=np.float32).reshape(2, 30) / 7


def _np(data, shape=(2, 30), datatype="FP32", **extra):
    return {
        "inputs": [
            {"name": "fraud_features", "shape": list(shape), "datatype": datatype, "data": data}
        ],
        **extra,
    }


def _decode(body: dict) -> np.ndarray:
    return decode_features(parse_infer_request(orjson.dumps(body)))


def test_error_table_maps_each_error_once():
    assert http_status(InvalidInput("x")) == 400 and grpc_code_name(InvalidInput("x")) == (
        "INVALID_ARGUMENT"
    )
    assert http_status(ModelNotFound("x")) == 404 and grpc_code_name(ModelNotFound("x")) == (
        "NOT_FOUND"
    )
    assert http_status(PayloadTooLarge("x")) == 413
    assert http_status(NotReady("x")) == 503 and grpc_code_name(NotReady("x")) == "UNAVAILABLE"
    assert http_status(RuntimeError()) == 500
    assert all(400 <= status < 600 for status, _ in STATUS_TABLE.values())


def test_np_flat_nested_and_other_numeric_datatypes_agree():
    flat = _decode(_np(X.reshape(-1).tolist()))
    nested = _decode(_np(X.tolist()))
    fp64 = _decode(_np(X.astype(np.float64).tolist(), datatype="FP64"))
    assert flat.dtype == np.float32 and flat.flags.c_contiguous
    assert np.array_equal(flat, X) and np.array_equal(nested, X) and np.array_equal(fp64, X)
    ints = _decode(_np(list(range(60)), datatype="INT64"))
    assert np.array_equal(ints, np.arange(60, dtype=np.float32).reshape(2, 30))


def test_pd_columns_matched_by_name_in_any_order_extra_columns_ignored():
    rng = np.random.default_rng(0)
    order = rng.permutation(30)
    inputs = [
        {"name": FEATURE_NAMES[j], "shape": [2, 1], "datatype": "FP32", "data": X[:, j].tolist()}
        for j in order
    ]
    inputs.append({"name": "transaction_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]})
    got = _decode({"parameters": {"content_type": "pd"}, "inputs": inputs})
    assert np.array_equal(got, X)
    # no content_type: several tensors without fraud_features means pd
    got = _decode({"inputs": inputs})
    assert np.array_equal(got, X)


def test_binary_extension_round_trip():
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "fraud_features",
                    "shape": [2, 30],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": X.nbytes},
                }
            ],
            "outputs": [
                {"name": "fraud_probability", "parameters": {"binary_data": True}},
                {"name": "fraud_decision", "parameters": {"binary_data": False}},
            ],
        }
    )
    request = parse_infer_request(header + X.tobytes(), len(header))
    assert np.array_equal(decode_features(request), X)
    scores = np.array([[0.25], [0.75]], dtype=np.float32)
    response = InferenceResponse(
        "m",
        "1",
        [
            ResponseOutput("fraud_probability", "FP32", [2, 1], scores),
            ResponseOutput("fraud_decision", "BOOL", [2, 1], scores >= 0.5),
        ],
        id="r1",
    )
    body, json_length = encode_infer_response(response, request)
    meta = orjson.loads(body[:json_length])
    assert meta["id"] == "r1" and meta["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert meta["outputs"][1]["data"] == [False, True]
    assert np.array_equal(np.frombuffer(body[json_length:], dtype=np.float32), scores.ravel())


def test_grpc_raw_and_typed_contents():
    raw = pb.ModelInferRequest(model_name="m", raw_input_contents=[X.tobytes()])
    raw.inputs.add(name="fraud_features", datatype="FP32", shape=[2, 30])
    assert np.array_equal(decode_features(request_from_proto(raw)), X)
    typed = pb.ModelInferRequest(model_name="m", id="t")
    tensor = typed.inputs.add(name="fraud_features", datatype="FP64", shape=[2, 30])
    tensor.contents.fp64_contents.extend(X.astype(np.float64).reshape(-1).tolist())
    request = request_from_proto(typed)
    assert request.id == "t" and np.array_equal(decode_features(request), X)
    scores = np.array([[0.5], [0.1]], dtype=np.float32)
    response = InferenceResponse("m", "1", [ResponseOutput("p", "FP32", [2, 1], scores)])
    assert response_to_proto(response, raw=True).raw_output_contents[0] == scores.tobytes()
    assert list(response_to_proto(response, raw=False).outputs[0].contents.fp32_contents) == [
        0.5,
        pytest.approx(0.1),
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_np([0.0] * 59), "shape [2, 30] needs 60 values, received 59"),
        (_np([0.0] * 58, shape=(2, 29)), "expected [n, 30]"),
        (_np(["x"] * 60), "received strings"),
        (_np([[0.0] * 30, [0.0]]), "ragged"),
        (_np([0.0] * 60, datatype="BF16"), "numeric datatype"),
        (_np([0.0] * 60, datatype="FLOAT"), "received 'FLOAT'"),
        (_np([1e300] * 60, datatype="FP64"), "FP32 range"),
        (_np([0.0] * 60, parameters={"content_type": "json"}), "content_type"),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "FP32", "data": [1]},
                    {"name": "b", "shape": [1], "datatype": "FP32", "data": [1]},
                ],
                "parameters": {"content_type": "np"},
            },
            "expected one tensor named 'fraud_features'",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_invalid_inputs_name_field_expected_and_received(body, fragment):
    with pytest.raises(InvalidInput) as err:
        _decode(body)
    assert fragment in err.value.message
