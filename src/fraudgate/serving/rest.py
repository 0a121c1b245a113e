"""REST transport: a raw ASGI app (no framework) over the data plane, dispatched by one table.

`ROUTES` (at the end of this module) is the REST API: Open Inference Protocol V2 health, server
and model metadata, readiness and inference (optionally under ``/versions/{version}``), the model
repository extension, feedback and experiment admin, the dashboard (``/ui``, its data at
``/ui/api/dashboard``), ``/metrics`` and ``/openapi.json``. The
`Router` built from it dispatches every request (404 for an unknown path, 405 with ``Allow`` for
a known path with another method), and ``/openapi.json`` is written from it
(`fraudgate.serving.openapi`). Handlers only translate: path parameters, headers and JSON bodies
in, a core call (`DataPlane`, `ExperimentPlane`), JSON out; auth and validation live in the core.

Every error is ``{"error": "..."}`` with the status from `fraudgate.protocol.errors.STATUS_TABLE`;
bad input never yields a 500. The infer path is written for speed: its two routes are matched by
a prefix/suffix test before the table (the table declares them; `_check_fast_path` proves the
test takes no other route), then one pass over the headers, one ``receive`` for a small body,
orjson both ways, two ``send`` calls.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from fraudgate.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    PayloadTooLarge,
    Unauthorized,
    http_status,
)
from fraudgate.protocol.limits import preview
from fraudgate.protocol.rest_codec import encode_infer_response, error_body, parse_infer_request
from fraudgate.serving import openapi as doc
from fraudgate.serving.dataplane import DataPlane
from fraudgate.serving.openapi import openapi_document
from fraudgate.serving.routes import MethodNotAllowed, Param, Route, Router
from fraudgate.serving.routes import RouteNotFound as _RouteNotFound

log = logging.getLogger(__name__)

_JSON = b"application/json"
_OCTET = b"application/octet-stream"
_HTML = b"text/html; charset=utf-8"
_NO_STORE = ((b"cache-control", b"no-store"),)  # business figures: never kept by a cache
_MODELS = "/v2/models/"
_INFER = "/infer"  # the fast path in `RestApp.__call__` spells it out
_LIVE = orjson.dumps({"live": True})
_READY = orjson.dumps({"ready": True})
_NOT_READY_SERVER = error_body("server is not ready: models are still loading or none is loaded")


class _Disconnected(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler answers: status, body and content type (sent with its length)."""

    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it: the ASGI scope and channels, and the path parameters."""

    scope: dict[str, Any]
    receive: Any
    send: Any
    params: dict[str, str]

    @property
    def authorization(self) -> str | None:
        return _header(self.scope, b"authorization")


def _split_model_path(rest: str) -> tuple[str, str | None]:
    """'name' or 'name/versions/v' -> (name, version)."""
    name, sep, version = rest.partition("/versions/")
    if not name or "/" in name or (sep and (not version or "/" in version)):
        raise _RouteNotFound(f"path: no route for model path {preview(rest)}")
    return name, (version if sep else None)


class RestApp:
    """The ASGI application. One instance per server; all state lives in the data plane."""

    def __init__(self, dataplane: DataPlane, max_payload_bytes: int) -> None:
        self.dataplane = dataplane
        self.max_payload_bytes = max_payload_bytes
        self.router = ROUTER
        self._openapi: bytes | None = None

    # -- ASGI entry ------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        # the inference fast path: ``POST {_MODELS}...{_INFER}``, see `_check_fast_path`
        if method == "POST" and path.endswith("/infer") and path.startswith(_MODELS):
            await self._infer(scope, receive, send, path[len(_MODELS) : -len("/infer")])
            return
        try:
            match = self.router.match(method, path)
            reply = await match.route.handler(self, Call(scope, receive, send, match.params))
        except MethodNotAllowed as exc:
            await _send(send, 405, error_body(exc.message), _JSON, [(b"allow", exc.allow.encode())])
            return
        except _RouteNotFound as exc:
            await _send(send, 404, error_body(exc.message))
            return
        except InferenceError as exc:
            extra = [(b"www-authenticate", b"Bearer")] if isinstance(exc, Unauthorized) else None
            await _send(send, http_status(exc), error_body(exc.message), _JSON, extra)
            return
        except _Disconnected:
            return
        except Exception as exc:  # pragma: no cover - a bug, not bad input
            log.exception("%s %s failed", method, path)
            await _send(send, 500, error_body(f"internal error: {type(exc).__name__}: {exc}"))
            return
        if reply is not None:  # None: the handler sent its answer itself (inference)
            await _send(send, reply.status, reply.body, reply.content_type, reply.headers)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- request bodies --------------------------------------------------------------------------
    async def _body(self, scope: dict[str, Any], receive: Any) -> tuple[bytes, int | None]:
        """Read the body (enforcing the payload limit); returns it and the binary header length."""
        limit = self.max_payload_bytes
        header_length: int | None = None
        encoding: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidInput(
                        "Content-Length: expected an integer, received "
                        f"{preview(value.decode('latin-1'))}"
                    ) from None
                if declared > limit:
                    raise PayloadTooLarge(
                        f"body: expected at most {limit} bytes, received {declared}"
                    )
            elif key == b"inference-header-content-length":
                try:
                    header_length = int(value)
                except ValueError:
                    raise InvalidInput(
                        "Inference-Header-Content-Length: expected an integer, received "
                        f"{preview(value.decode('latin-1'))}"
                    ) from None
            elif key == b"content-encoding":
                encoding = value.lower()
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body: bytes = message.get("body", b"")
        if message.get("more_body"):
            chunks = [body]
            size = len(body)
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body: expected at most {limit} bytes, received more")
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
        if len(body) > limit:
            raise PayloadTooLarge(f"body: expected at most {limit} bytes, received {len(body)}")
        if encoding is not None and encoding != b"identity":
            body = self._decompress(body, encoding)
        return body, header_length

    def _decompress(self, body: bytes, encoding: bytes) -> bytes:
        if encoding not in (b"gzip", b"deflate"):
            raise InvalidInput(
                "Content-Encoding: expected one of ['identity', 'gzip', 'deflate'], "
                f"received {preview(encoding.decode('latin-1'))}"
            )
        limit = self.max_payload_bytes
        decompressor = zlib.decompressobj(wbits=31 if encoding == b"gzip" else 15)
        try:
            out = decompressor.decompress(body, limit + 1)
        except zlib.error as exc:
            raise InvalidInput(
                f"body: expected {encoding.decode()} compressed data, received invalid data ({exc})"
            ) from None
        if len(out) > limit or decompressor.unconsumed_tail:
            raise PayloadTooLarge(
                f"body: expected at most {limit} bytes after decompression, received more"
            )
        return out

    async def _json_body(self, scope: dict[str, Any], receive: Any) -> dict[str, Any]:
        body, _ = await self._body(scope, receive)
        if not body.strip():
            return {}
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"body: expected a JSON object, received malformed JSON ({exc})"
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput(f"body: expected a JSON object, received {type(data).__name__}")
        return data

    # -- inference (the hot path) ----------------------------------------------------------------
    async def _infer(self, scope: dict[str, Any], receive: Any, send: Any, rest: str) -> None:
        dataplane = self.dataplane
        name = rest
        try:
            name, version = _split_model_path(rest)
            if dataplane.auth_inference:  # the header is looked up only when it is checked
                dataplane.authorize_inference(_header(scope, b"authorization"))
            body, header_length = await self._body(scope, receive)
            request, response = await dataplane.infer(
                name,
                version,
                lambda: parse_infer_request(body, header_length),
                "rest",
                None if dataplane.routing is None else lambda: _headers(scope),
            )
            payload, json_length = encode_infer_response(response, request)
        except _Disconnected:
            return
        except _RouteNotFound as exc:
            await _send(send, 404, error_body(exc.message))
            return
        except InferenceError as exc:
            status = http_status(exc)
            if isinstance(exc, PayloadTooLarge):  # failed before reaching the data plane
                dataplane.record_transport_failure(name, "rest", status)
            await _send(send, status, error_body(exc.message))
            return
        except Exception as exc:  # pragma: no cover - a bug, not bad input
            log.exception("inference on %s failed", rest)
            await _send(send, 500, error_body(f"internal error: {type(exc).__name__}: {exc}"))
            return
        if json_length is None:
            headers = [
                (b"content-type", _JSON),
                (b"content-length", str(len(payload)).encode()),
            ]
        else:
            headers = [
                (b"content-type", _OCTET),
                (b"content-length", str(len(payload)).encode()),
                (b"inference-header-content-length", str(json_length).encode()),
            ]
        route = dataplane.route_header(response)
        if route is not None:
            headers.append((b"x-seldon-route", route))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _infer_route(self, call: Call) -> None:
        """Inference reached through the table (the fast path in `__call__` is the usual way)."""
        name, version = call.params["name"], call.params.get("version")
        rest = name if version is None else f"{name}/versions/{version}"
        await self._infer(call.scope, call.receive, call.send, rest)

    # -- health, metadata, readiness -------------------------------------------------------------
    async def _live(self, call: Call) -> Reply:
        return Reply(200, _LIVE)

    async def _ready(self, call: Call) -> Reply:
        dp = self.dataplane
        if dp.ready():
            return Reply(200, _READY)
        reason = dp.unready_reason()
        if reason is not None:
            return Reply(503, error_body(f"server is not ready: {reason}"))
        return Reply(503, _NOT_READY_SERVER)

    async def _server_metadata(self, call: Call) -> Reply:
        return Reply(200, orjson.dumps(self.dataplane.server_metadata()))

    async def _model_metadata(self, call: Call) -> Reply:
        name, version = call.params["name"], call.params.get("version")
        return Reply(200, orjson.dumps(self.dataplane.model_metadata(name, version)))

    async def _model_ready(self, call: Call) -> Reply:
        name, version = call.params["name"], call.params.get("version")
        if self.dataplane.model_ready(name, version):
            return Reply(200, _READY)
        return Reply(
            503, error_body(f"model {preview(name)} is not ready (not loaded or still loading)")
        )

    # -- model repository ------------------------------------------------------------------------
    async def _repository_index(self, call: Call) -> Reply:
        ready = (await self._json_body(call.scope, call.receive)).get("ready", False)
        return Reply(200, orjson.dumps(self.dataplane.repository_index_request(ready)))

    async def _repository_load(self, call: Call) -> Reply:
        name, authorization = call.params["name"], call.authorization
        parameters = await self._management_parameters(call)
        deployed = await self.dataplane.load_model(name, parameters, authorization)
        body = {"name": name, "version": deployed.version, "state": "READY"}
        return Reply(200, orjson.dumps(body))

    async def _repository_unload(self, call: Call) -> Reply:
        name, authorization = call.params["name"], call.authorization
        parameters = await self._management_parameters(call)
        await self.dataplane.unload_model(name, parameters, authorization)
        return Reply(200, orjson.dumps({"name": name, "state": "UNAVAILABLE"}))

    async def _management_parameters(self, call: Call) -> Any:
        """The body's raw ``parameters``, read only once the core lets the caller manage models
        (`load_model` / `unload_model` check again, for every transport)."""
        self.dataplane.authorize_management(call.authorization)
        return (await self._json_body(call.scope, call.receive)).get("parameters")

    # -- feedback and experiment admin -----------------------------------------------------------
    async def _feedback(self, call: Call) -> Reply:
        plane = self.dataplane.experiment_admin(call.authorization)
        body = await self._json_body(call.scope, call.receive)
        return Reply(200, orjson.dumps(await plane.feedback(body)))

    async def _experiment(self, call: Call) -> Reply:
        plane = self.dataplane.experiment_admin(call.authorization)
        return Reply(200, orjson.dumps(await plane.experiment_view(call.params["name"])))

    async def _set_weights(self, call: Call) -> Reply:
        plane = self.dataplane.experiment_admin(call.authorization)
        body = await self._json_body(call.scope, call.receive)
        return Reply(200, orjson.dumps(await plane.set_weights(call.params["name"], body)))

    # -- the dashboard ---------------------------------------------------------------------------
    async def _ui_page(self, call: Call) -> Reply:
        """The page holds no figures (it reads them with the admin token), so it is public."""
        from fraudgate.ui.page import page

        document = page()
        return Reply(200, document.body, _HTML, document.headers)

    async def _ui_dashboard(self, call: Call) -> Reply:
        plane = self.dataplane.experiment_admin(call.authorization)
        return Reply(200, orjson.dumps(await plane.dashboard()), headers=_NO_STORE)

    async def _promote(self, call: Call) -> Reply:
        plane = self.dataplane.experiment_admin(call.authorization)
        body = await self._json_body(call.scope, call.receive)
        return Reply(200, orjson.dumps(await plane.promote(call.params["name"], body)))

    async def _rollback(self, call: Call) -> Reply:
        plane = self.dataplane.experiment_admin(call.authorization)
        body = await self._json_body(call.scope, call.receive)
        return Reply(200, orjson.dumps(await plane.rollback(call.params["name"], body)))

    # -- operations ------------------------------------------------------------------------------
    async def _metrics(self, call: Call) -> Reply:
        metrics = self.dataplane.metrics
        return Reply(200, metrics.render(), metrics.content_type.encode())

    async def _openapi_json(self, call: Call) -> Reply:
        if self._openapi is None:
            self._openapi = orjson.dumps(openapi_document(self.router.routes))
        return Reply(200, self._openapi)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _send(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    extra: Sequence[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the route table: dispatch and /openapi.json -------------------------------------------------
Handler = Callable[[RestApp, Call], Awaitable[Reply | None]]
_MODEL = (doc.MODEL_NAME,)
_MODEL_VERSION = (doc.MODEL_NAME, doc.MODEL_VERSION)


def _model_routes(prefix: str, params: tuple[Param, ...], suffix: str) -> list[Route[Handler]]:
    """Metadata, readiness and inference of a model, at ``prefix`` (with or without a version)."""
    tags = ("models",)
    return [
        Route(
            "GET",
            prefix,
            RestApp._model_metadata,
            f"modelMetadata{suffix}",
            "Model metadata (inputs, outputs, threshold, runtime, MLflow version)",
            tags,
            {
                200: doc.json_response("ModelMetadata", "Model metadata."),
                404: doc.NOT_FOUND,
                503: doc.NOT_READY,
            },
            params,
        ),
        Route(
            "GET",
            f"{prefix}/ready",
            RestApp._model_ready,
            f"modelReady{suffix}",
            "Model readiness",
            tags,
            {
                200: doc.json_response("Ready", "The model is ready."),
                404: doc.NOT_FOUND,
                503: doc.NOT_READY,
            },
            params,
        ),
        Route(
            "POST",
            f"{prefix}{_INFER}",
            RestApp._infer_route,
            f"modelInfer{suffix}",
            "Score transactions (Open Inference Protocol V2)",
            tags,
            {
                200: doc.INFER_OK,
                400: doc.BAD,
                401: doc.UNAUTHORIZED,
                404: doc.NOT_FOUND,
                413: doc.TOO_LARGE,
                503: doc.NOT_READY,
            },
            (*params, doc.INFERENCE_HEADER_LENGTH),
            doc.INFER_BODY,
        ),
    ]


def _act_route(action: str, handler: Handler, summary: str) -> Route[Handler]:
    """``POST /admin/experiments/{name}/<action>``: promote or roll back (`serving.promote`)."""
    return Route(
        "POST",
        f"/admin/experiments/{{name}}/{action}",
        handler,
        f"{action}Experiment",
        summary,
        ("experiment",),
        {
            200: doc.json_response("ExperimentAction", "The act, done and recorded."),
            400: doc.BAD,
            401: doc.UNAUTHORIZED,
            404: doc.UNKNOWN_EXPERIMENT,
            409: doc.CONFLICT,
            413: doc.TOO_LARGE,
            503: doc.UNAVAILABLE,
        },
        (doc.EXPERIMENT_NAME,),
        doc.json_body("ActionRequest", required=True),
        admin=True,
    )


_MANAGEMENT_ERRORS = {
    400: doc.BAD,
    401: doc.UNAUTHORIZED,
    403: doc.FORBIDDEN,
    404: doc.NOT_FOUND,
    413: doc.TOO_LARGE,
    503: doc.MANAGEMENT_UNAVAILABLE,
}

ROUTES: tuple[Route[Handler], ...] = (
    Route(
        "GET",
        "/v2/health/live",
        RestApp._live,
        "serverLive",
        "Server liveness",
        ("health",),
        {200: doc.json_response("Live", "The server is live.")},
    ),
    Route(
        "GET",
        "/v2/health/ready",
        RestApp._ready,
        "serverReady",
        "Server readiness (models loaded)",
        ("health",),
        {200: doc.json_response("Ready", "The server is ready."), 503: doc.NOT_READY},
    ),
    Route(
        "GET",
        "/v2",
        RestApp._server_metadata,
        "serverMetadata",
        "Server metadata",
        ("health",),
        {200: doc.json_response("ServerMetadata", "Server metadata.")},
    ),
    *_model_routes("/v2/models/{name}", _MODEL, ""),
    *_model_routes("/v2/models/{name}/versions/{version}", _MODEL_VERSION, "Version"),
    Route(
        "POST",
        "/v2/repository/index",
        RestApp._repository_index,
        "repositoryIndex",
        "List the models the server knows and their state",
        ("repository",),
        {
            200: doc.json_response("RepositoryIndexResponse", "The model index."),
            400: doc.BAD,
            413: doc.TOO_LARGE,
        },
        body=doc.json_body("RepositoryIndexRequest", required=False),
    ),
    Route(
        "POST",
        "/v2/repository/models/{name}/load",
        RestApp._repository_load,
        "repositoryModelLoad",
        "Load (or reload, as the next serving version) a model",
        ("repository",),
        {
            200: doc.json_response("RepositoryLoadResponse", "The model is loaded."),
            **_MANAGEMENT_ERRORS,
        },
        _MODEL,
        doc.json_body("RepositoryLoadRequest", required=False),
        admin=True,
    ),
    Route(
        "POST",
        "/v2/repository/models/{name}/unload",
        RestApp._repository_unload,
        "repositoryModelUnload",
        "Unload a model (it answers 503 until loaded again)",
        ("repository",),
        {
            200: doc.json_response("RepositoryUnloadResponse", "The model is unloaded."),
            **_MANAGEMENT_ERRORS,
        },
        _MODEL,
        doc.UNLOAD_BODY,
        admin=True,
    ),
    Route(
        "POST",
        "/feedback",
        RestApp._feedback,
        "feedback",
        "Labels that arrive later (idempotent; changed labels are audited)",
        ("experiment",),
        {
            200: doc.json_response("FeedbackResponse", "Good rows stored; bad rows listed."),
            400: doc.BAD,
            401: doc.UNAUTHORIZED,
            413: doc.TOO_LARGE,
            503: doc.UNAVAILABLE,
        },
        body=doc.json_body("FeedbackRequest", required=True),
        admin=True,
    ),
    Route(
        "GET",
        "/admin/experiments/{name}",
        RestApp._experiment,
        "experiment",
        "The experiment's spec, weight generation and weight-change history",
        ("experiment",),
        {
            200: doc.json_response("Experiment", "The experiment."),
            401: doc.UNAUTHORIZED,
            404: doc.UNKNOWN_EXPERIMENT,
            503: doc.UNAVAILABLE,
        },
        (doc.EXPERIMENT_NAME,),
        admin=True,
    ),
    Route(
        "PUT",
        "/admin/experiments/{name}/weights",
        RestApp._set_weights,
        "setExperimentWeights",
        "Change the split live (next request); recorded with time and actor",
        ("experiment",),
        {
            200: doc.json_response("WeightChange", "The change, in force."),
            400: doc.BAD,
            401: doc.UNAUTHORIZED,
            404: doc.UNKNOWN_EXPERIMENT,
            413: doc.TOO_LARGE,
            503: doc.UNAVAILABLE,
        },
        (doc.EXPERIMENT_NAME,),
        doc.json_body("WeightsRequest", required=True),
        admin=True,
    ),
    _act_route(
        "promote",
        RestApp._promote,
        "Promote the challenger: registry aliases, 100% of the traffic, on record",
    ),
    _act_route(
        "rollback",
        RestApp._rollback,
        "Roll back: traffic (and, after a promotion, the aliases) to the champion",
    ),
    Route(
        "GET",
        "/ui",
        RestApp._ui_page,
        "dashboard",
        "The dashboard page (self-contained; it reads /ui/api/dashboard with the admin token)",
        ("ui",),
        {200: doc.DASHBOARD_PAGE},
    ),
    Route(
        "GET",
        "/ui/api/dashboard",
        RestApp._ui_dashboard,
        "dashboardData",
        "What the dashboard shows: live weights and split, SRM, per-arm metrics with intervals, "
        "daily recall and alert rate, latency, the ledger pipeline, the decision and its reasons",
        ("ui",),
        {
            200: doc.json_response("Dashboard", "The dashboard's figures."),
            401: doc.UNAUTHORIZED,
            503: doc.UNAVAILABLE,
        },
        admin=True,
    ),
    Route(
        "GET",
        "/metrics",
        RestApp._metrics,
        "metrics",
        "Prometheus metrics",
        ("operations",),
        {200: doc.METRICS_OK},
    ),
    Route(
        "GET",
        "/openapi.json",
        RestApp._openapi_json,
        "openapi",
        "This document",
        ("operations",),
        {200: doc.json_response({"type": "object"}, "The OpenAPI document.")},
    ),
)


def _check_fast_path(routes: tuple[Route[Handler], ...]) -> None:
    """The prefix/suffix test in `RestApp.__call__` takes exactly the table's inference routes.

    Every inference route is a POST under ``/v2/models/`` ending in ``/infer``, and no other POST
    route is, so a request the test sends to `_infer` is one the table would send there too (or a
    404 either way).
    """
    for route in routes:
        infers = route.handler is RestApp._infer_route
        path = route.path
        shaped = route.method == "POST" and path.startswith(_MODELS) and path.endswith(_INFER)
        if infers != shaped:
            raise RuntimeError(
                f"route {route.method} {route.path}: the inference fast path expected "
                f"{'it' if infers else 'no other route'} to be a POST {_MODELS}...{_INFER}"
            )


_check_fast_path(ROUTES)
ROUTER: Router[Handler] = Router(ROUTES)

__all__ = ["ROUTES", "ROUTER", "Call", "Reply", "RestApp", "ModelNotFound"]
