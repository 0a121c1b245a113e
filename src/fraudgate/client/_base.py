"""What the sync and async clients share: settings, request preparation, result handling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from fraudgate.client.errors import FraudgateError, InvalidInput
from fraudgate.client.types import ExperimentInfo, FeedbackResult, WeightChange
from fraudgate.client.wire import DEFAULT_MODEL, DEFAULT_ROUTING_PARAMETER, InferCall, prepare_infer

Protocol = Literal["rest", "grpc"]
DEFAULT_TIMEOUT = 10.0
DEFAULT_LABEL_BATCH = 1000
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def default_grpc_address(url: str) -> str:
    """The server's gRPC address for an HTTP URL: same host, HTTP port + 1 (8080 -> 8081)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port + 1}"


class ClientBase:
    """Settings and the transport-neutral half of every call."""

    def __init__(
        self,
        url: str,
        *,
        protocol: Protocol = "rest",
        grpc_address: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        model: str = DEFAULT_MODEL,
        routing_parameter: str | None = DEFAULT_ROUTING_PARAMETER,
        max_connections: int = 100,
    ) -> None:
        if protocol not in ("rest", "grpc"):
            raise ValueError(f"protocol: expected 'rest' or 'grpc', received {protocol!r}")
        if "://" not in url:
            url = f"http://{url}"
        self.url = url.rstrip("/")
        self.protocol: Protocol = protocol
        self.grpc_address = grpc_address or default_grpc_address(self.url)
        self.token = token
        self.timeout = timeout
        self.model = model
        self.routing_parameter = routing_parameter
        self.max_connections = max_connections

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def _prepare(self, features: Any, model: str | None, **kwargs: Any) -> InferCall:
        return prepare_infer(
            features,
            model=model or self.model,
            routing_parameter=self.routing_parameter,
            **kwargs,
        )

    def _many_calls(
        self,
        rows: Any,
        model: str | None,
        routing_keys: Sequence[Any] | None,
        transaction_ids: Sequence[str] | None,
        amounts: Sequence[float] | None,
        request_ids: Sequence[str] | None,
    ) -> list[InferCall]:
        import numpy as np

        from fraudgate.client.wire import as_matrix

        x, _ = as_matrix(rows)
        n = x.shape[0]
        for name, values in (
            ("routing_keys", routing_keys),
            ("transaction_ids", transaction_ids),
            ("amounts", amounts),
            ("request_ids", request_ids),
        ):
            if values is not None and len(values) != n:
                raise InvalidInput(
                    f"{name}: expected {n} values (one per row), received {len(values)}"
                )
        calls = []
        for i in range(n):
            calls.append(
                self._prepare(
                    np.asarray(x[i]),
                    model,
                    routing_key=None if routing_keys is None else routing_keys[i],
                    transaction_id=None if transaction_ids is None else transaction_ids[i],
                    amount=None if amounts is None else amounts[i],
                    request_id=None if request_ids is None else request_ids[i],
                )
            )
        return calls

    # -- admin payloads ----------------------------------------------------------------------------
    @staticmethod
    def _weights_body(weights: Mapping[str, Any], actor: str) -> bytes:
        if not isinstance(weights, Mapping):
            raise InvalidInput(
                f"weights: expected a mapping of model name to weight, received {weights!r}"
            )
        return orjson.dumps({"weights": dict(weights), "actor": actor})

    @staticmethod
    def _action_body(reason: str, actor: str, evaluation: Mapping[str, Any] | None) -> bytes:
        payload: dict[str, Any] = {"reason": reason, "actor": actor}
        if evaluation is not None:
            payload["evaluation"] = dict(evaluation)
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)

    @staticmethod
    def _feedback_body(batch: list[dict[str, Any]], actor: str | None) -> bytes:
        payload: dict[str, Any] = {"labels": batch}
        if actor is not None:
            payload["actor"] = actor
        return orjson.dumps(payload)

    @staticmethod
    def _json(body: bytes, what: str) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FraudgateError(
                f"{what}: the server's answer is not JSON: {body[:200]!r}"
            ) from None

    @staticmethod
    def _feedback(body: Any, offset: int) -> FeedbackResult:
        return FeedbackResult.from_json(body, row_offset=offset)

    @staticmethod
    def _experiment(body: Any) -> ExperimentInfo:
        return ExperimentInfo.from_json(body)

    @staticmethod
    def _weight_change(body: Any) -> WeightChange:
        return WeightChange.from_json(body)
