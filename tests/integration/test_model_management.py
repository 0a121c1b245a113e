"""Model management as an attacker and an unlucky operator would try it, on real servers.

One module-scoped server (the demo's config: experiment, SQLite ledger, admin token) takes most
checks over REST and gRPC; small extra servers cover ``server.model_management: off``, no token
configured and a corrupt model at start-up. Tests run in file order and share the servers.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import orjson
import pytest
import yaml
from experiment_config import TOKEN, V1, V2, write_config

from fraudgate.config import write_default_config
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

AUTH = {"authorization": f"Bearer {TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {TOKEN}"),)
MAX_EXTRA = 2  # server.max_extra_models of the module's server
CHALLENGER = "models:/fraud-detection@challenger"
WRONG = {"authorization": "Bearer not-the-token-at-all"}


@pytest.fixture(scope="module")
def served(trained_registry, module_launch, tmp_path_factory):
    root = tmp_path_factory.mktemp("management")
    config = write_config(root / "fraudgate.yaml", trained_registry.tracking_uri)
    data = yaml.safe_load(config.read_text())
    data["server"]["max_extra_models"] = MAX_EXTRA
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    server = module_launch(config)
    return {"server": server, "root": root, "ledger": f"sqlite:///{root / 'ledger.db'}"}


@pytest.fixture(scope="module")
def http(served):
    with httpx.Client(base_url=served["server"].url, timeout=60.0) as client:
        yield client


@pytest.fixture(scope="module")
def stub(served):
    with grpc.insecure_channel(served["server"].grpc_address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _parameters(http, name: str) -> dict:
    response = http.get(f"/v2/models/{name}")
    assert response.status_code == 200, response.text
    return response.json()["parameters"] | {"version": response.json()["versions"][0]}


def test_grpc_load_refuses_thresholds_rest_refuses(http, stub):
    before = _parameters(http, V2)
    values = {
        "'5'": pb.ModelRepositoryParameter(string_param="5"),
        "'-1'": pb.ModelRepositoryParameter(string_param="-1"),
        "7": pb.ModelRepositoryParameter(int64_param=7),
        "'nan'": pb.ModelRepositoryParameter(string_param="nan"),
        "True": pb.ModelRepositoryParameter(bool_param=True),
    }
    for shown, value in values.items():
        request = pb.RepositoryModelLoadRequest(model_name=V2, parameters={"threshold": value})
        with pytest.raises(grpc.RpcError) as err:
            stub.RepositoryModelLoad(request, metadata=GRPC_AUTH, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (shown, err.value)
        details = err.value.details()
        assert "parameters.threshold" in details and "between 0 and 1" in details, details
        assert f"received {shown}" in details, details
        # REST refuses the same value with the same message
        body = {"parameters": {"threshold": orjson.loads(orjson.dumps(_plain(value)))}}
        response = http.post(f"/v2/repository/models/{V2}/load", json=body, headers=AUTH)
        assert response.status_code == 400 and "parameters.threshold" in response.text
    assert _parameters(http, V2) == before  # nothing was reloaded
    # a decimal string is how gRPC carries a fraction: accepted
    request = pb.RepositoryModelLoadRequest(
        model_name=V2, parameters={"threshold": pb.ModelRepositoryParameter(string_param="0.25")}
    )
    stub.RepositoryModelLoad(request, metadata=GRPC_AUTH, timeout=60)
    after = _parameters(http, V2)
    assert after["threshold"] == 0.25 and int(after["version"]) == int(before["version"]) + 1


def _plain(value: pb.ModelRepositoryParameter):
    return getattr(value, value.WhichOneof("parameter_choice"))


# -- finding 1: a load from a path the caller chooses runs code in the server -----------------


@pytest.fixture(scope="module")
def evil_model(served, trained_registry) -> tuple[Path, Path]:
    """A copy of the champion's model directory whose code writes a file when it is loaded."""
    import mlflow.artifacts

    from fraudgate.registry import Registry

    registry = Registry(trained_registry.tracking_uri)
    directory = Path(served["root"]) / "evil-model"
    mlflow.artifacts.download_artifacts(
        artifact_uri="models:/fraud-detection@champion",
        tracking_uri=registry.tracking_uri,
        dst_path=str(directory),
    )
    marker = Path(served["root"]) / "pwned.txt"
    code = directory / "mlflow_model.py"
    code.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n" + code.read_text())
    return directory, marker


def _grpc_code(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, timeout=60, **kwargs)
    return err.value.code(), err.value.details()


def _load_request(name: str, **parameters) -> pb.RepositoryModelLoadRequest:
    values = {}
    for key, value in parameters.items():
        if isinstance(value, str):
            values[key] = pb.ModelRepositoryParameter(string_param=value)
        else:
            values[key] = pb.ModelRepositoryParameter(int64_param=value)
    return pb.RepositoryModelLoadRequest(model_name=name, parameters=values)


def test_a_load_from_a_path_never_runs_its_code(http, stub, evil_model):
    directory, marker = evil_model
    uris = [
        str(directory),
        directory.as_uri(),
        f"runs:/0123456789abcdef/{directory.name}",
        "http://127.0.0.1:9/model",
        "https://example.invalid/model",
        "s3://bucket/model",
        "models://profile@databricks/fraud-detection/1",
        "models:/fraud-detection@champion/../../etc",
        "x" * 100_000,
    ]
    for uri in uris:
        body = {"parameters": {"uri": uri}}
        response = http.post("/v2/repository/models/evil/load", json=body)
        assert response.status_code == 401, (uri[:80], response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        response = http.post("/v2/repository/models/evil/load", json=body, headers=WRONG)
        assert response.status_code == 401, response.text
        response = http.post("/v2/repository/models/evil/load", json=body, headers=AUTH)
        assert response.status_code == 400, (uri[:80], response.text)
        error = response.json()["error"]
        assert error.startswith("parameters.uri: expected a model of the configured registry")
        assert "models:/<registered-name>@<alias>" in error
        assert repr(uri)[:100] in error and len(error) < 600  # a bounded quote
        code, _ = _grpc_code(stub.RepositoryModelLoad, _load_request("evil", uri=uri))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        code, details = _grpc_code(
            stub.RepositoryModelLoad, _load_request("evil", uri=uri), metadata=GRPC_AUTH
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "parameters.uri" in details
    assert not marker.exists()
    names = {m["name"] for m in http.post("/v2/repository/index").json()}
    assert "evil" not in names


# -- finding 2: fraud detection switched off without a token ----------------------------------


def test_a_threshold_reload_needs_the_token(http, stub):
    before = _parameters(http, V1)
    body = {"parameters": {"threshold": 1.0}}
    for headers in ({}, WRONG, {"authorization": f"Basic {TOKEN}"}):
        response = http.post(f"/v2/repository/models/{V1}/load", json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert "Authorization" in response.json()["error"]
    for metadata in ((), (("authorization", "Bearer wrong-token-wrong"),)):
        request = pb.RepositoryModelLoadRequest(
            model_name=V1, parameters={"threshold": pb.ModelRepositoryParameter(string_param="1")}
        )
        code, _ = _grpc_code(stub.RepositoryModelLoad, request, metadata=metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED
    assert _parameters(http, V1) == before


def test_an_unload_needs_the_token_and_the_model_keeps_serving(http, stub, trained_registry):
    for headers in ({}, WRONG):
        response = http.post(f"/v2/repository/models/{V1}/unload", headers=headers)
        assert response.status_code == 401, response.text
    code, _ = _grpc_code(stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name=V1))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert http.get(f"/v2/models/{V1}/ready").status_code == 200
    row = [float(v) for v in trained_registry.sample[0]]
    infer = {
        "inputs": [{"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": row}]
    }
    version = _parameters(http, V1)["version"]
    response = http.post(f"/v2/models/{V1}/versions/{version}/infer", json=infer)
    assert response.status_code == 200, response.text


def test_no_token_configured_refuses_model_management(server):
    """The plain session server has no auth section: management is refused, not open."""
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        for action in ("load", "unload"):
            response = client.post(f"/v2/repository/models/{V1}/{action}")
            assert response.status_code == 403, response.text
            error = response.json()["error"]
            assert "auth.token" in error and "auth.token_env" in error, error
        assert client.get(f"/v2/models/{V1}/ready").status_code == 200
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        code, details = _grpc_code(stub.RepositoryModelLoad, _load_request(V1))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "auth.token" in details


def test_model_management_off_refuses_even_with_the_token(
    trained_registry, module_launch, tmp_path_factory
):
    root = tmp_path_factory.mktemp("management-off")
    path = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
    data = yaml.safe_load(path.read_text())
    data["server"]["model_management"] = "off"
    data["auth"] = {"token": TOKEN}
    path.write_text(yaml.safe_dump(data))
    server = module_launch(path)
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        for action in ("load", "unload"):
            response = client.post(f"/v2/repository/models/{V1}/{action}", headers=AUTH)
            assert response.status_code == 403, response.text
            assert "server.model_management: off" in response.json()["error"]
        assert client.post("/v2/repository/index").status_code == 200  # still readable
        assert client.get(f"/v2/models/{V1}/ready").status_code == 200
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        code, details = _grpc_code(stub.RepositoryModelLoad, _load_request(V1), metadata=GRPC_AUTH)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "model_management" in details
        request = pb.RepositoryModelUnloadRequest(model_name=V1)
        code, _ = _grpc_code(stub.RepositoryModelUnload, request, metadata=GRPC_AUTH)
        assert code == grpc.StatusCode.PERMISSION_DENIED


# -- finding 10a: failed loads of new names left permanent FAILED entries ---------------------


def _index(http) -> dict[str, str]:
    response = http.post("/v2/repository/index")
    assert response.status_code == 200, response.text
    return {m["name"]: m["state"] for m in response.json()}


def test_failed_loads_of_new_names_leave_no_entry(http, stub):
    before = _index(http)
    for i in range(150):
        body = {"parameters": {"uri": f"models:/no-such-model-{i}@champion"}}
        response = http.post(f"/v2/repository/models/ghost-{i}/load", json=body, headers=AUTH)
        assert response.status_code == 400 and "no-such-model" in response.text, response.text
    for i in range(50):
        request = _load_request(f"grpc-ghost-{i}", uri=f"models:/no-such-model-{i}/1")
        code, _ = _grpc_code(stub.RepositoryModelLoad, request, metadata=GRPC_AUTH)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert _index(http) == before


def test_names_outside_the_config_are_bounded(http):
    def load(name: str) -> httpx.Response:
        body = {"parameters": {"uri": CHALLENGER}}
        return http.post(f"/v2/repository/models/{name}/load", json=body, headers=AUTH)

    for i in range(MAX_EXTRA):
        response = load(f"extra-{i}")
        assert response.status_code == 200, response.text
    response = load("one-too-many")
    assert response.status_code == 400, response.text
    assert f"server.max_extra_models: {MAX_EXTRA}" in response.json()["error"]
    response = http.post("/v2/repository/models/extra-0/unload", headers=AUTH)
    assert response.status_code == 200, response.text
    response = load("one-too-many")  # the unloaded name makes room
    assert response.status_code == 200, response.text
    index = _index(http)
    assert "extra-0" not in index and index["one-too-many"] == "READY"
    assert len(index) == 2 + MAX_EXTRA
    response = load("bad name/with/" + "x" * 300)
    assert response.status_code == 404  # not a model path at all
    response = load("bad name!" + "x" * 300)
    assert response.status_code == 400 and "model name" in response.json()["error"]
    assert len(response.json()["error"]) < 600
    for i in range(1, MAX_EXTRA):  # leave the repository as the config has it
        assert http.post(f"/v2/repository/models/extra-{i}/unload", headers=AUTH).status_code == 200
    assert http.post("/v2/repository/models/one-too-many/unload", headers=AUTH).status_code == 200


# -- audit: loads, threshold changes and unloads are admin actions in the ledger --------------


def test_admin_actions_are_recorded_in_the_ledger(http, stub, served):
    from fraudgate.ledger import open_ledger

    before = _parameters(http, V1)
    body = {"parameters": {"threshold": 0.6, "actor": "alice"}}
    response = http.post(f"/v2/repository/models/{V1}/load", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    request = pb.RepositoryModelUnloadRequest(
        model_name=V2, parameters={"actor": pb.ModelRepositoryParameter(string_param="bob")}
    )
    stub.RepositoryModelUnload(request, metadata=GRPC_AUTH, timeout=60)
    stub.RepositoryModelLoad(_load_request(V2), metadata=GRPC_AUTH, timeout=60)
    body = {"parameters": {"actor": "x" * 101}}  # past protocol.limits.MAX_ACTOR_CHARS
    response = http.post(f"/v2/repository/models/{V1}/load", json=body, headers=AUTH)
    assert response.status_code == 400 and "parameters.actor" in response.text

    with open_ledger(served["ledger"]) as store:
        actions = store.admin_actions()
    rows = [(a.action, a.model, a.actor) for a in actions]
    assert rows[-3:] == [("load", V1, "alice"), ("unload", V2, "bob"), ("load", V2, "admin-api")]
    alice = actions[-3]
    assert alice.detail["threshold"] == {"old": before["threshold"], "new": 0.6}
    assert alice.detail["version"] == {
        "old": before["version"],
        "new": str(int(before["version"]) + 1),
    }
    assert alice.detail["uri"] == "models:/fraud-detection@champion"
    assert actions[-2].detail["version"] is not None
    # the earlier ones too: the gRPC threshold change and the extra names' loads and unloads
    assert ("load", V2, "admin-api") in rows[:-3]
    assert ("load", "extra-0", "admin-api") in rows and ("unload", "extra-0", "admin-api") in rows
    assert all(a.at > 0 for a in actions) and len(rows) == len(set(map(id, actions)))


# -- finding 4: a corrupt model file killed the process ---------------------------------------

CORRUPT_ALIAS = "corrupt-model-test"


@pytest.fixture(scope="module")
def corrupt_uri(trained_registry) -> str:
    """A new version of fraud-detection whose LightGBM file is truncated (LightGBM crashes)."""
    from fraudgate.registry import Registry

    root = Path(trained_registry.root)
    before = set(root.rglob("booster.txt"))
    Registry(trained_registry.tracking_uri).register(
        trained_registry.champion,
        serving_name="fraud-corrupt",
        alias=CORRUPT_ALIAS,
        threshold=0.5,
        params={},
        metrics={},
    )
    (booster,) = set(root.rglob("booster.txt")) - before
    text = booster.read_text()
    booster.write_text(text[: len(text) // 2])  # cut mid-tree: SIGSEGV in LightGBM's parser
    return f"models:/fraud-detection@{CORRUPT_ALIAS}"


def _assert_corrupt_message(text: str) -> None:
    assert "booster.txt" in text and "the model file is corrupt?" in text, text[-3000:]
    assert "SIGSEGV" in text or "SIGABRT" in text, text[-3000:]


def test_a_corrupt_model_in_a_load_request_fails_and_the_server_stays_up(
    http, served, corrupt_uri, trained_registry
):
    before = _parameters(http, V2)
    body = {"parameters": {"uri": corrupt_uri}}
    response = http.post(f"/v2/repository/models/{V2}/load", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(f"model {V2!r}: loading {corrupt_uri!r} failed")
    _assert_corrupt_message(error)
    assert served["server"].proc.poll() is None
    assert _parameters(http, V2) == before  # the previous version keeps serving
    row = [float(v) for v in trained_registry.sample[0]]
    infer = {
        "inputs": [{"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": row}]
    }
    response = http.post(f"/v2/models/{V2}/versions/{before['version']}/infer", json=infer)
    assert response.status_code == 200, response.text
    assert http.get("/v2/health/ready").status_code == 200


def test_a_corrupt_model_at_start_up_exits_with_a_message(
    trained_registry, corrupt_uri, module_launch, tmp_path_factory
):
    root = tmp_path_factory.mktemp("corrupt-start")
    path = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
    data = yaml.safe_load(path.read_text())
    data["models"][1]["uri"] = corrupt_uri
    path.write_text(yaml.safe_dump(data))
    server = module_launch(path, wait=False)
    code = server.proc.wait(timeout=240)
    log = server.log()
    assert code == 2, (code, log[-3000:])  # not 134/139: no signal killed it
    assert "fraudgate serve: model loading failed" in log and V2 in log, log[-3000:]
    _assert_corrupt_message(log)


def test_an_action_the_ledger_cannot_record_is_refused(http, served):
    """Last: the ledger loses its admin_actions table; a reload is a 503 and nothing changes."""
    import sqlalchemy as sa

    before = _parameters(http, V1)
    engine = sa.create_engine(served["ledger"])
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE admin_actions"))
    engine.dispose()
    body = {"parameters": {"threshold": 1.0}}
    response = http.post(f"/v2/repository/models/{V1}/load", json=body, headers=AUTH)
    assert response.status_code == 503, response.text
    assert "could not be recorded in the ledger" in response.json()["error"]
    response = http.post(f"/v2/repository/models/{V1}/unload", headers=AUTH)
    assert response.status_code == 503, response.text
    assert _parameters(http, V1) == before
    assert http.get(f"/v2/models/{V1}/ready").status_code == 200
