"""Cheap checks of the scale-out harness's pure parts (bench/_cluster.py): no process started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import _cluster  # noqa: E402


def _cluster_of(tmp_path: Path) -> _cluster.Cluster:
    replicas = [_cluster.Replica(i, tmp_path / f"r{i}", 9000 + i, 9100 + i) for i in range(3)]
    nginx = _cluster.Nginx(proc=None, port=8999, root=tmp_path)  # type: ignore[arg-type]
    return _cluster.Cluster(replicas, nginx, {}, 1.0)


def test_the_replica_that_answered_is_the_last_address_nginx_tried(tmp_path):
    cluster = _cluster_of(tmp_path)
    assert cluster.replica_of("127.0.0.1:9001") == 1
    assert cluster.replica_of("127.0.0.1:9002, 127.0.0.1:9000") == 0  # retried after a refusal
    assert cluster.replica_of("127.0.0.1:1234") is None
    assert cluster.replica_of(None) is None


def test_a_card_answered_by_two_arms_is_counted(tmp_path):
    cluster = _cluster_of(tmp_path)
    a = "fraud-v1-baseline"
    answers = [
        _cluster.Answer("r1", "card-1", 200, a, "127.0.0.1:9000"),
        _cluster.Answer("r2", "card-1", 200, a, "127.0.0.1:9001"),
        _cluster.Answer("r3", "card-2", 200, a, "127.0.0.1:9000"),
        _cluster.Answer("r4", "card-2", 200, "fraud-v2-candidate", "127.0.0.1:9002"),
        _cluster.Answer("r5", "card-3", 502, None, "127.0.0.1:9002"),  # not acknowledged
        _cluster.Answer("r6", "card-3", 200, a, None),  # sent to replica 0 directly
    ]
    check = _cluster.check_arms(cluster, answers, direct=0)
    assert check == _cluster.ArmCheck(cards=3, cards_on_several_replicas=2, cards_with_two_arms=1)
    assert _cluster.split_by_replica(cluster, answers) == {"0": 2, "1": 1, "2": 1, "direct": 1}


def test_keyed_requests_cycle_the_cards_and_carry_them_as_routing_keys():
    requests = _cluster.keyed_requests("p", 7, cards=3)
    assert [r.card for r in requests] == ["card-0", "card-1", "card-2"] * 2 + ["card-0"]
    body = orjson.loads(requests[4].body)
    assert body["id"] == requests[4].request_id == "p-4"
    assert body["parameters"]["card_id"] == "card-1"
    assert body["parameters"]["transaction_id"] == "p-4"
    assert body["inputs"][0]["shape"] == [1, 30] and len(body["inputs"][0]["data"]) == 30


def test_nginx_conf_listens_on_loopback_with_every_replica_upstream(tmp_path):
    conf = _cluster.nginx_conf(tmp_path, 8999, ["127.0.0.1:9000", "127.0.0.1:9001"])
    assert "daemon off;" in conf and "listen 127.0.0.1:8999;" in conf
    assert conf.count("server 127.0.0.1:90") == 2 and "keepalive 64;" in conf
    assert f"pid {tmp_path / 'nginx.pid'};" in conf
    assert "add_header X-Fraudgate-Upstream $upstream_addr always;" in conf
    assert "non_idempotent" not in conf  # a POST sent to a replica is never retried elsewhere


@pytest.mark.skipif(not os.access(_cluster.NGINX, os.X_OK), reason="nginx not installed")
def test_nginx_accepts_the_conf(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(_cluster.nginx_conf(tmp_path, 8999, ["127.0.0.1:9000"]))
    argv = [_cluster.NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log")]
    done = subprocess.run([*argv, "-c", str(conf)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr
