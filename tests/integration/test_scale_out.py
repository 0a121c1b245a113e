"""Three `fraudgate serve` replicas behind a real nginx, one PostgreSQL ledger, external shippers.

The scale-out benchmark's own scenario (bench/scale_out.py over bench/_cluster.py), bounded:
one arm per card whichever replica answers, a weight change on one replica reaching every
replica within the poll interval, nothing acknowledged lost or doubled when one replica is
SIGKILLed mid-run (its shipper drains its journal), and `fraudgate report` seeing every
replica's decisions.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import _cluster  # noqa: E402
import scale_out  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(_cluster.NGINX, os.X_OK), reason="nginx not installed"),
]

POLL_S = 0.5
SLACK_S = 1.0  # the poll's own work and a busy machine


def test_three_replicas_behind_nginx(trained_registry, pg_schema_url, compile_cache, tmp_path):
    from fraudgate.config import DEMO_EXPERIMENT

    uris = ("models:/fraud-detection@champion", "models:/fraud-detection@challenger")
    # no shadow mirror here (the bench runs the demo's 100%): the shippers would first load both
    # models to score the copies, ~15 s of a loaded 2-core machine that this test does not need
    text = scale_out.config_text(
        trained_registry.tracking_uri, uris, pg_schema_url, POLL_S, mirror_percent=0
    )
    # no restart of the killed replica here (the bench does it): its shipper drains its journal
    settings = scale_out.Settings(
        requests=600, cards=100, concurrency=16, poll_s=POLL_S, rounds=1, restart=False
    )
    started = time.monotonic()
    cluster = _cluster.start_cluster(
        text, tmp_path / "cluster", env={"XDG_CACHE_HOME": str(compile_cache)}
    )
    print(f"cluster up in {time.monotonic() - started:.1f}s")
    try:
        result = scale_out.measure(
            cluster, pg_schema_url, scale_out.token_of(text), DEMO_EXPERIMENT, settings, tmp_path
        )
    finally:
        cluster.stop()

    phases = {p["name"]: p for p in result["phases"]}
    assert set(phases["nginx #1"]["by_replica"]) == {"0", "1", "2"}  # nginx spread the load
    assert sum(phases["nginx #1"]["by_replica"].values()) == settings.requests
    for key in ("arms_before_change", "arms_after_change"):
        arms = result[key]
        assert arms["cards"] == settings.cards
        assert arms["cards_on_several_replicas"] == settings.cards
        assert arms["cards_with_two_arms"] == 0, key

    propagation = result["propagation"]
    assert propagation["old"] != propagation["new"]
    assert propagation["max_s"] is not None
    assert propagation["max_s"] <= POLL_S + SLACK_S, propagation

    killed = phases["nginx, replica 2 SIGKILLed"]
    assert killed["by_replica"].get("2", 0) > 0  # it answered before the kill
    # what failed was in flight on it (502 from nginx, or the connection closed: status 0) or
    # sent on nginx's keep-alive connection to it before nginx marked it down
    failed = sum(n for status, n in killed["statuses"].items() if status != "200")
    assert set(killed["statuses"]) <= {"0", "200", "502"}
    assert failed <= 2 * settings.concurrency, killed["statuses"]
    for check in (result["ledger_before_kill"], result["kill"]["ledger"], result["ledger_total"]):
        assert check["acknowledged"] > 0
        assert check["missing"] == check["duplicated"] == check["wrong_model"] == 0, check
        assert check["recorded"] == check["acknowledged"]

    total = result["ledger_total"]
    served = result["ledger_rows"]["served"]
    assert served == total["acknowledged"] + total["unacknowledged_recorded"]
    assert result["ledger_rows"]["mirror"] == 0
    report = result["report"]
    assert report["exit_code"] == 0
    assert report["total_transactions"] == served
    assert scale_out.failures(result, settings) == []
