"""Open Inference Protocol tensor datatypes and their numpy equivalents (little-endian)."""

from __future__ import annotations

import numpy as np

# datatype -> numpy dtype used for raw (binary) tensor data
NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
ALL_DATATYPES: tuple[str, ...] = (*NUMPY_DTYPES, "BYTES", "BF16")
# datatypes a feature tensor may use (cast to FP32 after validation)
NUMERIC_DATATYPES: frozenset[str] = frozenset(NUMPY_DTYPES) - {"BOOL"}

# gRPC InferTensorContents field holding each datatype's typed values
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def numpy_dtype(datatype: str) -> np.dtype:
    return NUMPY_DTYPES[datatype]
