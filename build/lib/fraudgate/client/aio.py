"""`AsyncFraudgateClient`: the same API as `FraudgateClient`, awaitable (httpx / grpc.aio)."""

from __future__ import annotations

import asyncio
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
from fraudgate.client.types import ExperimentInfo, FeedbackResult, ScoreResult, WeightChange
from fraudgate.client.wire import (
    InferCall,
    feedback_batches,
    grpc_metadata,
    grpc_request,
    parse_grpc,
    parse_rest,
    rest_body,
)


class AsyncFraudgateClient(ClientBase):
    """Async twin of :class:`fraudgate.client.FraudgateClient` (same arguments, same results).

    Create and use it inside one event loop; ``async with`` closes the pool and the channel.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout, limits=limits, headers=self._headers()
        )
        self._channel: Any = None
        self._stub: Any = None

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> AsyncFraudgateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transports --------------------------------------------------------------------------------
    def _grpc(self) -> Any:
        if self._stub is None:
            import grpc

            from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

            self._channel = grpc.aio.insecure_channel(self.grpc_address, options=GRPC_OPTIONS)
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        return self._stub

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: type[NotFound] = NotFound,
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(f"{method} {self.url}{path}: timed out ({exc})") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{method} {self.url}{path}: {exc}") from None
        if response.status_code >= 400:
            raise error_from_http(response.status_code, response.content, not_found=not_found)
        return response

    async def _infer(self, call: InferCall) -> ScoreResult:
        start = time.perf_counter()
        if self.protocol == "grpc":
            import grpc

            try:
                rpc = self._grpc().ModelInfer(
                    grpc_request(call),
                    metadata=grpc_metadata(call, self.token),
                    timeout=self.timeout,
                )
                response = await rpc
                metadata = (
                    *((await rpc.initial_metadata()) or ()),
                    *((await rpc.trailing_metadata()) or ()),
                )
            except grpc.RpcError as exc:
                raise error_from_grpc(exc, not_found=ModelNotFound) from None
            latency = (time.perf_counter() - start) * 1000
            return parse_grpc(call, response, metadata, latency)
        response = await self._send(
            "POST",
            call.path,
            content=rest_body(call),
            headers=call.headers,
            not_found=ModelNotFound,
        )
        latency = (time.perf_counter() - start) * 1000
        return parse_rest(call, response.content, response.headers, latency)

    # -- inference ---------------------------------------------------------------------------------
    async def infer(self, call: InferCall) -> ScoreResult:
        """Send one request prepared by `fraudgate.client.wire.prepare_infer` (for callers that
        add request parameters of their own, such as the replay's ``event_time``)."""
        return await self._infer(call)

    async def score(
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
        """See :meth:`FraudgateClient.score`."""
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
        return await self._infer(call)

    async def score_many(
        self,
        rows: Any,
        *,
        model: str | None = None,
        routing_keys: Sequence[str | int] | None = None,
        transaction_ids: Sequence[str] | None = None,
        amounts: Sequence[float] | None = None,
        request_ids: Sequence[str] | None = None,
        concurrency: int = 16,
    ) -> list[ScoreResult]:
        """Score each row in its own request, ``concurrency`` at a time; results in row order."""
        calls = self._many_calls(rows, model, routing_keys, transaction_ids, amounts, request_ids)
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(call: InferCall) -> ScoreResult:
            async with gate:
                return await self._infer(call)

        return list(await asyncio.gather(*(one(c) for c in calls)))

    # -- health ------------------------------------------------------------------------------------
    async def live(self) -> bool:
        if self.protocol == "grpc":
            from fraudgate.protocol.grpc_gen import inference_pb2 as pb

            return await self._grpc_flag("ServerLive", pb.ServerLiveRequest(), "live")
        return await self._health("/v2/health/live")

    async def ready(self, model: str | None = None) -> bool:
        if self.protocol == "grpc":
            from fraudgate.protocol.grpc_gen import inference_pb2 as pb

            if model is None:
                return await self._grpc_flag("ServerReady", pb.ServerReadyRequest(), "ready")
            return await self._grpc_flag("ModelReady", pb.ModelReadyRequest(name=model), "ready")
        path = "/v2/health/ready" if model is None else f"/v2/models/{model}/ready"
        return await self._health(path)

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while True:
            error: Exception | None = None
            try:
                if await self.ready():
                    return
            except ConnectionFailed as exc:
                error = exc
            if time.monotonic() >= deadline:
                raise error or ServerNotReady(f"{self.url}: not ready after {timeout}s")
            await asyncio.sleep(interval)

    async def _health(self, path: str) -> bool:
        try:
            await self._send("GET", path)
        except ConnectionFailed:
            raise
        except FraudgateError:
            return False
        return True

    async def _grpc_flag(self, method: str, request: Any, field: str) -> bool:
        import grpc

        metadata = [("authorization", f"Bearer {self.token}")] if self.token else None
        try:
            stub = getattr(self._grpc(), method)
            reply = await stub(request, metadata=metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            error = error_from_grpc(exc, not_found=ModelNotFound)
            if isinstance(error, ModelNotFound | ServerNotReady):
                return False
            raise error from None
        return bool(getattr(reply, field))

    # -- feedback and admin ------------------------------------------------------------------------
    async def send_labels(
        self,
        labels: Iterable[Any],
        *,
        batch_size: int = DEFAULT_LABEL_BATCH,
        actor: str | None = None,
    ) -> FeedbackResult:
        """See :meth:`FraudgateClient.send_labels`."""
        total = FeedbackResult()
        for offset, batch in feedback_batches(labels, batch_size):
            body = self._feedback_body(batch, actor)
            response = await self._send("POST", "/feedback", content=body)
            total = total + self._feedback(self._json(response.content, "feedback"), offset)
        return total

    async def get_experiment(self, name: str) -> ExperimentInfo:
        response = await self._send(
            "GET", f"/admin/experiments/{name}", not_found=ExperimentNotFound
        )
        return self._experiment(self._json(response.content, "experiment"))

    async def set_weights(self, name: str, weights: Mapping[str, int], actor: str) -> WeightChange:
        response = await self._send(
            "PUT",
            f"/admin/experiments/{name}/weights",
            content=self._weights_body(weights, actor),
            not_found=ExperimentNotFound,
        )
        return self._weight_change(self._json(response.content, "weights"))
