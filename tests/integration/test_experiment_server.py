"""The experiment end to end: two real `fraudgate serve` replicas sharing one SQLite ledger.

Split within binomial tolerance over 10,000 keyed requests, stickiness across a replica and a
restart, seeded keyless assignment, explicit versions bypassing the experiment, the 100% mirror
recorded but never returned, gRPC routing metadata, auth, feedback over HTTP and from the CLI,
and a live weight change under load (through `fraudgate experiment set`) that takes effect on the
next request and reaches the other replica.

Tests run in file order and share the module's two servers (A and B).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
import typer
from experiment_config import EXPERIMENT, TOKEN, V1, V2, wait_ready, write_config
from load import assert_acknowledged_are_recorded, keyed, load_then_kill, payload, send_many
from scipy.stats import binomtest
from shipped import decisions_when_shipped, for_requests
from typer.testing import CliRunner

from fraudgate.cli.experiment import experiment_app, feedback
from fraudgate.ledger import open_ledger
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

N_SPLIT = 10_000
ALPHA = 1e-3  # a correct 80/20 router fails a test at most once in a thousand runs
AUTH = {"authorization": f"Bearer {TOKEN}"}
STATE: dict[str, object] = {}  # results shared by the tests of this module, in order


@pytest.fixture(scope="module")
def cluster(trained_registry, module_launch, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    config = write_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, seed=42, poll_s=0.2
    )
    a = module_launch(config, wait=False)
    b = module_launch(config, wait=False)  # a replica: same config, same ledger
    wait_ready(a)
    wait_ready(b)
    return {"a": a, "b": b, "config": config, "ledger": f"sqlite:///{root / 'ledger.db'}"}


def _arms(results) -> dict[str, str]:
    assert all(r.status == 200 for r in results), [r for r in results if r.status != 200][:3]
    return {r.key: r.model for r in results}


def _keyless_sequence(url: str, n: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return [
            client.post(f"/v2/models/{V1}/infer", content=payload(f"keyless-{i}")).json()[
                "model_name"
            ]
            for i in range(n)
        ]


def test_two_replicas_bound_port_zero_and_report_their_own_ports(cluster):
    """Started together, the replicas let the system choose their ports (no free-port race, CI's
    'address already in use'); each ready file names its own process and ports that answer."""
    a, b = cluster["a"], cluster["b"]
    reports = [orjson.loads(server.ready_file.read_bytes()) for server in (a, b)]
    assert [r["pid"] for r in reports] == [a.proc.pid, b.proc.pid]
    assert len({a.http_port, a.grpc_port, b.http_port, b.grpc_port}) == 4
    assert "--http-port 0 --grpc-port 0" in " ".join(a.proc.args)
    for server in (a, b):
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
        with grpc.insecure_channel(server.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


def test_keyless_requests_follow_the_seed_in_every_process(cluster):
    # the first keyless requests each process sees: identical sequences (same seed)
    seq_a = _keyless_sequence(cluster["a"].url, 300)
    seq_b = _keyless_sequence(cluster["b"].url, 300)
    assert seq_a == seq_b
    assert set(seq_a) == {V1, V2}
    assert binomtest(seq_a.count(V2), len(seq_a), 0.2).pvalue > ALPHA


def test_split_within_binomial_tolerance_and_sticky_on_a_replica(cluster):
    results = asyncio.run(send_many(cluster["a"].url, keyed("split", N_SPLIT)))
    arms = _arms(results)
    assert len(arms) == N_SPLIT
    n_v2 = sum(1 for model in arms.values() if model == V2)
    test = binomtest(n_v2, N_SPLIT, 0.2)
    assert test.pvalue > ALPHA, (n_v2, test)
    for r in results:
        assert r.route == f":{r.model}_1:"
        assert r.body["model_version"] == "1"
        assert r.body["parameters"]["experiment"] == EXPERIMENT
        assert len(r.body["parameters"]["routing_key_hash"]) == 16
        assert len(r.body["outputs"]) == 2  # the served answer only, never the mirror's
    # the same keys on the other replica: the same arms (the hash is salted, not hash())
    replica = asyncio.run(send_many(cluster["b"].url, keyed("replica", 3000)))
    assert _arms(replica) == {k: arms[k] for k in _arms(replica)}
    # the experiment's own name routes like the default model's name
    by_name = asyncio.run(send_many(cluster["a"].url, keyed("byname", 500), model=EXPERIMENT))
    assert _arms(by_name) == {k: arms[k] for k in _arms(by_name)}
    STATE["arms"] = arms
    STATE["split_results"] = results


def test_every_served_request_is_in_the_ledger_with_a_mirror_from_the_other_model(cluster):
    results = STATE["split_results"]
    ids = [r.request_id for r in results]
    # the shipper scores the mirror copies from the journal: give it a moment
    decisions = decisions_when_shipped(cluster["ledger"], for_requests(ids), 2 * len(ids))
    by_request: dict[str, dict[str, object]] = {}
    for d in decisions:
        by_request.setdefault(d.request_id, {})[d.role] = d
    served_by = {r.request_id: r.model for r in results}
    score_of = {r.request_id: r.body["outputs"][0]["data"][0] for r in results}
    assert set(by_request) == set(ids)
    served_score = {r.model: score_of[r.request_id] for r in results}
    assert set(served_score) == {V1, V2}
    for request_id, roles in by_request.items():
        served, mirror = roles["served"], roles.get("mirror")
        assert served.model_name == served_by[request_id] == served.arm
        assert served.experiment == EXPERIMENT and served.transaction_id == request_id
        assert served.score == pytest.approx(score_of[request_id], abs=1e-6)
        assert served.is_fraud_decision == (served.score >= served.threshold)
        assert served.routing_key_hash is not None and served.latency_ms > 0
        assert mirror is not None, f"no mirror decision for {request_id}"
        assert {served.model_name, mirror.model_name} == {V1, V2}  # the other model, always
        assert mirror.arm == served.arm and mirror.routing_key_hash == served.routing_key_hash
        assert mirror.transaction_id == served.transaction_id
        # every request sends the same features: a model scores them alike, served or mirror
        assert mirror.score == pytest.approx(served_score[mirror.model_name], abs=1e-6)
        assert mirror.is_fraud_decision == (mirror.score >= mirror.threshold)


def test_metrics_show_weights_mirror_and_ledger_and_pass_promtool(cluster):
    """After the split test: the experiment's own metrics, linted by Prometheus' promtool."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make test` installs it (Debian package prometheus)")
    exposition = httpx.get(f"{cluster['a'].url}/metrics").text
    values = {}
    for line in exposition.splitlines():
        if line.startswith("fraudgate_") and " " in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values[f'fraudgate_experiment_weight{{experiment="{EXPERIMENT}",model="{V1}"}}'] == 80
    assert values[f'fraudgate_experiment_weight{{experiment="{EXPERIMENT}",model="{V2}"}}'] == 20
    served = values['fraudgate_ledger_decisions_total{role="served"}']
    assert served >= N_SPLIT  # replica a answered the split test (and more)
    # the journal takes the copies to the shipper, which scores them (checked in the ledger)
    assert values['fraudgate_mirror_rows_total{outcome="journaled"}'] == served
    assert values['fraudgate_mirror_rows_total{outcome="scored"}'] == 0
    assert values['fraudgate_mirror_rows_total{outcome="dropped"}'] == 0
    assert values["fraudgate_ledger_write_failures_total"] == 0
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result


def test_explicit_versions_and_other_models_bypass_the_experiment(cluster, trained_registry):
    arms = STATE["arms"]
    v2_keys = [k for k, m in arms.items() if m == V2][:20]
    with httpx.Client(base_url=cluster["a"].url, timeout=10) as client:
        for j, (path, expected) in enumerate(
            [
                (f"/v2/models/{V1}/versions/1/infer", V1),
                (f"/v2/models/{V1}_1/infer", V1),
                (f"/v2/models/{V2}/infer", V2),  # a candidate addressed directly: not routed
                (f"/v2/models/{V2}_1/infer", V2),
            ]
        ):
            keys = v2_keys if expected == V1 else [k for k, m in arms.items() if m == V1][:20]
            for i, key in enumerate(keys):
                body = payload(f"bypass-{j}-{i}", key)
                response = client.post(path, content=body)
                assert response.status_code == 200, response.text
                data = response.json()
                assert data["model_name"] == expected, (path, key)
                assert data["parameters"] == {"experiment": None, "routing_key_hash": None}
                assert response.headers["x-seldon-route"] == f":{expected}_1:"
        # bad routing key -> 400 naming it; unknown names still 404
        bad = client.post(f"/v2/models/{V1}/infer", content=payload("bad-key", card_id=None))
        assert bad.status_code == 200
        body = orjson.loads(payload("bad", None))
        body["parameters"]["card_id"] = [1, 2]
        response = client.post(f"/v2/models/{V1}/infer", content=orjson.dumps(body))
        assert response.status_code == 400 and "card_id" in response.json()["error"]
        assert client.post(f"/v2/models/{EXPERIMENT}_1/infer", content=payload()).status_code == 404
        # the x-routing-key header is a routing key too
        key = v2_keys[0]
        response = client.post(
            f"/v2/models/{V1}/infer", content=payload("hdr"), headers={"x-routing-key": key}
        )
        assert response.json()["model_name"] == V2
    decisions = decisions_when_shipped(cluster["ledger"], for_requests(["bypass-0-0"]), 1)
    assert [(d.role, d.model_name, d.experiment) for d in decisions] == [("served", V1, None)]


def test_grpc_is_routed_and_names_the_model_in_metadata(cluster):
    arms = STATE["arms"]
    with grpc.insecure_channel(cluster["a"].grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for key in list(arms)[:50]:
            request = pb.ModelInferRequest(model_name=V1, id=f"grpc-{key}")
            request.parameters["card_id"].string_param = key
            tensor = request.inputs.add(name="fraud_features", datatype="FP32", shape=[1, 30])
            tensor.contents.fp32_contents.extend([0.1 * i for i in range(30)])
            response, call = stub.ModelInfer.with_call(request)
            assert response.model_name == arms[key]
            assert response.parameters["experiment"].string_param == EXPERIMENT
            assert dict(call.trailing_metadata())["x-seldon-route"] == f":{arms[key]}_1:"
        # routing key from metadata
        key = next(k for k, m in arms.items() if m == V2)
        request = pb.ModelInferRequest(model_name=V1)
        tensor = request.inputs.add(name="fraud_features", datatype="FP32", shape=[1, 30])
        tensor.contents.fp32_contents.extend([0.0] * 30)
        response = stub.ModelInfer(request, metadata=(("x-routing-key", key),))
        assert response.model_name == V2


def test_feedback_and_admin_need_the_bearer_token_inference_does_not(cluster):
    url = cluster["a"].url
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post(f"/v2/models/{V1}/infer", content=payload("open")).status_code == 200
        calls = [
            ("POST", "/feedback", {"labels": []}),
            ("GET", f"/admin/experiments/{EXPERIMENT}", None),
            ("PUT", f"/admin/experiments/{EXPERIMENT}/weights", {"weights": {V1: 1, V2: 1}}),
        ]
        for method, path, body in calls:
            for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": TOKEN}):
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert "Authorization" in response.json()["error"]
                assert response.headers["www-authenticate"] == "Bearer"
        view = client.get(f"/admin/experiments/{EXPERIMENT}", headers=AUTH)
        assert view.status_code == 200
        assert view.json()["experiment"]["candidates"] == [
            {"name": V1, "weight": 80},
            {"name": V2, "weight": 20},
        ]
        assert view.json()["history"][0]["actor"] == "config"
        missing = client.get("/admin/experiments/nope", headers=AUTH)
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        bad = client.put(
            f"/admin/experiments/{EXPERIMENT}/weights",
            json={"weights": {V1: 50, "fraud-v3": 50}},
            headers=AUTH,
        )
        assert bad.status_code == 400 and "weights" in bad.json()["error"]
        negative = client.put(
            f"/admin/experiments/{EXPERIMENT}/weights",
            json={"weights": {V1: -1, V2: 5}},
            headers=AUTH,
        )
        assert negative.status_code == 400 and f"weights.{V1}" in negative.json()["error"]


def test_feedback_over_http_is_idempotent_audited_and_reports_rows(cluster):
    known = [r.request_id for r in STATE["split_results"][:3]]
    labels = [
        {"transaction_id": known[0], "is_fraud": True, "label_time": "2026-03-01T12:00:00Z"},
        {"transaction_id": known[1], "is_fraud": False, "label_time": 1772366400, "amount": 12.5},
        {"transaction_id": known[2], "is_fraud": "false", "label_time": "2026-03-01T12:00:00Z"},
        {"transaction_id": "never-scored", "is_fraud": True, "label_time": "2026-03-02"},
        {"transaction_id": "bad-1", "is_fraud": "maybe", "label_time": "2026-03-02"},
        {"transaction_id": "bad-2", "is_fraud": True},
    ]
    with httpx.Client(base_url=cluster["a"].url, timeout=30, headers=AUTH) as client:
        first = client.post("/feedback", json={"labels": labels}).json()
        assert (first["inserted"], first["updated"], first["unchanged"]) == (4, 0, 0)
        assert first["unknown_transaction_ids"] == ["never-scored"]
        assert [(r["row"], r["field"]) for r in first["rejected"]] == [
            (5, "is_fraud"),
            (6, "label_time"),
        ]
        assert "maybe" in first["rejected"][0]["message"]
        again = client.post("/feedback", json={"labels": labels[:4]}).json()
        assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 4)
        changed = {**labels[0], "is_fraud": False}
        update = client.post("/feedback", json={"labels": [changed], "actor": "investigator"})
        assert update.json()["updated"] == 1
        assert client.post("/feedback", json={"labels": "x"}).status_code == 400
        assert client.post("/feedback", content=b"{").status_code == 400
    store = open_ledger(cluster["ledger"])
    try:
        history = store.label_history(known[0])
        assert store.labels_for([known[0]])[known[0]].is_fraud is False
    finally:
        store.close()
    assert len(history) == 1 and history[0].actor == "investigator"
    assert history[0].old.is_fraud is True and history[0].new.is_fraud is False


def _out(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(experiment_app, name="experiment")
    app.command()(feedback)
    return app


def test_cli_feedback_file_and_experiment_show(cluster, tmp_path: Path):
    known = [r.request_id for r in STATE["split_results"][10:12]]
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "transaction_id,is_fraud,label_time,amount\n"
        f"{known[0]},1,2026-03-01T00:00:00Z,10\n"
        f"{known[1]},0,2026-03-01T00:00:00Z,\n"
        "bad,yes-please,2026-03-01T00:00:00Z,\n"
    )
    runner = CliRunner()
    url = cluster["a"].url
    result = runner.invoke(_cli(), ["feedback", str(csv), "--url", url, "--token", TOKEN])
    assert result.exit_code == 1, result.output  # one row rejected, the good ones stored
    assert "row 3: is_fraud" in _out(result)
    store = open_ledger(cluster["ledger"])
    try:
        assert set(store.labels_for(known)) == set(known)
    finally:
        store.close()
    unusable = tmp_path / "labels.txt"
    unusable.write_text("id,label\n1,0\n")
    result = runner.invoke(_cli(), ["feedback", str(unusable), "--url", url, "--token", TOKEN])
    assert result.exit_code == 2 and "lacks required column" in _out(result)
    result = runner.invoke(_cli(), ["feedback", str(csv), "--url", url, "--token", "wrong-token"])
    assert result.exit_code == 1 and "401" in _out(result)
    # straight into the ledger, no server
    result = runner.invoke(_cli(), ["feedback", str(csv), "--ledger", cluster["ledger"]])
    assert result.exit_code == 1 and "unchanged" in _out(result)
    result = runner.invoke(
        _cli(), ["experiment", "show", "--config", str(cluster["config"]), "--url", url]
    )
    assert result.exit_code == 0, result.output
    assert V1 in result.output and "80" in result.output


def test_restart_keeps_every_card_on_its_arm(cluster, module_launch):
    arms = STATE["arms"]
    cluster["a"].kill()  # SIGKILL: nothing graceful to rely on
    cluster["a"] = module_launch(cluster["config"])
    again = asyncio.run(send_many(cluster["a"].url, keyed("restart", 3000)))
    assert _arms(again) == {k: arms[k] for k in _arms(again)}


def test_weight_change_under_load_takes_effect_on_the_next_request(cluster):
    a, b = cluster["a"], cluster["b"]
    runner = CliRunner()
    marks: dict[str, float] = {}

    def requests():
        i = 0
        while True:
            key = f"live-{i}"
            yield key, key, payload(key, key)
            i += 1

    async def scenario():
        stop = asyncio.Event()
        load = asyncio.create_task(send_many(a.url, requests(), concurrency=16, stop=stop))
        await asyncio.sleep(1.0)
        marks["before"] = time.monotonic()
        result = await asyncio.to_thread(
            runner.invoke,
            _cli(),
            [
                "experiment",
                "set",
                "--weights",
                f"{V1}=20,{V2}=80",
                "--actor",
                "alice",
                "--url",
                a.url,
                "--token",
                TOKEN,
            ],
        )
        marks["after"] = time.monotonic()
        assert result.exit_code == 0, result.output
        assert "alice" in _out(result)
        await asyncio.sleep(1.5)
        stop.set()
        return await load

    results = asyncio.run(scenario())
    assert all(r.status == 200 for r in results)
    before = [r for r in results if r.done_at < marks["before"]]
    after = [r for r in results if r.sent_at > marks["after"]]
    assert len(before) > 200 and len(after) > 200, (len(before), len(after))
    n_before = sum(r.model == V2 for r in before)
    n_after = sum(r.model == V2 for r in after)
    assert binomtest(n_before, len(before), 0.2).pvalue > ALPHA, (n_before, len(before))
    assert binomtest(n_after, len(after), 0.8).pvalue > ALPHA, (n_after, len(after))
    # a ramp only moves the cards in the band that changes hands: v2's cards stay on v2
    arms = STATE["arms"]
    check = asyncio.run(send_many(a.url, keyed("post-change", 2000)))
    for key, model in _arms(check).items():
        if arms[key] == V2:
            assert model == V2
    # recorded with time and actor, visible in the history
    with httpx.Client(base_url=a.url, headers=AUTH, timeout=10) as client:
        view = client.get(f"/admin/experiments/{EXPERIMENT}").json()
    last = view["history"][-1]
    assert last["actor"] == "alice" and last["new"] == {V1: 20, V2: 80}
    assert last["old"] == {V1: 80, V2: 20} and last["at"].endswith("Z")
    # the other replica picks the change up from the shared ledger within its poll interval
    time.sleep(0.6)
    replica = asyncio.run(send_many(b.url, keyed("post-change", 2000)))
    assert _arms(replica) == _arms(check)


def test_sigkill_under_load_loses_no_acknowledged_decision_sqlite(cluster):
    a = cluster["a"]
    results = asyncio.run(
        load_then_kill([(a.url, "kill-sqlite")], lambda: a.proc.send_signal(signal.SIGKILL))
    )
    a.proc.wait(timeout=10)
    assert a.proc.returncode == -signal.SIGKILL
    failed = [r for r in results if r.status != 200]
    assert failed, "the kill did not land mid-load"
    assert all(r.status == 0 for r in failed)  # connection errors, never a 5xx
    assert assert_acknowledged_are_recorded(results, cluster["ledger"]) > 500
