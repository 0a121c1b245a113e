"""REST wire format: Open Inference Protocol JSON plus the Triton binary tensor extension.

A binary request is ``<JSON header><raw tensor bytes...>`` with the JSON length in the
``Inference-Header-Content-Length`` HTTP header; each binary input says its byte count in
``parameters.binary_data_size``. Outputs are returned binary when the request asks for it
(``parameters.binary_data_output`` or an output's ``parameters.binary_data``).
"""

from __future__ import annotations

from typing import Any

import orjson

from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.limits import preview
from fraudgate.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    RequestInput,
)

_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def loads_object(body: bytes | memoryview, where: str = "body") -> dict[str, Any]:
    """Parse a JSON object, or raise `InvalidInput` saying what was wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"{where}: expected a JSON object, received malformed JSON ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: expected a JSON object, received {_type_name(data)}")
    return data


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: expected an object, received {preview(value)}")
    return value


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        raise InvalidInput(f"{where}.{key}: required, received nothing")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.{key}: expected a string, received {preview(value)}")
    return value


def parse_infer_request(body: bytes, header_length: int | None = None) -> InferenceRequest:
    """Parse an infer request body (JSON, or JSON header + binary tensors)."""
    binary: memoryview | None = None
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length: expected 0..{len(body)} (the body size), "
                f"received {header_length}"
            )
        view = memoryview(body)
        binary = view[header_length:]
        data = loads_object(view[:header_length])
    else:
        data = loads_object(body)

    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"id: expected a string, received {preview(request_id)}")
    parameters = _parameters(data.get("parameters"), "parameters")

    raw_inputs = data.get("inputs")
    if raw_inputs is None:
        raise InvalidInput("inputs: required, received nothing")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput(
            f"inputs: expected a non-empty list of tensors, received {preview(raw_inputs)}"
        )
    offset = 0
    inputs: list[RequestInput] = []
    for i, item in enumerate(raw_inputs):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: expected an object, received {preview(item)}")
        name = _string(item, "name", where)
        datatype = _string(item, "datatype", where)
        shape = item.get("shape")
        if shape is None:
            raise InvalidInput(f"{where}.shape: required, received nothing")
        tensor_parameters = _parameters(item.get("parameters"), f"{where}.parameters")
        size = tensor_parameters.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidInput(
                    f"{where}.parameters.binary_data_size: expected a non-negative integer, "
                    f"received {preview(size)}"
                )
            if binary is None:
                raise InvalidInput(
                    f"{where}.parameters.binary_data_size: binary data needs the "
                    "Inference-Header-Content-Length header, received none"
                )
            if offset + size > len(binary):
                raise InvalidInput(
                    f"{where}.parameters.binary_data_size: expected at most "
                    f"{len(binary) - offset} bytes left in the body, received {size}"
                )
            tensor_data: Any = bytes(binary[offset : offset + size])
            offset += size
        else:
            tensor_data = item.get("data")
            if tensor_data is None:
                raise InvalidInput(f"{where}.data: required, received nothing")
        inputs.append(RequestInput(name, shape, datatype, tensor_data, tensor_parameters))
    if binary is not None and offset != len(binary):
        raise InvalidInput(
            f"body: expected {offset} bytes of binary tensor data after the JSON header, "
            f"received {len(binary)}"
        )

    outputs: list[RequestedOutput] | None = None
    raw_outputs = data.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise InvalidInput(f"outputs: expected a list, received {preview(raw_outputs)}")
        outputs = []
        for i, item in enumerate(raw_outputs):
            where = f"outputs[{i}]"
            if not isinstance(item, dict):
                raise InvalidInput(f"{where}: expected an object, received {preview(item)}")
            outputs.append(
                RequestedOutput(
                    _string(item, "name", where),
                    _parameters(item.get("parameters"), f"{where}.parameters"),
                )
            )
    return InferenceRequest(inputs, request_id, parameters, outputs)


def encode_infer_response(
    response: InferenceResponse, request: InferenceRequest
) -> tuple[bytes, int | None]:
    """Serialise a response; returns (body, JSON header length when binary outputs follow)."""
    binary_default = request.parameters.get("binary_data_output") is True
    requested = {o.name: o.parameters for o in request.outputs} if request.outputs else {}
    chunks: list[bytes] = []
    outputs = []
    for output in response.outputs:
        params = requested.get(output.name)
        binary = binary_default
        if params:
            flag = params.get("binary_data")
            if flag is not None:
                binary = flag is True
        data = output.data.reshape(-1)
        if binary:
            raw = data.tobytes()
            chunks.append(raw)
            outputs.append(
                {
                    "name": output.name,
                    "datatype": output.datatype,
                    "shape": output.shape,
                    "parameters": {"binary_data_size": len(raw)},
                }
            )
        else:
            outputs.append(
                {
                    "name": output.name,
                    "datatype": output.datatype,
                    "shape": output.shape,
                    "data": data,
                }
            )
    body: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
    }
    if response.id is not None:
        body["id"] = response.id
    if response.parameters:
        body["parameters"] = response.parameters
    body["outputs"] = outputs
    header = orjson.dumps(body, option=_DUMPS_OPTIONS)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
