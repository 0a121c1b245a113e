"""Typed protocol errors and the ONE table mapping them to HTTP status and gRPC status codes."""

from __future__ import annotations

# the longest error message (UTF-8 bytes) either transport sends: a gRPC message travels in a
# trailer, percent-encoded, and a trailer past the client's metadata limit loses the status
MAX_MESSAGE_BYTES = 1000


def bounded_message(message: str) -> str:
    """`message`, cut to `MAX_MESSAGE_BYTES` UTF-8 bytes (saying so) when longer."""
    if len(message) * 4 <= MAX_MESSAGE_BYTES:  # at most 4 bytes a character: surely short
        return message
    data = message.encode("utf-8", "replace")
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    cut = data[: MAX_MESSAGE_BYTES - 48].decode("utf-8", "ignore")
    return f"{cut}... (message cut at {MAX_MESSAGE_BYTES} of {len(data)} bytes)"


class InferenceError(Exception):
    """Base of every error a client can cause; the message names field, expected and received.

    The message is bounded (`bounded_message`) here, once for every transport: the last line
    of defence behind quoting received values with `fraudgate.protocol.limits.preview`.
    """

    def __init__(self, message: str) -> None:
        message = bounded_message(message)
        super().__init__(message)
        self.message = message


class InvalidInput(InferenceError):
    """The request is malformed or does not match the model's contract."""


class ModelNotFound(InferenceError):
    """No model (or model version) of that name is known to the server."""


class PayloadTooLarge(InferenceError):
    """The request body exceeds the server's payload limit."""


class NotReady(InferenceError):
    """The server or the model is loading, unloaded or failed to load."""


class LoadFailed(InferenceError):
    """A repository load request could not load the model (bad URI, registry error, ...)."""


class Unsupported(InferenceError):
    """A known but unsupported feature (e.g. an output encoding) was asked for."""


class Unauthorized(InferenceError):
    """A missing or wrong bearer token on an authenticated endpoint."""


class Forbidden(InferenceError):
    """The server refuses the call whoever asks (e.g. model management switched off)."""


class Conflict(InferenceError):
    """The call conflicts with the state of things (e.g. the registry and the servers disagree
    about which model is live); the message says how to bring them back in line."""


class Unavailable(InferenceError):
    """A dependency is down or not configured (e.g. the decision ledger); retry later."""


# error class -> (HTTP status, gRPC status code name); the only place this mapping lives.
STATUS_TABLE: dict[type[InferenceError], tuple[int, str]] = {
    InvalidInput: (400, "INVALID_ARGUMENT"),
    Unsupported: (400, "INVALID_ARGUMENT"),
    LoadFailed: (400, "INVALID_ARGUMENT"),
    ModelNotFound: (404, "NOT_FOUND"),
    PayloadTooLarge: (413, "RESOURCE_EXHAUSTED"),
    NotReady: (503, "UNAVAILABLE"),
    Unavailable: (503, "UNAVAILABLE"),
    Unauthorized: (401, "UNAUTHENTICATED"),
    Forbidden: (403, "PERMISSION_DENIED"),
    Conflict: (409, "FAILED_PRECONDITION"),
}
INTERNAL = (500, "INTERNAL")


def _status(error: BaseException) -> tuple[int, str]:
    if isinstance(error, InferenceError):
        return STATUS_TABLE.get(type(error), INTERNAL)
    return INTERNAL


def http_status(error: BaseException) -> int:
    return _status(error)[0]


def grpc_code_name(error: BaseException) -> str:
    return _status(error)[1]
