"""SIGKILL under load, for both ways a decision is made durable before the 200:

* ``acknowledge: journal`` (the default), with the server AND its child shipper killed at once:
  nothing ships the journal any more, so `fraudgate ledger ship --once` (what a restarted server
  or a sidecar does) must find every acknowledged decision there;
* ``acknowledge: commit``: the 200 waits for the store's group commit.

The SQLite runs of the default journal with only the server killed are in test_experiment_server,
the PostgreSQL replicas in test_postgres_replicas.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
import yaml
from experiment_config import wait_ready, write_config
from load import assert_acknowledged_are_recorded, keyed, load_then_kill, send_many
from processes import children
from shipped import decisions_when_shipped, for_requests

pytestmark = pytest.mark.slow


def _kill_server_and_shipper(server) -> None:  # type: ignore[no-untyped-def]
    shippers = children(server.proc.pid)
    assert shippers, "the server runs its shipper as a child process"
    for pid in [*shippers, server.proc.pid]:
        os.kill(pid, signal.SIGKILL)


def test_journal_survives_killing_server_and_shipper_together(trained_registry, launch, tmp_path):
    config = write_config(tmp_path / "fraudgate.yaml", trained_registry.tracking_uri)
    server = launch(config, wait=False)
    wait_ready(server)
    results = asyncio.run(
        load_then_kill([(server.url, "journal-kill")], lambda: _kill_server_and_shipper(server))
    )
    server.proc.wait(timeout=10)
    assert any(r.status == 0 for r in results), "the kill did not land mid-load"
    assert all(r.status in (0, 200) for r in results)  # connection errors, never a 5xx
    assert "journal_dir" not in yaml.safe_load(config.read_text())["ledger"]  # the default:
    assert any((tmp_path / "ledger-journal").iterdir()), "the killed server left its journal"
    shipped = subprocess.run(
        [sys.executable, "-m", "fraudgate", "ledger", "ship", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shipped.returncode == 0, shipped.stderr
    assert "shipped" in shipped.stdout + shipped.stderr
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert assert_acknowledged_are_recorded(results, ledger, timeout_s=0) > 500
    assert not any((tmp_path / "ledger-journal").iterdir()), "the adopted journal is cleaned up"


def test_commit_mode_loses_nothing_under_sigkill(trained_registry, launch, tmp_path):
    config = write_config(
        tmp_path / "fraudgate.yaml", trained_registry.tracking_uri, acknowledge="commit"
    )
    server = launch(config, wait=False)
    wait_ready(server)
    results = asyncio.run(
        load_then_kill([(server.url, "commit-kill")], lambda: server.kill(signal.SIGKILL))
    )
    assert any(r.status == 0 for r in results), "the kill did not land mid-load"
    assert all(r.status in (0, 200) for r in results)
    assert not (tmp_path / "ledger-journal").exists()  # commit mode keeps no journal
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert assert_acknowledged_are_recorded(results, ledger, timeout_s=0) > 500


def test_commit_mode_scores_the_mirror_in_the_server(trained_registry, launch, tmp_path):
    """Without a journal there is no shipper to score the copies: the server scores them after
    answering, and each lands in the ledger from the other model, with that model's score."""
    config = write_config(
        tmp_path / "fraudgate.yaml", trained_registry.tracking_uri, acknowledge="commit"
    )
    server = launch(config)
    results = asyncio.run(send_many(server.url, keyed("commit-mirror", 400)))
    assert all(r.status == 200 for r in results)
    server.stop()  # SIGTERM: the queued mirror decisions are flushed
    decisions = decisions_when_shipped(
        f"sqlite:///{tmp_path / 'ledger.db'}", for_requests([r.request_id for r in results]), 800
    )
    served = {d.request_id: d for d in decisions if d.role == "served"}
    mirror = {d.request_id: d for d in decisions if d.role == "mirror"}
    assert set(served) == set(mirror) == {r.request_id for r in results}
    # every request sends the same features: a model scores them alike, served or mirror
    score_of = {d.model_name: d.score for d in served.values()}
    assert len(score_of) == 2
    for request_id, copy in mirror.items():
        assert copy.model_name != served[request_id].model_name
        assert copy.score == pytest.approx(score_of[copy.model_name], abs=1e-6)
