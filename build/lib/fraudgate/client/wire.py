"""Request building and response parsing shared by every transport (REST/gRPC, sync/async).

The transports only move bytes; everything a request means (features, routing key, ids,
amounts) and everything a response says (scores, decisions, the model that answered) is
handled here, once.

On the wire (see the contract in the project docs):

* REST body ``{"id"?, "inputs": [{"name": "fraud_features", "shape": [n, 30], "datatype":
  "FP32", "data": [...]}], "parameters": {"content_type": "np", ...}}``; with no extras this is
  byte-for-byte the seed client's payload.
* gRPC ``ModelInferRequest`` with the features in ``raw_input_contents`` (little-endian FP32).
  The request ``parameters`` map only holds scalars, so the list parameters ``transaction_ids``
  and ``amounts`` travel as JSON-array strings there.
* request parameters: ``card_id`` (the routing key; another parameter name, or the
  ``x-routing-key`` header, if the client is told so), ``transaction_id`` / ``transaction_ids``,
  ``amount`` / ``amounts``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from fraudgate.client.errors import InvalidInput
from fraudgate.client.types import ScoreResult
from fraudgate.protocol.grpc_codec import set_parameter

INPUT_NAME = "fraud_features"
PROBABILITY_OUTPUT = "fraud_probability"
DECISION_OUTPUT = "fraud_decision"
ROUTE_HEADER = "x-seldon-route"
ROUTING_HEADER = "x-routing-key"
REQUEST_ID_HEADER = "x-request-id"
DEFAULT_MODEL = "fraud-v1-baseline"
DEFAULT_ROUTING_PARAMETER = "card_id"


@dataclass(frozen=True)
class InferCall:
    """One prepared inference request, transport-neutral."""

    model: str
    version: str | None
    x: np.ndarray  # float32 [n, k], C-contiguous
    single: bool  # the caller passed one row: results are scalars
    request_id: str | None
    parameters: dict[str, Any]  # beyond content_type
    headers: dict[str, str]

    @property
    def path(self) -> str:
        if self.version is not None:
            return f"/v2/models/{self.model}/versions/{self.version}/infer"
        return f"/v2/models/{self.model}/infer"


def as_matrix(features: Any) -> tuple[np.ndarray, bool]:
    """Features -> (float32 [n, k], single row?). The shape is the server's to judge."""
    try:
        x = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"features: expected numbers, received {type(features).__name__} "
            f"that numpy cannot read as float32 ({exc})"
        ) from None
    if x.ndim <= 1:
        return np.ascontiguousarray(x.reshape(1, -1)), True
    # [n, k] (or any other rank): the server judges the shape and says what it expected
    return np.ascontiguousarray(x), False


def _key(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, int | str | np.integer):
        raise InvalidInput(
            f"routing_key: expected a string or an integer, received {value!r} "
            f"({type(value).__name__})"
        )
    return int(value) if isinstance(value, np.integer) else value


def _per_row(
    params: dict[str, Any], name: str, one: Any, many: Sequence[Any] | None, n: int, convert
) -> None:
    """Set `name` (one row) or `name`s (one value per row) in the request parameters."""
    plural = f"{name}s"
    if one is not None and many is not None:
        raise InvalidInput(f"give {name} (one row) or {plural} (one per row), not both")
    if many is not None:
        values = [convert(v, f"{plural}[{i}]") for i, v in enumerate(many)]
        if len(values) != n:
            raise InvalidInput(
                f"{plural}: expected {n} values (one per row), received {len(values)}"
            )
        if n == 1:
            params[name] = values[0]
        else:
            params[plural] = values
    elif one is not None:
        if n != 1:
            raise InvalidInput(f"{name}: one value for {n} rows; pass {plural} (one per row)")
        params[name] = convert(one, name)


def _amount(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{where}: expected a number, received {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{where}: expected a finite number, received {value!r}")
    return number


def prepare_infer(
    features: Any,
    *,
    model: str,
    version: str | None = None,
    routing_key: Any = None,
    transaction_id: str | None = None,
    transaction_ids: Sequence[str] | None = None,
    amount: float | None = None,
    amounts: Sequence[float] | None = None,
    request_id: str | None = None,
    routing_parameter: str | None = DEFAULT_ROUTING_PARAMETER,
    extra_parameters: Mapping[str, Any] | None = None,
) -> InferCall:
    x, single = as_matrix(features)
    n = x.shape[0] if x.ndim >= 1 else 1
    params: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if routing_key is not None:
        key = _key(routing_key)
        if routing_parameter:
            params[routing_parameter] = key
        else:
            headers[ROUTING_HEADER] = str(key)
    _per_row(params, "transaction_id", transaction_id, transaction_ids, n, lambda v, _: str(v))
    _per_row(params, "amount", amount, amounts, n, _amount)
    if extra_parameters:
        params.update(extra_parameters)
    return InferCall(model, version, x, single, request_id, params, headers)


# -- REST --------------------------------------------------------------------------------------


def rest_body(call: InferCall) -> bytes:
    body: dict[str, Any] = {}
    if call.request_id is not None:
        body["id"] = call.request_id
    body["inputs"] = [
        {
            "name": INPUT_NAME,
            "shape": list(call.x.shape),
            "datatype": "FP32",
            "data": call.x.reshape(-1),
        }
    ]
    body["parameters"] = {"content_type": "np", **call.parameters}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def parse_rest(
    call: InferCall, body: bytes, headers: Mapping[str, str], latency_ms: float
) -> ScoreResult:
    data = orjson.loads(body)
    outputs = {o.get("name"): o.get("data") for o in data.get("outputs", [])}
    probs = outputs.get(PROBABILITY_OUTPUT)
    if probs is None and data.get("outputs"):
        probs = data["outputs"][0].get("data")  # the seed read outputs[0].data
    decision = outputs.get(DECISION_OUTPUT)
    params = data.get("parameters") or {}
    return _result(
        call,
        np.asarray(probs, dtype=np.float32).reshape(-1),
        None if decision is None else np.asarray(decision, dtype=bool).reshape(-1),
        model_name=str(data.get("model_name", "")),
        model_version=str(data.get("model_version", "")),
        request_id=data.get("id"),
        route=headers.get(ROUTE_HEADER),
        parameters=params,
        latency_ms=latency_ms,
    )


def _result(
    call: InferCall,
    probs: np.ndarray,
    decisions: np.ndarray | None,
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    route: str | None,
    parameters: Mapping[str, Any],
    latency_ms: float,
) -> ScoreResult:
    probability: float | np.ndarray = probs
    is_fraud: bool | np.ndarray | None = decisions
    if call.single and probs.shape[0] == 1:
        probability = float(probs[0])
        is_fraud = None if decisions is None else bool(decisions[0])
    return ScoreResult(
        probability=probability,
        is_fraud=is_fraud,
        model_name=model_name,
        model_version=model_version,
        request_id=request_id or call.request_id,
        route=route,
        experiment=parameters.get("experiment"),
        routing_key_hash=parameters.get("routing_key_hash"),
        latency_ms=latency_ms,
        parameters=dict(parameters),
    )


# -- gRPC --------------------------------------------------------------------------------------


def grpc_request(call: InferCall) -> Any:
    from fraudgate.protocol.grpc_gen import inference_pb2 as pb

    request = pb.ModelInferRequest(
        model_name=call.model, model_version=call.version or "", id=call.request_id or ""
    )
    request.inputs.add(name=INPUT_NAME, datatype="FP32", shape=list(call.x.shape))
    request.raw_input_contents.append(call.x.astype("<f4", copy=False).tobytes())
    set_parameter(request.parameters, "content_type", "np")
    for key, value in call.parameters.items():
        set_parameter(request.parameters, key, value)
    return request


def grpc_metadata(call: InferCall, token: str | None) -> list[tuple[str, str]]:
    metadata = list(call.headers.items())
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


_RAW_DTYPES = {"FP32": "<f4", "FP64": "<f8", "BOOL": "?", "INT64": "<i8", "INT32": "<i4"}


def _grpc_output(response: Any, index: int) -> np.ndarray:
    tensor = response.outputs[index]
    if response.raw_output_contents:
        dtype = _RAW_DTYPES.get(tensor.datatype, "<f4")
        return np.frombuffer(response.raw_output_contents[index], dtype=dtype).reshape(-1)
    contents = tensor.contents
    if tensor.datatype == "BOOL":
        return np.asarray(contents.bool_contents, dtype=bool)
    if tensor.datatype == "FP64":
        return np.asarray(contents.fp64_contents, dtype=np.float64)
    return np.asarray(contents.fp32_contents, dtype=np.float32)


def parse_grpc(call: InferCall, response: Any, metadata: Any, latency_ms: float) -> ScoreResult:
    names = [o.name for o in response.outputs]
    p_index = names.index(PROBABILITY_OUTPUT) if PROBABILITY_OUTPUT in names else 0
    probs = _grpc_output(response, p_index).astype(np.float32, copy=False)
    decisions = None
    if DECISION_OUTPUT in names:
        decisions = _grpc_output(response, names.index(DECISION_OUTPUT)).astype(bool, copy=False)
    params = {}
    for key, value in response.parameters.items():
        which = value.WhichOneof("parameter_choice")
        params[key] = None if which is None else getattr(value, which)
    route = None
    for key, value in metadata or ():  # initial or trailing metadata
        if key.lower() == ROUTE_HEADER:
            route = value.decode() if isinstance(value, bytes) else value
    return _result(
        call,
        probs,
        decisions,
        model_name=response.model_name,
        model_version=response.model_version,
        request_id=response.id or None,
        route=route,
        parameters=params,
        latency_ms=latency_ms,
    )


# -- feedback ------------------------------------------------------------------------------------


def feedback_batches(labels: Any, batch_size: int) -> Any:
    """Yield (row offset, list of label JSON objects) batches of at most ``batch_size`` rows."""
    from fraudgate.client.types import label_to_json

    batch: list[dict[str, Any]] = []
    offset = 0
    for label in labels:
        batch.append(label_to_json(label))
        if len(batch) >= batch_size:
            yield offset, batch
            offset += len(batch)
            batch = []
    if batch:
        yield offset, batch
