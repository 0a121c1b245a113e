"""Client exceptions: one class per failure, the same for REST and gRPC.

Every exception carries the server's own message (``message``), the HTTP status (``status``; for
gRPC the HTTP status of the equivalent error) and, for gRPC, the status code name (``grpc_code``).
The table below is the client-side mirror of ``fraudgate.protocol.errors.STATUS_TABLE``.
"""

from __future__ import annotations

from typing import Any


class FraudgateError(Exception):
    """Base class of every error the client raises."""

    def __init__(
        self, message: str, *, status: int | None = None, grpc_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.grpc_code = grpc_code

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else self.grpc_code
        return f"{self.message} ({where})" if where else self.message


class InvalidInput(FraudgateError):
    """400 / INVALID_ARGUMENT: the request does not match the contract (shape, type, field)."""


class Unauthorized(FraudgateError):
    """401 / UNAUTHENTICATED: missing or wrong bearer token (feedback and admin endpoints)."""


class NotFound(FraudgateError):
    """404 / NOT_FOUND: no such route or resource."""


class ModelNotFound(NotFound):
    """404 on an inference or model call: no model (or version) of that name is served."""


class ExperimentNotFound(NotFound):
    """404 on an admin call: no experiment of that name."""


class Conflict(FraudgateError):
    """409 / FAILED_PRECONDITION: refused as things stand (e.g. the registry and the servers
    disagree about which model is live); the message says what to do."""


class PayloadTooLarge(FraudgateError):
    """413 / RESOURCE_EXHAUSTED: the request exceeds the server's payload limit."""


class ServerNotReady(FraudgateError):
    """503 / UNAVAILABLE: the server or the model is loading, unloaded or failed to load."""


class ConnectionFailed(FraudgateError):
    """The server could not be reached (refused, timed out, connection dropped)."""


class ServerError(FraudgateError):
    """Any other status (500 and unexpected codes): a server bug, not the caller's input."""


_BY_STATUS: dict[int, type[FraudgateError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    503: ServerNotReady,
}

# gRPC status code name -> (HTTP status of the same error, class)
_BY_GRPC: dict[str, tuple[int, type[FraudgateError]]] = {
    "INVALID_ARGUMENT": (400, InvalidInput),
    "UNAUTHENTICATED": (401, Unauthorized),
    "PERMISSION_DENIED": (403, Unauthorized),
    "NOT_FOUND": (404, NotFound),
    "FAILED_PRECONDITION": (409, Conflict),
    "RESOURCE_EXHAUSTED": (413, PayloadTooLarge),
    "UNAVAILABLE": (503, ServerNotReady),
    "DEADLINE_EXCEEDED": (504, ConnectionFailed),
}


def _specialise(cls: type[FraudgateError], not_found: type[NotFound]) -> type[FraudgateError]:
    return not_found if cls is NotFound else cls


def error_from_http(
    status: int, body: bytes, *, not_found: type[NotFound] = NotFound
) -> FraudgateError:
    """The exception for an HTTP error response (``{"error": "..."}`` body, else the raw text)."""
    message = _message(body) or f"HTTP {status}"
    cls = _specialise(_BY_STATUS.get(status, ServerError), not_found)
    return cls(message, status=status)


def error_from_grpc(error: Any, *, not_found: type[NotFound] = NotFound) -> FraudgateError:
    """The exception for a ``grpc.RpcError`` (its ``code()`` and ``details()``)."""
    code = error.code()
    name = getattr(code, "name", str(code))
    details = error.details() or name
    status, cls = _BY_GRPC.get(name, (500, ServerError))
    if name == "UNAVAILABLE" and _unreachable(details):
        return ConnectionFailed(details, grpc_code=name)
    return _specialise(cls, not_found)(details, status=status, grpc_code=name)


def _unreachable(details: str) -> bool:
    """grpc reports both 'server not ready' and 'cannot connect' as UNAVAILABLE."""
    lowered = details.lower()
    return any(
        marker in lowered
        for marker in ("failed to connect", "connection refused", "connect failed", "dns")
    )


def _message(body: bytes) -> str:
    if not body:
        return ""
    try:
        import orjson

        data = orjson.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:2000]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return body.decode("utf-8", "replace").strip()[:2000]
