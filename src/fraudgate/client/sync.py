"""`FraudgateClient`: the blocking client (httpx keep-alive pool for REST, grpcio for gRPC)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from fraudgate.client._base import DEFAULT_LABEL_BATCH, GRPC_OPTIONS, ClientBase
from fraudgate.client.errors import (
    ConnectionFailed,
    ExperimentNotFound,
    FraudgateError,
    ModelNotFound,
    NotFound,
    ServerNotReady,
    error_from_grpc,
    error_from_http,
)
from fraudgate.client.types import (
    ActionResult,
    ExperimentInfo,
    FeedbackResult,
    ScoreResult,
    WeightChange,
)
from fraudgate.client.wire import (
    InferCall,
    feedback_batches,
    grpc_metadata,
    grpc_request,
    parse_grpc,
    parse_rest,
    rest_body,
)


class FraudgateClient(ClientBase):
    """Score transactions, send labels and call the admin API of a fraudgate server.

    ``url`` is the server's HTTP address (``http://127.0.0.1:8080``); feedback, admin and (with
    ``protocol="rest"``) inference go there. With ``protocol="grpc"`` inference and health go to
    ``grpc_address`` (default: the same host, HTTP port + 1, the server's default layout).
    ``token`` is sent as ``Authorization: Bearer`` (gRPC: ``authorization`` metadata).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        self._http = httpx.Client(
            base_url=self.url, timeout=self.timeout, limits=limits, headers=self._headers()
        )
        self._channel: Any = None
        self._stub: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    def __enter__(self) -> FraudgateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transports --------------------------------------------------------------------------------
    def _grpc(self) -> Any:
        if self._stub is None:
            import grpc

            from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

            self._channel = grpc.insecure_channel(self.grpc_address, options=GRPC_OPTIONS)
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        return self._stub

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: type[NotFound] = NotFound,
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(f"{method} {self.url}{path}: timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{method} {self.url}{path}: {exc}") from None
        if response.status_code >= 400:
            raise error_from_http(response.status_code, response.content, not_found=not_found)
        return response

    def _infer(self, call: InferCall) -> ScoreResult:
        start = time.perf_counter()
        if self.protocol == "grpc":
            import grpc

            try:
                response, rpc = self._grpc().ModelInfer.with_call(
                    grpc_request(call),
                    metadata=grpc_metadata(call, self.token),
                    timeout=self.timeout,
                )
            except grpc.RpcError as exc:
                raise error_from_grpc(exc, not_found=ModelNotFound) from None
            latency = (time.perf_counter() - start) * 1000
            metadata = (*(rpc.initial_metadata() or ()), *(rpc.trailing_metadata() or ()))
            return parse_grpc(call, response, metadata, latency)
        response = self._send(
            "POST",
            call.path,
            content=rest_body(call),
            headers=call.headers,
            not_found=ModelNotFound,
        )
        latency = (time.perf_counter() - start) * 1000
        return parse_rest(call, response.content, response.headers, latency)

    # -- inference ---------------------------------------------------------------------------------
    def score(
        self,
        features: Any,
        *,
        model: str | None = None,
        version: str | None = None,
        routing_key: str | int | None = None,
        transaction_id: str | None = None,
        transaction_ids: Sequence[str] | None = None,
        amount: float | None = None,
        amounts: Sequence[float] | None = None,
        request_id: str | None = None,
    ) -> ScoreResult:
        """Score one row (30 floats -> scalar result) or a matrix ``[n, 30]`` (array result).

        ``routing_key`` (a card or customer id) picks the experiment arm stickily;
        ``transaction_id(s)`` and ``amount(s)`` are recorded in the decision ledger.
        """
        call = self._prepare(
            features,
            model,
            version=version,
            routing_key=routing_key,
            transaction_id=transaction_id,
            transaction_ids=transaction_ids,
            amount=amount,
            amounts=amounts,
            request_id=request_id,
        )
        return self._infer(call)

    def score_many(
        self,
        rows: Any,
        *,
        model: str | None = None,
        routing_keys: Sequence[str | int] | None = None,
        transaction_ids: Sequence[str] | None = None,
        amounts: Sequence[float] | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> list[ScoreResult]:
        """Score each row of ``[n, 30]`` in its own request, so each is routed by its own key."""
        calls = self._many_calls(rows, model, routing_keys, transaction_ids, amounts, request_ids)
        return [self._infer(call) for call in calls]

    # -- health ------------------------------------------------------------------------------------
    def live(self) -> bool:
        """True when the server process answers as live (raises ConnectionFailed if unreachable)."""
        if self.protocol == "grpc":
            from fraudgate.protocol.grpc_gen import inference_pb2 as pb

            return self._grpc_flag("ServerLive", pb.ServerLiveRequest(), "live")
        return self._health("/v2/health/live")

    def ready(self, model: str | None = None) -> bool:
        """True when the server (or, given a name, that model) is ready to score."""
        if self.protocol == "grpc":
            from fraudgate.protocol.grpc_gen import inference_pb2 as pb

            if model is None:
                return self._grpc_flag("ServerReady", pb.ServerReadyRequest(), "ready")
            return self._grpc_flag("ModelReady", pb.ModelReadyRequest(name=model), "ready")
        path = "/v2/health/ready" if model is None else f"/v2/models/{model}/ready"
        return self._health(path)

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.2) -> None:
        """Block until ready; raise ServerNotReady / ConnectionFailed after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.ready():
                    return
                error: Exception | None = None
            except ConnectionFailed as exc:
                error = exc
            if time.monotonic() >= deadline:
                raise error or ServerNotReady(f"{self.url}: not ready after {timeout}s")
            time.sleep(interval)

    def _health(self, path: str) -> bool:
        try:
            self._send("GET", path)
        except ConnectionFailed:
            raise
        except FraudgateError:  # 503 / 404: an answer ("not ready"), not a failure
            return False
        return True

    def _grpc_flag(self, method: str, request: Any, field: str) -> bool:
        import grpc

        metadata = [("authorization", f"Bearer {self.token}")] if self.token else None
        try:
            reply = getattr(self._grpc(), method)(request, metadata=metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            error = error_from_grpc(exc, not_found=ModelNotFound)
            if isinstance(error, ModelNotFound | ServerNotReady):
                return False
            raise error from None
        return bool(getattr(reply, field))

    # -- feedback and admin ------------------------------------------------------------------------
    def send_labels(
        self,
        labels: Iterable[Any],
        *,
        batch_size: int = DEFAULT_LABEL_BATCH,
        actor: str | None = None,
    ) -> FeedbackResult:
        """POST labels (``Label``, ledger ``Label`` or dicts) to ``/feedback`` in batches.

        Rejected rows are returned (row numbers count from 1 over all labels), not raised.
        ``actor`` is recorded in the label audit when a label changes (server default otherwise).
        """
        total = FeedbackResult()
        for offset, batch in feedback_batches(labels, batch_size):
            body = self._feedback_body(batch, actor)
            response = self._send("POST", "/feedback", content=body)
            total = total + self._feedback(self._json(response.content, "feedback"), offset)
        return total

    def get_experiment(self, name: str) -> ExperimentInfo:
        response = self._send("GET", f"/admin/experiments/{name}", not_found=ExperimentNotFound)
        return self._experiment(self._json(response.content, "experiment"))

    def set_weights(self, name: str, weights: Mapping[str, int], actor: str) -> WeightChange:
        """Change the experiment's split live; the server records time and actor."""
        response = self._send(
            "PUT",
            f"/admin/experiments/{name}/weights",
            content=self._weights_body(weights, actor),
            not_found=ExperimentNotFound,
        )
        return self._weight_change(self._json(response.content, "weights"))

    def act(
        self,
        name: str,
        action: str,
        reason: str,
        actor: str,
        evaluation: Mapping[str, Any] | None = None,
    ) -> ActionResult:
        """Promote (``action="promote"``) or roll back the experiment; the server moves the
        registry aliases and the weights and records the act (Conflict when the registry and
        the servers disagree about what is live)."""
        response = self._send(
            "POST",
            f"/admin/experiments/{name}/{action}",
            content=self._action_body(reason, actor, evaluation),
            not_found=ExperimentNotFound,
        )
        return ActionResult.from_json(self._json(response.content, action))

    def metrics_text(self) -> str:
        """The server's ``/metrics`` (Prometheus text format)."""
        return self._send("GET", "/metrics").text
