"""Hostile input against a real server on a real PostgreSQL ledger (issue 11, findings 3 and 10d).

One server for the module (journal + child shipper into a fresh PostgreSQL schema). Before the
fixes, an over-long or NUL-carrying id was answered 200 and journaled; the shipper then failed on
that line forever (no later decision reached the ledger), a 100k-character actor was a 503 with
the SQL text in the body, and a feedback batch's answer listed every unknown id.
"""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml
from experiment_config import EXPERIMENT, TOKEN, V1, V2, write_config
from load import payload

from fraudgate.ledger import Decision, DecisionBatch, open_ledger
from fraudgate.ledger.journal import Journal
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

AUTH = {"authorization": f"Bearer {TOKEN}"}
MAX_LABELS = 300  # ledger.feedback_max_labels of the module's server
INFER = f"/v2/models/{V1}/infer"


@pytest.fixture(scope="module")
def pg_module(pg_database):
    """A fresh schema for the module's server: (ledger URL, schema name)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{pg_database}?options=-csearch_path%3D{schema}", schema


@pytest.fixture(scope="module")
def server(trained_registry, module_launch, tmp_path_factory, pg_module):
    root = tmp_path_factory.mktemp("hostile")
    config = write_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, ledger_url=pg_module[0]
    )
    data = yaml.safe_load(config.read_text())
    data["ledger"]["feedback_max_labels"] = MAX_LABELS
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return module_launch(config)


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _recorded(url: str, request_ids: list[str], timeout_s: float = 20.0) -> int:
    """How many of ``request_ids`` reached the ledger within ``timeout_s``."""
    store = open_ledger(url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            found = {d.request_id for d in store.decisions_for_requests(request_ids)}
            if len(found) == len(request_ids) or time.monotonic() > deadline:
                return len(found)
            time.sleep(0.2)
    finally:
        store.close()


def test_bad_ids_are_400_and_the_ledger_keeps_flowing(server, client, pg_module):
    bad = {
        "id over 200": payload("x" * 201, card_id="c1"),
        "NUL in id": payload("nul\x00id", card_id="c1"),
        "NUL in transaction_id": payload("ok-1", card_id="c1", transaction_id="t\x00x"),
        "transaction_id over 200": payload("ok-2", card_id="c1", transaction_id="t" * 201),
        "control char in routing key": payload("ok-3", card_id="c\x01"),
        "routing key over 200": payload("ok-4", card_id="k" * 201),
    }
    answers = {name: client.post(INFER, content=body) for name, body in bad.items()}
    good = [f"flow-{uuid.uuid4().hex[:8]}-{i}" for i in range(200)]
    statuses = [client.post(INFER, content=payload(i, card_id=i)).status_code for i in good]
    assert statuses == [200] * 200
    recorded = _recorded(pg_module[0], good)
    reached = f"{recorded} of the next 200 decisions reached the ledger"
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(bad, 400), reached
    assert recorded == 200, reached
    for name, field in (
        ("id over 200", "id"),
        ("NUL in transaction_id", "parameters.transaction_id"),
        ("routing key over 200", "card_id"),
    ):
        error = answers[name].json()["error"]
        assert field in error and "expected" in error and "received" in error, error
        assert len(error) < 600, error
    assert "U+0000" in answers["NUL in id"].json()["error"]


def test_limits_hold_over_grpc(server):
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for request_id, key in (("g" * 201, "c1"), ("grpc-ok", "k\x00")):
            request = pb.ModelInferRequest(model_name=V1, id=request_id)
            request.parameters["card_id"].string_param = key
            tensor = request.inputs.add(name="fraud_features", datatype="FP32", shape=[1, 30])
            tensor.contents.fp32_contents.extend([0.1 * i for i in range(30)])
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "expected" in caught.value.details()


def test_long_actors_are_400_not_503(client):
    label = {"transaction_id": "t-actor", "is_fraud": True, "label_time": 1.7e9}
    answer = client.post(
        "/feedback", json={"labels": [label], "actor": "a" * 100_000}, headers=AUTH
    )
    assert answer.status_code == 400, answer.text
    assert "actor" in answer.json()["error"] and len(answer.text) < 600
    weights = client.put(
        f"/admin/experiments/{EXPERIMENT}/weights",
        json={"weights": {V1: 80, V2: 20}, "actor": "x\x00y"},
        headers=AUTH,
    )
    assert weights.status_code == 400 and "actor" in weights.json()["error"]


def test_feedback_answer_is_summarised_and_bounded(client):
    run = uuid.uuid4().hex[:8]
    unknown = [
        {"transaction_id": f"unknown-{run}-{i}", "is_fraud": False, "label_time": 1.7e9}
        for i in range(180)
    ]
    rejected = [{"transaction_id": f"bad-{i}", "is_fraud": "maybe"} for i in range(120)]
    body = client.post("/feedback", json={"labels": unknown + rejected}, headers=AUTH).json()
    assert body["inserted"] == 180 and body["unknown_count"] == 180
    assert len(body["unknown_transaction_ids"]) == 100
    assert body["rejected_count"] == 240  # two bad fields per row
    assert len(body["rejected"]) == 100
    too_many = client.post("/feedback", json={"labels": unknown * 2}, headers=AUTH)
    assert too_many.status_code == 413, too_many.text
    error = too_many.json()["error"]
    assert "labels" in error and str(MAX_LABELS) in error and "360" in error


def test_quarantined_lines_are_counted_in_metrics(server, client, pg_module):
    """A line the store refuses (written past the server's checks) is quarantined, counted."""
    store = open_ledger(pg_module[0])
    ledger_id = store.ledger_id()
    store.close()
    journal_dir = yaml.safe_load(server.config_path.read_text())["ledger"].get("journal_dir")
    root = server.config_path.parent / (journal_dir or "ledger-journal")
    journal = Journal(root, ledger_id)
    row = Decision("r" * 300, "t-q", 1.7e9, "exp", V1, "served", V1, "1", 0.5, 0.5, True, 0.1)
    journal.append([DecisionBatch.of([row, row])])
    journal.close()  # the server's shipper adopts it
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        metrics = client.get("/metrics").text
        if "fraudgate_ledger_quarantined_rows 2.0" in metrics:
            break
        time.sleep(0.3)
    assert "fraudgate_ledger_quarantined_rows 2.0" in metrics
    assert "fraudgate_ledger_quarantined_lines 1.0" in metrics


def test_postgresql_errors_reach_clients_without_sql(client, pg_module):
    url, schema = pg_module
    engine = sa.create_engine(url.split("?")[0], isolation_level="AUTOCOMMIT")
    label = {"transaction_id": "t-nosql", "is_fraud": True, "label_time": 1.7e9}
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER TABLE "{schema}".labels RENAME TO labels_moved'))
            conn.execute(sa.text(f'ALTER TABLE "{schema}".weight_changes RENAME TO wc_moved'))
        feedback = client.post("/feedback", json={"labels": [label]}, headers=AUTH)
        weights = client.put(
            f"/admin/experiments/{EXPERIMENT}/weights",
            json={"weights": {V1: 80, V2: 20}},
            headers=AUTH,
        )
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER TABLE "{schema}".labels_moved RENAME TO labels'))
            conn.execute(sa.text(f'ALTER TABLE "{schema}".wc_moved RENAME TO weight_changes'))
        engine.dispose()
    for answer in (feedback, weights):
        assert answer.status_code == 503, answer.text
        text = answer.text
        for sql in ("SELECT", "INSERT", "[SQL", "parameters", "%(", "LINE 1"):
            assert sql not in text, text
        assert orjson.loads(text)["error"]
