"""Model management as an attacker and an unlucky operator would try it, on real servers.

One module-scoped server (the demo's config: experiment, SQLite ledger, admin token) takes most
checks over REST and gRPC; small extra servers cover ``server.model_management: off``, no token
configured and a corrupt model at start-up. Tests run in file order and share the servers.
"""

from __future__ import annotations

import grpc
import httpx
import orjson
import pytest
from experiment_config import TOKEN, V2, write_config

from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

AUTH = {"authorization": f"Bearer {TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="module")
def served(trained_registry, module_launch, tmp_path_factory):
    root = tmp_path_factory.mktemp("management")
    config = write_config(root / "fraudgate.yaml", trained_registry.tracking_uri)
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
