"""Request codecs: turn Open Inference Protocol tensors into the `[n, 30]` float32 feature matrix.

Two content types, chosen by the request's ``parameters.content_type`` (default ``np``):

* ``np``: one tensor (``fraud_features``), shape ``[n, 30]``, data flat or nested, any numeric
  datatype (cast to FP32);
* ``pd``: one tensor per feature column, named after the contract's feature names, in any order,
  each of shape ``[n]`` or ``[n, 1]``; extra columns are ignored.

Data may be a JSON list, raw little-endian bytes (Triton binary extension, gRPC
``raw_input_contents``) or a numpy array (typed gRPC contents). Every error is an `InvalidInput`
naming the field, the expected and the received value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fraudgate.data.contract import FEATURE_NAMES, INPUT_NAME, N_FEATURES
from fraudgate.protocol.datatypes import ALL_DATATYPES, NUMERIC_DATATYPES, NUMPY_DTYPES
from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.limits import preview
from fraudgate.protocol.types import InferenceRequest, RequestInput

CONTENT_TYPES = ("np", "pd")
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_NUMERIC_KINDS = frozenset("fiu")
_F32 = np.dtype(np.float32)


def check_shape(shape: Any, where: str) -> list[int]:
    if type(shape) is not list:
        if not isinstance(shape, list | tuple):
            raise InvalidInput(
                f"{where}.shape: expected a list of non-negative integers, "
                f"received {preview(shape)}"
            )
        shape = list(shape)
    for dim in shape:
        if type(dim) is not int or dim < 0:  # bool is not int here
            raise InvalidInput(
                f"{where}.shape: expected a list of non-negative integers, "
                f"received {preview(shape)}"
            )
    return shape


def tensor_array(tensor: RequestInput, where: str) -> np.ndarray:
    """Validate one numeric tensor and return it as a finite float32 array of its shape."""
    datatype = tensor.datatype
    if datatype not in NUMERIC_DATATYPES:
        if datatype in ALL_DATATYPES:
            raise InvalidInput(
                f"{where}.datatype: expected a numeric datatype such as FP32, received {datatype!r}"
            )
        raise InvalidInput(
            f"{where}.datatype: expected one of {list(ALL_DATATYPES)}, received {preview(datatype)}"
        )
    shape = check_shape(tensor.shape, where)
    expected = 1
    for dim in shape:
        expected *= dim
    data = tensor.data
    if type(data) is list:
        try:
            array = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"{where}.data: expected a flat or nested list of numbers matching shape "
                f"{shape}, received a ragged or mixed list ({exc})"
            ) from None
    elif isinstance(data, bytes | bytearray | memoryview):
        dtype = NUMPY_DTYPES[datatype]
        if len(data) != expected * dtype.itemsize:
            raise InvalidInput(
                f"{where}: shape {shape} of {datatype} needs {expected * dtype.itemsize} bytes, "
                f"received {len(data)}"
            )
        array = np.frombuffer(data, dtype=dtype)
    elif isinstance(data, np.ndarray):
        array = data
    elif data is None:
        raise InvalidInput(f"{where}.data: required, received nothing")
    else:
        raise InvalidInput(f"{where}.data: expected a list of numbers, received {preview(data)}")
    kind = array.dtype.kind
    if kind not in _NUMERIC_KINDS:
        if kind == "b":
            received = "booleans"
        elif kind in "US":
            received = "strings"
        else:
            received = "non-numeric values (e.g. null, objects or huge integers)"
        raise InvalidInput(f"{where}.data: expected numbers, received {received}")
    if array.size != expected:
        raise InvalidInput(
            f"{where}.data: shape {shape} needs {expected} values, received {array.size}"
        )
    if array.ndim != len(shape) or array.shape != tuple(shape):
        array = array.reshape(shape)
    if array.dtype is not _F32:
        try:  # out-of-range values become inf (numpy may warn once), reported below
            array = array.astype(_F32)
        except (RuntimeWarning, FloatingPointError):  # warnings turned into errors
            raise InvalidInput(
                f"{where}.data: expected finite numbers within the FP32 range, received values "
                "that overflow FP32"
            ) from None
    # float64 accumulation cannot overflow for finite float32 values: NaN/Inf <=> non-finite sum
    if not math.isfinite(array.sum(dtype=np.float64)):
        flat = array.reshape(-1)
        bad = int(np.flatnonzero(~np.isfinite(flat))[0])
        raise InvalidInput(
            f"{where}.data: expected finite numbers within the FP32 range, received "
            f"{_describe_bad(data, bad, flat[bad])} at flat index {bad}"
        )
    return array


def _describe_bad(data: Any, index: int, value: Any) -> str:
    if type(data) is list:
        try:
            return repr(np.asarray(data).reshape(-1)[index].item())
        except (ValueError, TypeError, IndexError):  # pragma: no cover - already validated
            pass
    return repr(float(value))


def content_type(request: InferenceRequest) -> str:
    value = request.parameters.get("content_type") if request.parameters else None
    if value is None:
        if len(request.inputs) > 1 and INPUT_NAME not in {t.name for t in request.inputs}:
            return "pd"
        return "np"
    if value not in CONTENT_TYPES:
        raise InvalidInput(
            f"parameters.content_type: expected one of {list(CONTENT_TYPES)}, "
            f"received {preview(value)}"
        )
    return value


def decode_features(request: InferenceRequest) -> np.ndarray:
    """The request's `[n, 30]` float32 feature matrix (C-contiguous), or `InvalidInput`."""
    if not request.inputs:
        raise InvalidInput("inputs: expected at least one input tensor, received none")
    if content_type(request) == "pd":
        return _decode_pd(request.inputs)
    return _decode_np(request.inputs)


def _decode_np(inputs: list[RequestInput]) -> np.ndarray:
    index = 0
    if len(inputs) > 1:
        names = [t.name for t in inputs]
        if INPUT_NAME not in names:
            raise InvalidInput(
                f"inputs: expected one tensor named {INPUT_NAME!r} (content_type np) or one "
                f"tensor per feature (content_type pd), received names {preview(names)}"
            )
        index = names.index(INPUT_NAME)
    where = f"inputs[{index}]"
    array = tensor_array(inputs[index], where)
    if array.ndim != 2 or array.shape[1] != N_FEATURES:
        raise InvalidInput(
            f"{where}.shape: expected [n, {N_FEATURES}] ({N_FEATURES} features per row), "
            f"received {list(array.shape)}"
        )
    if array.shape[0] == 0:
        raise InvalidInput(f"{where}.shape: expected at least one row, received 0 rows")
    return np.ascontiguousarray(array)


def _decode_pd(inputs: list[RequestInput]) -> np.ndarray:
    columns: dict[int, np.ndarray] = {}
    rows: int | None = None
    for i, tensor in enumerate(inputs):
        slot = _FEATURE_INDEX.get(tensor.name)
        if slot is None:
            continue  # not a model feature (e.g. a transaction id): ignored
        where = f"inputs[{i}] ({tensor.name})"
        if slot in columns:
            raise InvalidInput(f"{where}.name: expected unique feature columns, received twice")
        array = tensor_array(tensor, where)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidInput(
                f"{where}.shape: expected [n] or [n, 1] for a pd column, "
                f"received {list(array.shape)}"
            )
        if rows is None:
            rows = array.shape[0]
        elif array.shape[0] != rows:
            raise InvalidInput(
                f"{where}.shape: expected {rows} rows like the other columns, "
                f"received {array.shape[0]}"
            )
        columns[slot] = array
    if len(columns) != N_FEATURES:
        missing = [name for j, name in enumerate(FEATURE_NAMES) if j not in columns]
        raise InvalidInput(
            f"inputs: content_type pd expects {N_FEATURES} feature columns named as in the "
            f"contract; missing {len(missing)}: {preview(missing, 200)}"
        )
    if not rows:
        raise InvalidInput("inputs: expected at least one row, received 0 rows")
    matrix = np.empty((rows, N_FEATURES), dtype=np.float32)
    for slot, array in columns.items():
        matrix[:, slot] = array
    return matrix
