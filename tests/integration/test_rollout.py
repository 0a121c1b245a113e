"""Promote, roll back and ramp against two real `fraudgate serve` replicas sharing a PostgreSQL
ledger and an MLflow registry of their own (a copy of the session's, so moving its aliases
touches no other test). The replicas are shared by the module's tests, which run in order:

1. promote, restart, roll back: the right model answers every time, on both replicas;
2. a good challenger is ramped by `fraudgate rollout` (a subprocess, SIGKILLed between steps and
   started again: it resumes, no step repeated or skipped) and promoted;
3. a bad challenger (flags everything) is rolled back at its first failing guardrail; the time
   from the breach being seen to every replica routing to the champion is measured;
4. an alias moved by hand is refused, by the live server and by a restarting one, with what to do.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from experiment_config import EXPERIMENT, TOKEN, V1, V2, write_config

from fraudgate.client import Conflict, FraudgateClient
from fraudgate.config import load_config
from fraudgate.ledger import open_ledger
from fraudgate.registry import Registry

pytestmark = pytest.mark.slow

AUTH = {"authorization": f"Bearer {TOKEN}"}


def _alert_rate(booster, rows: np.ndarray, threshold: float) -> float:
    return float(np.mean(booster.predict(rows) >= threshold))


class Traffic:
    """Keyed requests (a new card each) to the experiment on every replica, until stopped."""

    def __init__(self, urls: list[str], rows: np.ndarray) -> None:
        self.urls, self.rows = urls, rows.astype(np.float32)
        self.stop_event = threading.Event()
        self.answered: Counter[str] = Counter()
        self.threads = [threading.Thread(target=self._send, args=(u,)) for u in urls]

    def _send(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            i = 0
            while not self.stop_event.is_set():
                row = self.rows[i % len(self.rows)].tolist()
                body = {
                    "inputs": [
                        {
                            "name": "fraud_features",
                            "shape": [1, 30],
                            "datatype": "FP32",
                            "data": row,
                        }
                    ],
                    "parameters": {"content_type": "np", "card_id": uuid.uuid4().hex},
                }
                response = client.post(f"/v2/models/{V1}/infer", json=body)
                if response.status_code == 200:
                    self.answered[response.json()["model_name"]] += 1
                i += 1
                time.sleep(0.01)

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join()


def _answers(url: str, rows: np.ndarray, n: int = 40) -> Counter[str]:
    """Which model answers ``n`` keyed requests to the experiment."""
    seen: Counter[str] = Counter()
    with FraudgateClient(url) as client:
        for i in range(n):
            result = client.score(rows[i % len(rows)], model=V1, routing_key=f"probe-{i}")
            seen[result.model_name] += 1
    return seen


def _metadata_version(url: str, name: str) -> str:
    body = httpx.get(f"{url}/v2/models/{name}", timeout=10).json()
    return body["parameters"]["mlflow_model_version"]


def _weights(url: str) -> dict[str, int]:
    with FraudgateClient(url, token=TOKEN) as client:
        return client.get_experiment(EXPERIMENT).weights


def _wait_weights(urls: list[str], expected: dict[str, int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_weights(u) != expected for u in urls):
        assert time.monotonic() < deadline, [_weights(u) for u in urls]
        time.sleep(0.05)


def _reload(urls: list[str], name: str, threshold: float) -> None:
    for url in urls:
        response = httpx.post(
            f"{url}/v2/repository/models/{name}/load",
            json={"parameters": {"threshold": str(threshold), "actor": "test"}},
            headers=AUTH,
            timeout=60,
        )
        assert response.status_code == 200, response.text


class Replicas:
    def __init__(self, launch, config: Path, tracking_uri: str, ledger_url: str) -> None:
        self.launch, self.config = launch, config
        self.tracking_uri, self.ledger_url = tracking_uri, ledger_url
        self.a = launch(config, wait=False)
        self.b = launch(config, wait=False)
        self.a.wait_ready(600)  # a loaded machine: two cold starts compile the models
        self.b.wait_ready(600)

    @property
    def urls(self) -> list[str]:
        return [self.a.url, self.b.url]

    def restart_b(self) -> None:
        self.b.stop()
        self.b = self.launch(self.config, wait=False)
        self.b.wait_ready(600)

    def aliases(self) -> dict[str, str]:
        return role_aliases(Registry(self.tracking_uri).aliases())

    def acts(self, *actions: str) -> list:
        with open_ledger(self.ledger_url) as store:
            return store.experiment_actions(EXPERIMENT, actions=actions or None)


def role_aliases(aliases: dict[str, str]) -> dict[str, str]:
    """The aliases promotion moves (other tests may add their own to the shared registry)."""
    return {k: v for k, v in aliases.items() if k in ("champion", "challenger", "previous")}


@pytest.fixture(scope="module")
def versions(trained_registry) -> dict[str, str]:
    aliases = Registry(trained_registry.tracking_uri).aliases()
    return {V1: aliases["champion"], V2: aliases["challenger"]}


@pytest.fixture(scope="module")
def good_threshold(trained_registry) -> float:
    """The challenger's threshold with the champion's alert rate on the traffic's rows (so the
    alert-rate guardrail has nothing to object to)."""
    rows = trained_registry.sample
    rate = _alert_rate(trained_registry.champion, rows, trained_registry.thresholds[V1])
    assert 0.05 < rate < 0.4  # the bad challenger (everything flagged) then breaches
    scores = trained_registry.challenger.predict(rows)
    return float(np.quantile(scores, 1 - rate))


@pytest.fixture(scope="module")
def replicas(trained_registry, module_launch, pg_database, tmp_path_factory, good_threshold):
    root = tmp_path_factory.mktemp("rollout")
    shutil.copy(trained_registry.root / "mlflow.db", root / "mlflow.db")  # same artefacts
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    ledger_url = f"{pg_database}?options=-csearch_path%3D{schema}"
    config = write_config(
        root / "fraudgate.yaml",
        tracking_uri,
        ledger_url=ledger_url,
        poll_s=0.1,
        acknowledge="commit",
        weights=(80, 20),
    )
    data = yaml.safe_load(config.read_text())
    data["models"][1]["threshold"] = good_threshold
    data["analysis"] = {"guardrails": {"max_alert_rate_increase": 0.5}}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return Replicas(module_launch, config, tracking_uri, ledger_url)


def _rollout_config(replicas: Replicas, path: Path, rollout: dict) -> Path:
    data = yaml.safe_load(replicas.config.read_text())
    data["rollout"] = {"servers": replicas.urls, **rollout}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_promote_restart_rollback_serves_the_right_model(replicas, versions, trained_registry):
    rows = trained_registry.sample
    a = replicas.a.url
    assert set(_answers(a, rows)) == {V1, V2}  # 80/20 as configured
    with FraudgateClient(a, token=TOKEN) as client:
        promoted = client.act(EXPERIMENT, "promote", "v2 wins on recall", "alice")
        assert promoted.state["champion"] == V2 and promoted.weights == {V1: 0, V2: 100}
        with pytest.raises(Conflict, match="already the champion"):
            client.act(EXPERIMENT, "promote", "again", "alice")
    assert replicas.aliases() == {"champion": versions[V2], "previous": versions[V1]}
    _wait_weights(replicas.urls, {V1: 0, V2: 100})
    for url in replicas.urls:
        assert _answers(url, rows) == {V2: 40}
    # a restarted replica serves exactly what the live ones serve: same names, same versions
    replicas.restart_b()
    b = replicas.b.url
    assert _metadata_version(b, V1) == versions[V1]
    assert _metadata_version(b, V2) == versions[V2]
    assert _weights(b) == {V1: 0, V2: 100} and _answers(b, rows) == {V2: 40}

    with FraudgateClient(b, token=TOKEN) as client:
        back = client.act(EXPERIMENT, "rollback", "precision dropped", "bob")
    assert back.state["champion"] == V1 and back.weights == {V1: 100, V2: 0}
    assert replicas.aliases() == {"champion": versions[V1], "challenger": versions[V2]}
    _wait_weights(replicas.urls, {V1: 100, V2: 0})
    for url in replicas.urls:
        assert _answers(url, rows) == {V1: 40}
        assert _metadata_version(url, V1) == versions[V1]

    acts = replicas.acts("promote", "rollback")
    assert [(x.action, x.actor, x.reason) for x in acts] == [
        ("promote", "alice", "v2 wins on recall"),
        ("rollback", "bob", "precision dropped"),
    ]
    assert role_aliases(acts[1].detail["state"]["aliases"]) == replicas.aliases()


def _rollout_process(config: Path, url: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fraudgate", "rollout", "--config", str(config), "--url", url],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**__import__("os").environ, "FRAUDGATE_ADMIN_TOKEN": TOKEN},
    )


def test_good_challenger_ramped_and_promoted_resuming_after_sigkill(
    replicas, versions, trained_registry, tmp_path
):
    steps = [
        {"weight": 0, "min_duration_s": 2.0, "min_sample": 50},
        {"weight": 50, "min_duration_s": 4.0, "min_sample": 50},
        {"weight": 100, "min_duration_s": 1.0, "min_sample": 50},
    ]
    config = _rollout_config(
        replicas,
        tmp_path / "rollout.yaml",
        {"steps": steps, "check_interval_s": 0.3, "promote": "at_end"},
    )
    log = tmp_path / "rollout.log"
    processes: list[subprocess.Popen] = []
    try:
        with Traffic(replicas.urls, trained_registry.sample):
            first = _rollout_process(config, replicas.a.url, log)
            processes.append(first)
            deadline = time.monotonic() + 300
            while not [x for x in replicas.acts("rollout_step") if x.detail["step"] == 1]:
                assert first.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)  # step 1 recorded, its 4 s minimum not over
            first.wait(timeout=10)
            with open_ledger(replicas.ledger_url) as store:
                running = store.running_rollout(EXPERIMENT)
            assert running is not None and running.step == 1
            second = _rollout_process(config, replicas.a.url, log)
            processes.append(second)
            assert second.wait(timeout=300) == 0, log.read_text()
    finally:
        for process in processes:  # only ours, by handle
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert "resuming rollout" in text

    acts = [x for x in replicas.acts() if x.detail.get("rollout") == running.id]
    steps_taken = [x.detail["step"] for x in acts if x.action == "rollout_step"]
    assert steps_taken == [0, 1, 2]  # none repeated, none skipped, across the kill
    kinds = [x.action for x in acts]
    assert kinds[0] == "rollout_start" and kinds[-1] == "rollout_end"
    assert acts[-1].reason.startswith(f"rollout {running.id} promoted")
    promotes = replicas.acts("promote")
    assert len(promotes) == 2 and promotes[-1].detail["evaluation"]["decision"]
    assert replicas.aliases() == {"champion": versions[V2], "previous": versions[V1]}
    for url in replicas.urls:
        assert _weights(url) == {V1: 0, V2: 100}
    with open_ledger(replicas.ledger_url) as store:
        assert store.running_rollout(EXPERIMENT) is None
        weights = [c.new for c in store.weight_history(EXPERIMENT)]
    ramp = [w[V2] for w in weights]
    assert ramp[-4:] == [0, 50, 100, 100]  # steps 0, 1, 2 then the promotion
    metrics = httpx.get(f"{replicas.b.url}/metrics", timeout=10).text
    assert f'fraudgate_rollout_step{{experiment="{EXPERIMENT}"}} -1.0' in metrics


def test_bad_challenger_rolled_back_at_its_first_failing_guardrail(
    replicas, versions, trained_registry, good_threshold, tmp_path
):
    from fraudgate.rollout.controller import RolloutController

    with FraudgateClient(replicas.a.url, token=TOKEN) as client:
        client.act(EXPERIMENT, "rollback", "try v2 again, with a broken threshold", "carol")
    _wait_weights(replicas.urls, {V1: 100, V2: 0})
    _reload(replicas.urls, V2, 0.0)  # the bad challenger: every transaction flagged
    steps = [{"weight": 20, "min_duration_s": 30.0, "min_sample": 50}, {"weight": 100}]
    config = load_config(
        _rollout_config(replicas, tmp_path / "bad.yaml", {"steps": steps, "check_interval_s": 0.2})
    )
    events = []
    try:
        with (
            Traffic(replicas.urls, trained_registry.sample) as traffic,
            open_ledger(replicas.ledger_url) as store,
            FraudgateClient(replicas.a.url, token=TOKEN) as client,
        ):
            controller = RolloutController(
                config, store, client, token=TOKEN, on_event=events.append
            )
            result = controller.run()
    finally:
        _reload(replicas.urls, V2, good_threshold)
    assert result.status == "rolled_back"
    assert "alert" in result.reason
    assert traffic.answered[V2] > 0  # it did serve at 20% before the breach
    assert [e.step for e in events if e.kind == "step"] == [0]  # never reached step 1
    took = result.champion_back_at - result.breach_detected_at
    live = [x for x in replicas.acts("rollout_live") if x.detail["rollout"] == result.rollout_id]
    seen_after = result.breach_detected_at - live[-1].at
    print(
        f"\nbad challenger live on every replica -> breach seen: {seen_after * 1000:.0f} ms; "
        f"breach seen -> every replica routing to the champion: {took * 1000:.0f} ms"
    )
    assert 0 < took < 5 and 0 < seen_after < 30
    for url in replicas.urls:
        assert _weights(url) == {V1: 100, V2: 0}
    assert replicas.aliases() == {"champion": versions[V1], "challenger": versions[V2]}
    rollback = replicas.acts("rollback")[-1]
    assert rollback.actor == "fraudgate-rollout" and "alert" in rollback.reason
    snapshot = rollback.detail["evaluation"]
    assert snapshot["experiment"] == EXPERIMENT and "days" not in snapshot
    end = replicas.acts("rollout_end")[-1]
    assert json.dumps(end.detail["champion_back_at"])


def test_a_hand_moved_alias_is_refused_live_and_at_start(replicas, versions):
    registry = Registry(replicas.tracking_uri)
    registry.set_aliases({"champion": versions[V2]})
    try:
        with (
            FraudgateClient(replicas.a.url, token=TOKEN) as client,
            pytest.raises(Conflict, match="point @champion back at version"),
        ):
            client.act(EXPERIMENT, "rollback", "should be refused", "alice")
        replicas.b.stop()
        refused = replicas.launch(replicas.config, wait=False)
        assert refused.proc.wait(timeout=120) == 2
        log = refused.log()
        assert "refusing to start" in log and "@champion" in log and "serve the wrong model" in log
    finally:
        registry.set_aliases({"champion": versions[V1]})
