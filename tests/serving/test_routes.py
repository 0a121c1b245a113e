"""The route table drives both REST dispatch and /openapi.json (in process, real data plane).

The app is `RestApp` over a real `DataPlane` (and a real `ExperimentPlane` without a ledger) built
from the demo config; no model is loaded, so model routes answer their documented 503/404 and
nothing here needs MLflow.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jsonschema
import orjson
import pytest
from openapi_schema import json_schema
from openapi_spec_validator import validate

from fraudgate.config import load_config, write_default_config
from fraudgate.serving.dataplane import DataPlane
from fraudgate.serving.experiment import ExperimentPlane
from fraudgate.serving.openapi import openapi_document
from fraudgate.serving.rest import ROUTER, ROUTES, RestApp, _check_fast_path
from fraudgate.serving.routes import (
    MethodNotAllowed,
    Param,
    Response,
    Route,
    RouteNotFound,
    Router,
)

TOKEN = "routes-test-token"
# a value for every path parameter of the table
EXAMPLES = {"name": "fraud-v1-baseline", "version": "1"}


def _unloaded(config: Any) -> Any:
    raise AssertionError(f"no model loads in these tests, asked for {config.name}")


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> RestApp:
    root = tmp_path_factory.mktemp("routes")
    path = write_default_config(root / "fraudgate.yaml", "sqlite:///unused.db", token=TOKEN)
    config = load_config(path)
    plane = ExperimentPlane(config)  # the experiment, no ledger store opened
    dataplane = DataPlane(config, _unloaded, experiment=plane)
    return RestApp(dataplane, max_payload_bytes=1 << 20)


def call(
    app: RestApp, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through the ASGI app; returns status, headers and body."""
    raw_headers = [(b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw_headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, end = sent
    return start["status"], dict(start["headers"]), end["body"]


def concrete(template: str) -> str:
    for name, value in EXAMPLES.items():
        template = template.replace("{" + name + "}", value)
    return template


# -- the table and the document are the same list -----------------------------------------------


def test_every_route_is_documented_and_every_documented_route_is_a_route():
    document = openapi_document(ROUTES)
    validate(document)
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert documented == {(route.method, route.path) for route in ROUTES}
    assert ROUTER.routes == ROUTES
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.operation_id
        assert ("security" in operation) == route.admin
        names = [p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"]
        assert names == [part[1:-1] for part in route.path.split("/") if part.startswith("{")]
        assert set(operation["responses"]) == {str(s) for s in route.responses}
        assert ("requestBody" in operation) == (route.body is not None)


def test_served_document_is_the_tables(app):
    status, headers, body = call(app, "GET", "/openapi.json")
    assert status == 200 and headers[b"content-type"] == b"application/json"
    assert orjson.loads(body) == orjson.loads(orjson.dumps(openapi_document(ROUTES)))


def _check_documented(document: dict[str, Any], route: Route, status: int, body: bytes) -> None:
    responses = document["paths"][route.path][route.method.lower()]["responses"]
    assert str(status) in responses, (route.method, route.path, status, body[:300])
    content = responses[str(status)].get("content", {})
    if "application/json" in content:
        schema = {**content["application/json"]["schema"], "components": document["components"]}
        jsonschema.validate(orjson.loads(body), json_schema(schema))


def test_dispatch_answers_every_documented_path_with_a_documented_status(app):
    """Without a token: admin routes answer 401, the others a documented status; none is a 404
    for want of a route, nor a 405."""
    document = openapi_document(ROUTES)
    for route in ROUTES:
        body = b"{}" if route.body is not None else b""
        status, headers, answer = call(app, route.method, concrete(route.path), body)
        _check_documented(document, route, status, answer)
        assert status not in (405, 500), (route.path, answer)
        assert b"no route" not in answer, (route.path, answer)
        if route.admin:
            assert status == 401 and headers[b"www-authenticate"] == b"Bearer", route.path
        else:
            assert status != 401, (route.path, answer)


def test_admin_routes_with_the_token_reach_the_core(app):
    auth = {"authorization": f"Bearer {TOKEN}"}
    document = openapi_document(ROUTES)
    experiment = app.dataplane.experiment.state.spec.name
    for route in ROUTES:
        if not route.admin:
            continue
        path = route.path.replace("{name}", experiment if "experiments" in route.path else "nope")
        status, _, answer = call(app, route.method, path, b"{bad", auth)
        _check_documented(document, route, status, answer)
        if route.body is not None:  # past the token: the body is read, and refused
            assert status == 400 and b"malformed JSON" in answer, (route.path, answer)
        else:
            assert status == 200, (route.path, answer)
    status, _, answer = call(app, "GET", f"/admin/experiments/{experiment}", headers=auth)
    assert status == 200 and orjson.loads(answer)["experiment"]["name"] == experiment
    status, _, answer = call(app, "GET", "/admin/experiments/other", headers=auth)
    assert status == 404 and b"unknown experiment" in answer


def test_path_parameters_reach_the_handler(app):
    status, _, answer = call(app, "GET", "/v2/models/fraud-v1-baseline/versions/7")
    assert status == 503 and b"fraud-v1-baseline" in answer  # not loaded: NotReady before version
    status, _, answer = call(app, "GET", "/v2/models/no-such-model/ready")
    assert status == 404 and b"no-such-model" in answer
    status, _, answer = call(app, "POST", "/v2/models/no-such-model/versions/2/infer", b"{}")
    assert status == 404 and b"no-such-model" in answer


def test_a_known_path_with_another_method_is_405_with_allow(app):
    by_path: dict[str, set[str]] = {}
    for route in ROUTES:
        by_path.setdefault(route.path, set()).add(route.method)
    for template, methods in by_path.items():
        status, headers, answer = call(app, "DELETE", concrete(template))
        assert status == 405, (template, answer)
        assert set(headers[b"allow"].decode().split(", ")) == methods
        assert b"received DELETE" in answer
    # the inference fast path leaves other methods to the table
    status, headers, _ = call(app, "GET", "/v2/models/fraud-v1-baseline/infer")
    assert status == 405 and headers[b"allow"] == b"POST"


def test_unknown_paths_are_404_naming_the_path(app):
    for path in (
        "/no/such/route",
        "/v2/models/",
        "/v2/models//ready",
        "/v2/models/a/b/c/d/e/f",
        "/v2/repository/models/x/reload",
        "/admin/experiments/",
        "/admin/experiments/x/other",
    ):
        status, _, answer = call(app, "GET", path)
        assert status == 404, (path, answer)
        assert b"no route" in answer and b"/openapi.json" in answer
    status, _, answer = call(app, "POST", "/v2/models/a/b/infer", b"{}")  # the fast path's 404
    assert status == 404


def test_a_trailing_slash_is_ignored(app):
    assert call(app, "GET", "/v2/health/live/")[0] == 200
    status, _, answer = call(app, "POST", "/v2/models/no-such-model/infer/", b"{}")
    assert status == 404 and b"no-such-model" in answer  # inference through the table


# -- the router and the records ------------------------------------------------------------------

_OK = {200: Response("ok")}
_P = Param("name", "path", "a name", {"type": "string"})


def test_router_matches_in_table_order_and_reports_allowed_methods():
    routes = [
        Route("GET", "/a/{name}", "get", "getA", "", (), _OK, (_P,)),
        Route("PUT", "/a/{name}", "put", "putA", "", (), _OK, (_P,)),
        Route("GET", "/a/fixed", "fixed", "fixed", "", (), _OK),
    ]
    router = Router(routes)
    match = router.match("GET", "/a/x")
    assert match.route.handler == "get" and match.params == {"name": "x"}
    assert router.match("GET", "/a/fixed").route.handler == "fixed"
    assert router.match("PUT", "/a/fixed/").params == {"name": "fixed"}
    with pytest.raises(MethodNotAllowed) as err:
        router.match("POST", "/a/x")
    assert err.value.allow == "GET, PUT" and "expected one of GET, PUT" in err.value.message
    with pytest.raises(RouteNotFound):
        router.match("GET", "/a/x/y")


def test_route_records_refuse_inconsistent_declarations():
    with pytest.raises(ValueError, match=r"expected \['name'\]"):
        Route("GET", "/a/{name}", "h", "op", "", (), _OK)
    with pytest.raises(ValueError, match="method"):
        Route("FETCH", "/a", "h", "op", "", (), _OK)
    with pytest.raises(ValueError, match="trailing"):
        Route("GET", "/a/", "h", "op", "", (), _OK)
    with pytest.raises(ValueError, match="declared twice"):
        Router([Route("GET", "/a", "h", "op1", "", (), _OK)] * 2)
    with pytest.raises(ValueError, match="operation id"):
        Router(
            [Route("GET", "/a", "h", "op", "", (), _OK), Route("GET", "/b", "h", "op", "", (), _OK)]
        )


def test_the_inference_fast_path_takes_only_the_tables_inference_routes():
    _check_fast_path(ROUTES)
    infer = [r for r in ROUTES if r.handler is RestApp._infer_route]
    assert {r.path for r in infer} == {
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    }
    shadowed = Route("POST", "/v2/models/{name}/x/infer", RestApp._live, "x", "", (), _OK, (_P,))
    with pytest.raises(RuntimeError, match="no other route"):
        _check_fast_path((*ROUTES, shadowed))


# -- the checks the transports leave to the core -------------------------------------------------


def test_the_core_checks_admin_access_and_the_index_flag(app, tmp_path):
    from fraudgate.protocol.errors import InvalidInput, Unauthorized, Unavailable

    dataplane = app.dataplane
    with pytest.raises(Unauthorized):
        dataplane.experiment_admin(None)
    with pytest.raises(Unauthorized):
        dataplane.experiment_admin("Bearer wrong")
    assert dataplane.experiment_admin(f"Bearer {TOKEN}") is dataplane.experiment
    with pytest.raises(InvalidInput, match="ready: expected a boolean, received 'yes'"):
        dataplane.repository_index_request("yes")
    names = {item["name"] for item in dataplane.repository_index_request(False)}
    assert names == {"fraud-v1-baseline", "fraud-v2-candidate"}
    assert dataplane.repository_index_request(True) == []  # nothing loaded
    status, _, answer = call(app, "POST", "/v2/repository/index", b'{"ready": 1}')
    assert status == 400 and b"ready: expected a boolean" in answer

    plain = load_config(
        write_default_config(tmp_path / "plain.yaml", "sqlite:///unused.db", experiment=False)
    )
    with pytest.raises(Unavailable, match="no experiment or ledger is configured"):
        DataPlane(plain, _unloaded).experiment_admin(f"Bearer {TOKEN}")
