"""gRPC wire format: protobuf messages <-> transport-agnostic protocol types.

Inputs may use typed ``contents`` or ``raw_input_contents``. Responses mirror the request: raw
inputs get ``raw_output_contents`` (what tritonclient.grpc reads), typed inputs get typed
``contents``.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
import orjson

from fraudgate.protocol.datatypes import CONTENTS_FIELD
from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    RequestInput,
)

_CONTENT_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint32,
    "UINT16": np.uint32,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int32,
    "INT16": np.int32,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP32": np.float32,
    "FP64": np.float64,
}
_ALL_FIELDS = tuple(dict.fromkeys(CONTENTS_FIELD.values()))


def parameter_value(param: pb.InferParameter) -> Any:
    which = param.WhichOneof("parameter_choice")
    return None if which is None else getattr(param, which)


def parameters_dict(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    return {key: parameter_value(value) for key, value in params.items()} if params else {}


def set_parameter(target: MutableMapping[str, pb.InferParameter], key: str, value: object) -> None:
    param = target[key]
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    elif isinstance(value, float):
        param.double_param = value
    elif isinstance(value, list | tuple):  # parameters hold scalars: a list travels as JSON
        param.string_param = orjson.dumps(list(value)).decode()
    else:
        param.string_param = str(value)


def _typed_contents(tensor: pb.ModelInferRequest.InferInputTensor, where: str) -> Any:
    contents = tensor.contents
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None or field == "bytes_contents":
        return []  # the datatype check in the codec reports the problem
    values = getattr(contents, field)
    if len(values) == 0:
        filled = [name for name in _ALL_FIELDS if len(getattr(contents, name))]
        if filled:
            raise InvalidInput(
                f"{where}.contents: datatype {tensor.datatype} expects {field}, "
                f"received {filled[0]}"
            )
    return np.array(values, dtype=_CONTENT_DTYPES[tensor.datatype])


def _no_typed_contents(tensor: pb.ModelInferRequest.InferInputTensor, i: int) -> None:
    """The protocol allows raw or typed contents, not both (which one would be the data?)."""
    filled = [name for name in _ALL_FIELDS if len(getattr(tensor.contents, name))]
    if filled:
        raise InvalidInput(
            f"inputs[{i}].contents: expected no typed contents when raw_input_contents is set "
            f"(one or the other), received {filled[0]}"
        )


def request_from_proto(message: pb.ModelInferRequest) -> InferenceRequest:
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInput(
            f"raw_input_contents: expected one entry per input ({len(message.inputs)}), "
            f"received {len(raw)}"
        )
    inputs = []
    for i, tensor in enumerate(message.inputs):
        if raw and tensor.HasField("contents"):
            _no_typed_contents(tensor, i)
        data = raw[i] if raw else _typed_contents(tensor, f"inputs[{i}]")
        inputs.append(
            RequestInput(
                tensor.name,
                list(tensor.shape),
                tensor.datatype,
                data,
                parameters_dict(tensor.parameters),
            )
        )
    outputs = None
    if message.outputs:
        outputs = [RequestedOutput(o.name, parameters_dict(o.parameters)) for o in message.outputs]
    return InferenceRequest(
        inputs,
        message.id or None,
        parameters_dict(message.parameters),
        outputs,
    )


def response_to_proto(response: InferenceResponse, raw: bool) -> pb.ModelInferResponse:
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
    )
    for key, value in response.parameters.items():
        set_parameter(message.parameters, key, value)
    for output in response.outputs:
        tensor = message.outputs.add(name=output.name, datatype=output.datatype, shape=output.shape)
        data = output.data.reshape(-1)
        if raw:
            message.raw_output_contents.append(data.tobytes())
        else:
            getattr(tensor.contents, CONTENTS_FIELD[output.datatype]).extend(data.tolist())
    return message
