"""Transport-agnostic Open Inference Protocol request/response types.

REST and gRPC adapters translate their wire formats into these; the data plane only sees these.
A tensor's ``data`` is whatever the wire carried: a (flat or nested) list from JSON, ``bytes``
from the binary extension / ``raw_input_contents``, or a numpy array from typed gRPC contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class RequestInput:
    name: str
    shape: list[int]
    datatype: str
    data: Any
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferenceRequest:
    inputs: list[RequestInput]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None


@dataclass(slots=True)
class ResponseOutput:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray


@dataclass(slots=True)
class InferenceResponse:
    model_name: str
    model_version: str
    outputs: list[ResponseOutput]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
