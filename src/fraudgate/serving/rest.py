"""REST transport: a raw ASGI app (no framework) over the data plane.

Routes (Open Inference Protocol V2 + extensions; the OpenAPI document at ``/openapi.json`` lists
them all): health, server metadata, model metadata/ready/infer (optionally under
``/versions/{version}``), the model repository extension, ``/metrics`` and ``/openapi.json``.

Every error is ``{"error": "..."}`` with the status from `fraudgate.protocol.errors.STATUS_TABLE`;
bad input never yields a 500. The infer path is written for speed: one pass over the headers,
one ``receive`` for a small body, orjson both ways, two ``send`` calls.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

import orjson

from fraudgate.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    http_status,
)
from fraudgate.protocol.limits import preview
from fraudgate.protocol.rest_codec import encode_infer_response, error_body, parse_infer_request
from fraudgate.serving.dataplane import DataPlane
from fraudgate.serving.experiment import ExperimentPlane
from fraudgate.serving.openapi import openapi_document

log = logging.getLogger(__name__)

_JSON = b"application/json"
_OCTET = b"application/octet-stream"
_MODELS = "/v2/models/"
_REPO_MODELS = "/v2/repository/models/"
_ADMIN_EXPERIMENTS = "/admin/experiments/"
_LIVE = orjson.dumps({"live": True})
_READY = orjson.dumps({"ready": True})
_NOT_READY_SERVER = error_body("server is not ready: models are still loading or none is loaded")


class _Disconnected(Exception):
    pass


class _RouteNotFound(InferenceError):
    pass


class _MethodNotAllowed(InferenceError):
    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


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
        if method == "POST" and path.endswith("/infer") and path.startswith(_MODELS):
            await self._infer(scope, receive, send, path[len(_MODELS) : -len("/infer")])
            return
        try:
            status, body, content_type = await self._route(method, path, scope, receive)
        except _MethodNotAllowed as exc:
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
        await _send(send, status, body, content_type)

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

    # -- everything else -------------------------------------------------------------------------
    async def _route(
        self, method: str, path: str, scope: dict[str, Any], receive: Any
    ) -> tuple[int, bytes, bytes]:
        dp = self.dataplane
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        if path == "/v2/health/live":
            _allow(method, "GET")
            return 200, _LIVE, _JSON
        if path == "/v2/health/ready":
            _allow(method, "GET")
            if dp.ready():
                return 200, _READY, _JSON
            reason = dp.unready_reason()
            if reason is not None:
                return 503, error_body(f"server is not ready: {reason}"), _JSON
            return 503, _NOT_READY_SERVER, _JSON
        if path == "/v2":
            _allow(method, "GET")
            return 200, orjson.dumps(dp.server_metadata()), _JSON
        if path.startswith(_MODELS):
            rest = path[len(_MODELS) :]
            if rest.endswith("/ready"):
                _allow(method, "GET")
                name, version = _split_model_path(rest[: -len("/ready")])
                if dp.model_ready(name, version):
                    return 200, _READY, _JSON
                return (
                    503,
                    error_body(f"model {preview(name)} is not ready (not loaded or still loading)"),
                    _JSON,
                )
            if rest.endswith("/infer"):
                _allow(method, "POST")
            _allow(method, "GET")
            name, version = _split_model_path(rest)
            return 200, orjson.dumps(dp.model_metadata(name, version)), _JSON
        if path == "/v2/repository/index":
            _allow(method, "POST")
            data = await self._json_body(scope, receive)
            ready = data.get("ready", False)
            if not isinstance(ready, bool):
                raise InvalidInput(f"ready: expected a boolean, received {preview(ready)}")
            return 200, orjson.dumps(dp.repository_index(ready_only=ready)), _JSON
        if path.startswith(_REPO_MODELS):
            rest = path[len(_REPO_MODELS) :]
            name, _, action = rest.rpartition("/")
            if action not in ("load", "unload") or not name or "/" in name:
                raise _RouteNotFound(f"path: no route for {preview(path)}")
            _allow(method, "POST")
            authorization = _header(scope, b"authorization")
            dp.authorize_management(authorization)  # before reading what the caller sent
            parameters = (await self._json_body(scope, receive)).get("parameters")
            if action == "unload":
                await dp.unload_model(name, parameters, authorization)
                return 200, orjson.dumps({"name": name, "state": "UNAVAILABLE"}), _JSON
            deployed = await dp.load_model(name, parameters, authorization)
            body = {"name": name, "version": deployed.version, "state": "READY"}
            return 200, orjson.dumps(body), _JSON
        if path == "/feedback":
            _allow(method, "POST")
            plane = self._plane_for_admin(scope)
            result = await plane.feedback(await self._json_body(scope, receive))
            return 200, orjson.dumps(result), _JSON
        if path.startswith(_ADMIN_EXPERIMENTS):
            rest = path[len(_ADMIN_EXPERIMENTS) :]
            experiment, _, action = rest.partition("/")
            if not experiment or action not in ("", "weights"):
                raise _RouteNotFound(f"path: no route for {preview(path)}; see /openapi.json")
            _allow(method, "GET" if not action else "PUT")
            plane = self._plane_for_admin(scope)
            if not action:
                return 200, orjson.dumps(await plane.experiment_view(experiment)), _JSON
            body = await self._json_body(scope, receive)
            return 200, orjson.dumps(await plane.set_weights(experiment, body)), _JSON
        if path == "/metrics":
            _allow(method, "GET")
            return 200, dp.metrics.render(), dp.metrics.content_type.encode()
        if path == "/openapi.json":
            _allow(method, "GET")
            if self._openapi is None:
                self._openapi = orjson.dumps(openapi_document())
            return 200, self._openapi, _JSON
        raise _RouteNotFound(
            f"path: no route for {preview(method)} {preview(path)}; see /openapi.json"
        )

    def _plane_for_admin(self, scope: dict[str, Any]) -> ExperimentPlane:
        plane = self.dataplane.experiment
        if plane is None:
            raise Unavailable(
                "no experiment or ledger is configured; add `experiment:`/`ledger:` sections "
                "to the config"
            )
        plane.check_token(_header(scope, b"authorization"))
        return plane


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise _MethodNotAllowed(
            f"method: expected {allowed} for this path, received {method}", allowed
        )


async def _send(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["RestApp", "ModelNotFound"]
