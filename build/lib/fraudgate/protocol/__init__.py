"""Open Inference Protocol (KServe V2): types, datatypes, codecs and typed errors."""

from fraudgate.protocol.errors import (
    InferenceError,
    InvalidInput,
    LoadFailed,
    ModelNotFound,
    NotReady,
    PayloadTooLarge,
    Unsupported,
)
from fraudgate.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    RequestInput,
    ResponseOutput,
)

__all__ = [
    "InferenceError",
    "InferenceRequest",
    "InferenceResponse",
    "InvalidInput",
    "LoadFailed",
    "ModelNotFound",
    "NotReady",
    "PayloadTooLarge",
    "RequestInput",
    "RequestedOutput",
    "ResponseOutput",
    "Unsupported",
]
