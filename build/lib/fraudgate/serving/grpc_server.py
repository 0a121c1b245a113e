"""gRPC transport: `inference.GRPCInferenceService` (grpc.aio), a thin adapter over the data plane.

Errors abort the call with the gRPC code from `fraudgate.protocol.errors.STATUS_TABLE`.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from fraudgate.protocol.errors import (
    InferenceError,
    bounded_message,
    grpc_code_name,
    http_status,
)
from fraudgate.protocol.grpc_codec import request_from_proto, response_to_proto, set_parameter
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc
from fraudgate.serving.connection_limits import ConnectionLimits, grpc_options
from fraudgate.serving.dataplane import DataPlane

log = logging.getLogger(__name__)


async def _abort(context: grpc.aio.ServicerContext, exc: InferenceError) -> None:
    await context.abort(getattr(grpc.StatusCode, grpc_code_name(exc)), exc.message)


def _repository_parameter(value: pb.ModelRepositoryParameter) -> Any:
    which = value.WhichOneof("parameter_choice")
    return None if which is None else getattr(value, which)


def _metadata(context: Any) -> dict[str, str]:
    return {
        key: value
        for key, value in (context.invocation_metadata() or ())
        if isinstance(value, str)  # binary (-bin) metadata is not a routing key
    }


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.dataplane.live())

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dataplane.ready())

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        try:
            ready = self.dataplane.model_ready(request.name, request.version or None)
        except InferenceError as exc:
            await _abort(context, exc)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.dataplane.server_metadata())

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        try:
            meta = self.dataplane.model_metadata(request.name, request.version or None)
        except InferenceError as exc:
            await _abort(context, exc)
        response = pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"]
        )
        for kind in ("inputs", "outputs"):
            for tensor in meta[kind]:
                getattr(response, kind).add(
                    name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
                )
        for key, value in meta.get("parameters", {}).items():
            set_parameter(response.parameters, key, value)
        return response

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> Any:
        raw = bool(request.raw_input_contents)
        dataplane = self.dataplane
        try:
            headers = None
            if dataplane.routing is not None:
                headers = lambda: _metadata(context)  # noqa: E731
            if dataplane.auth_inference:
                dataplane.authorize_inference(_metadata(context).get("authorization"))
            _, response = await dataplane.infer(
                request.model_name,
                request.model_version or None,
                lambda: request_from_proto(request),
                "grpc",
                headers,
            )
            route = dataplane.route_header(response)
            if route is not None:
                context.set_trailing_metadata((("x-seldon-route", route.decode()),))
        except InferenceError as exc:
            await _abort(context, exc)
        except Exception as exc:  # pragma: no cover - a bug, not bad input
            log.exception("gRPC inference on %s failed", request.model_name)
            await context.abort(grpc.StatusCode.INTERNAL, bounded_message(f"internal error: {exc}"))
        return response_to_proto(response, raw)

    async def RepositoryIndex(self, request: Any, context: Any) -> pb.RepositoryIndexResponse:
        try:
            index = self.dataplane.repository_index_request(request.ready)
        except InferenceError as exc:
            await _abort(context, exc)
        response = pb.RepositoryIndexResponse()
        for item in index:
            response.models.add(
                name=item["name"],
                version=item.get("version", ""),
                state=item["state"],
                reason=item["reason"],
            )
        return response

    async def RepositoryModelLoad(
        self, request: Any, context: Any
    ) -> pb.RepositoryModelLoadResponse:
        try:
            params = {k: _repository_parameter(v) for k, v in request.parameters.items()}
            authorization = _metadata(context).get("authorization")
            await self.dataplane.load_model(request.model_name, params, authorization)
        except InferenceError as exc:
            await _abort(context, exc)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: Any, context: Any
    ) -> pb.RepositoryModelUnloadResponse:
        try:
            params = {k: _repository_parameter(v) for k, v in request.parameters.items()}
            authorization = _metadata(context).get("authorization")
            await self.dataplane.unload_model(request.model_name, params, authorization)
        except InferenceError as exc:
            await _abort(context, exc)
        return pb.RepositoryModelUnloadResponse()


def create_grpc_server(
    dataplane: DataPlane,
    host: str,
    port: int,
    max_payload_bytes: int,
    limits: ConnectionLimits | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server bound to host:port (port 0 picks a free one); returns it and the port.

    `limits` (metadata size, streams, idle and handshake timeouts, connection cap) become
    grpc-core channel arguments; None leaves grpc-core's defaults.
    """
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_payload_bytes),
        ("grpc.max_send_message_length", max(max_payload_bytes, 64 * 1024 * 1024)),
        ("grpc.so_reuseport", 0),
    ]
    if limits is not None:
        options.extend(grpc_options(limits))
    server = grpc.aio.server(options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(dataplane), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC: could not bind {host}:{port}")
    return server, bound


__all__ = ["InferenceServicer", "create_grpc_server", "http_status"]
