"""Faults in the ledger pipeline of a real server (issue 11, findings 5, 8 and 9):

* the child shipper SIGKILLed under load: the server reaps and restarts it, and every
  acknowledged decision still lands in the ledger exactly once;
* ``shipper: external`` with no shipper: the journal's lag makes the server unready (with the
  reason), and shipping once makes it ready again;
* ``acknowledge: commit`` with the SQLite ledger locked: 503 within ``commit_timeout_ms``, not
  after the busy timeout; unready while stalled, ready again after;
* the journal directory deleted under load: no 200 whose decision is missing, 503s meanwhile,
  serving resumes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from experiment_config import TOKEN, write_config
from load import Result, endless, keyed, load_then_kill, payload, send_many, served_exactly_once
from processes import children

from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(tmp_path: Path, tracking_uri: str, **ledger: object) -> Path:
    """The demo's config without the mirror (no shipper has to load models), ``ledger`` keys."""
    path = write_config(tmp_path / "fraudgate.yaml", tracking_uri, mirror_percent=0)
    data = yaml.safe_load(path.read_text())
    data["ledger"].update(ledger)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _metric(url: str, name: str) -> float | None:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


def _wait_for(check, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/v2/health/ready", timeout=10)


def _grpc_ready(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        return stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


@pytest.fixture(scope="module")
def child(trained_registry, module_launch, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One server with the default journal and child shipper, for the kill and delete tests."""
    tmp_path = tmp_path_factory.mktemp("child-shipper")
    server = module_launch(_config(tmp_path, trained_registry.tracking_uri))
    return server, tmp_path


def test_a_killed_child_shipper_is_restarted_and_nothing_is_lost(child):
    server, tmp_path = child
    (shipper,) = children(server.proc.pid)
    results = asyncio.run(
        load_then_kill(
            [(server.url, "shipper-kill")],
            lambda: os.kill(shipper, signal.SIGKILL),
            kill_after_s=1.0,
            then_s=1.5,
        )
    )
    assert all(r.status == 200 for r in results)
    _wait_for(
        lambda: _metric(server.url, "fraudgate_ledger_shipper_restarts_total") == 1,
        10,
        "the shipper restarted once",
    )
    assert _metric(server.url, "fraudgate_ledger_shipper_up") == 1
    assert shipper not in children(server.proc.pid), "the killed shipper was reaped"
    (restarted,) = children(server.proc.pid)
    assert "restarting it" in server.log() and "SIGKILL" in server.log()
    acknowledged = served_exactly_once(results, f"sqlite:///{tmp_path / 'ledger.db'}")
    print(f"\nshipper SIGKILL: {acknowledged} acknowledged, all found once; restarted {restarted}")
    # a just-acknowledged decision is known to /feedback (its wait for shipping succeeds)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        body = payload("feedback-after-restart", "card-f", transaction_id="tx-after-restart")
        answer = client.post(
            "/v2/models/fraud-v1-baseline/infer",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200
        label = {"transaction_id": "tx-after-restart", "is_fraud": True, "label_time": "2026-03-01"}
        started = time.monotonic()
        fed = client.post("/feedback", json={"labels": [label]}, headers=AUTH).json()
        assert fed["inserted"] == 1 and fed["unknown_transaction_ids"] == []
        assert time.monotonic() - started < 5


def test_an_unshipped_external_journal_makes_the_server_unready_until_shipped(
    trained_registry, launch, tmp_path
):
    config = _config(tmp_path, trained_registry.tracking_uri, shipper="external", max_lag_s=0.5)
    server = launch(config)
    assert _metric(server.url, "fraudgate_ledger_journal_lag_bytes") == 0
    results = asyncio.run(send_many(server.url, keyed("external-lag", 200)))
    assert all(r.status == 200 for r in results)
    response = _wait_for(
        lambda: (r := _ready(server.url)).status_code == 503 and r, 5, "unready from the lag"
    )
    reason = response.json()["error"]
    assert "behind" in reason and "ledger.max_lag_s=0.5" in reason
    assert "fraudgate ledger ship" in reason, reason
    assert not _grpc_ready(server.grpc_address)
    lag_s = _metric(server.url, "fraudgate_ledger_journal_lag_seconds")
    lag_bytes = _metric(server.url, "fraudgate_ledger_journal_lag_bytes")
    assert lag_s is not None and lag_s > 0.5 and lag_bytes is not None and lag_bytes > 0
    assert "fraudgate_ledger_shipper_up" not in httpx.get(f"{server.url}/metrics").text
    shipped = subprocess.run(
        [sys.executable, "-m", "fraudgate", "ledger", "ship", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shipped.returncode == 0, shipped.stderr
    _wait_for(lambda: _ready(server.url).status_code == 200, 5, "ready again once shipped")
    assert _grpc_ready(server.grpc_address)
    assert _metric(server.url, "fraudgate_ledger_journal_lag_bytes") == 0
    found = served_exactly_once(results, f"sqlite:///{tmp_path / 'ledger.db'}", timeout_s=0)
    print(f"\nexternal lag: {lag_s:.1f} s, {lag_bytes:.0f} bytes behind; {found} found once")


def test_commit_mode_with_a_locked_ledger_answers_503_within_the_bound(
    trained_registry, launch, tmp_path
):
    config = _config(
        tmp_path, trained_registry.tracking_uri, acknowledge="commit", commit_timeout_ms=300
    )
    server = launch(config)
    before = asyncio.run(send_many(server.url, keyed("commit-before", 50)))
    assert all(r.status == 200 for r in before)
    lock = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        stalled = asyncio.run(send_many(server.url, keyed("commit-locked", 64), concurrency=16))
        elapsed = time.monotonic() - started
        statuses = Counter(r.status for r in stalled)
        assert statuses == {503: 64}, statuses
        slowest = max(r.done_at - r.sent_at for r in stalled)
        assert slowest < 2.0, f"a 503 took {slowest:.1f} s (bound 0.3 s)"
        one = httpx.post(
            f"{server.url}/v2/models/fraud-v1-baseline/infer",
            content=payload("commit-locked-one", "card-x"),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert one.status_code == 503 and "commit_timeout_ms=300" in one.json()["error"]
        response = _ready(server.url)
        assert response.status_code == 503
        assert "ledger.commit_timeout_ms=300" in response.json()["error"]
        assert "locked" in response.json()["error"]
        assert _metric(server.url, "fraudgate_ledger_commit_timeouts_total") == 65
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    _wait_for(lambda: _ready(server.url).status_code == 200, 10, "ready once the lock is gone")
    after = asyncio.run(send_many(server.url, keyed("commit-after", 50)))
    assert all(r.status == 200 for r in after)
    found = served_exactly_once(before + after, f"sqlite:///{tmp_path / 'ledger.db'}")
    print(f"\ncommit locked: 64 answered 503 in {elapsed:.2f} s (slowest {slowest:.2f} s); {found}")


async def _load_with(url: str, prefix: str, steps: list[tuple[float, object]]) -> list[Result]:
    """Load ``url`` while calling each (delay, action) of ``steps`` in turn, then stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(send_many(url, endless(prefix), stop=stop))
    for delay, action in steps:
        await asyncio.sleep(delay)
        action()  # type: ignore[operator]
    stop.set()
    return await task


def test_a_deleted_journal_directory_loses_no_acknowledged_decision(child):
    """Deleted twice while the shipper is stopped (SIGSTOP), so an acknowledged tail is
    unshipped: first the shipper resumes with the deleted file still open and ships from it (the
    server waits for it to let go, then re-journals only what it did not ship), then the stopped
    shipper is killed instead (the server re-journals the whole tail; a new shipper ships it)."""
    server, tmp_path = child
    journal_dir = tmp_path / "ledger-journal"
    (shipper,) = children(server.proc.pid)
    results = asyncio.run(
        _load_with(
            server.url,
            "journal-deleted",
            [
                (0.5, lambda: os.kill(shipper, signal.SIGSTOP)),
                (1.0, lambda: shutil.rmtree(journal_dir, ignore_errors=True)),
                (1.0, lambda: os.kill(shipper, signal.SIGCONT)),
                (1.5, lambda: os.kill(shipper, signal.SIGSTOP)),
                (1.0, lambda: shutil.rmtree(journal_dir, ignore_errors=True)),
                (1.0, lambda: os.kill(shipper, signal.SIGKILL)),
                (1.5, lambda: None),
            ],
        )
    )
    statuses = Counter(r.status for r in results)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] >= 1, "the append into the deleted file was not acknowledged"
    last = max((r for r in results if r.status == 200), key=lambda r: r.sent_at)
    assert last.sent_at > max(r.sent_at for r in results if r.status == 503), "serving resumed"
    acknowledged = served_exactly_once(results, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert _metric(server.url, "fraudgate_ledger_journal_lost_total") == 2
    name = "fraudgate_ledger_journal_orphaned_decisions_total"
    recovered = _metric(server.url, f'{name}{{outcome="recovered"}}')
    assert recovered is not None and recovered > 0, "the unshipped tail was re-journaled"
    assert _metric(server.url, f'{name}{{outcome="unrecovered"}}') == 0
    _wait_for(lambda: _ready(server.url).status_code == 200, 10, "ready again")
    print(
        f"\njournal deleted: {acknowledged} acknowledged, all found once; {statuses[503]} "
        f"answered 503; {recovered:.0f} re-journaled from the deleted segment"
    )
