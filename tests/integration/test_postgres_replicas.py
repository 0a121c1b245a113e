"""Two `fraudgate serve` replicas sharing one PostgreSQL ledger (127.0.0.1:5432, a database
created for the session and dropped afterwards): the same key gets the same arm on both, and
SIGKILLing one of them under load loses no acknowledged decision of either.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from experiment_config import V1, V2, wait_ready, write_config
from load import assert_acknowledged_are_recorded, keyed, load_then_kill, send_many

pytestmark = pytest.mark.slow


def test_replicas_on_postgres_agree_and_survive_sigkill(
    trained_registry, launch, pg_schema_url, tmp_path
):
    config = write_config(
        tmp_path / "fraudgate.yaml", trained_registry.tracking_uri, ledger_url=pg_schema_url
    )
    a = launch(config, wait=False)
    b = launch(config, wait=False)
    wait_ready(a)
    wait_ready(b)

    async def both():
        return await asyncio.gather(
            send_many(a.url, keyed("pg-a", 2000)), send_many(b.url, keyed("pg-b", 2000))
        )

    on_a, on_b = asyncio.run(both())
    arms_a = {r.key: r.model for r in on_a if r.status == 200}
    arms_b = {r.key: r.model for r in on_b if r.status == 200}
    assert len(arms_a) == len(arms_b) == 2000
    assert arms_a == arms_b
    assert set(arms_a.values()) == {V1, V2}

    loaded = asyncio.run(
        load_then_kill(
            [(a.url, "pg-kill-a"), (b.url, "pg-kill-b")],
            lambda: a.proc.send_signal(signal.SIGKILL),
            concurrency=16,
        )
    )
    a.proc.wait(timeout=10)
    assert any(r.status == 0 and r.request_id.startswith("pg-kill-a") for r in loaded)
    assert all(r.status in (0, 200) for r in loaded)
    assert all(r.status == 200 for r in loaded if r.request_id.startswith("pg-kill-b"))
    recorded = assert_acknowledged_are_recorded([*on_a, *on_b, *loaded], pg_schema_url)
    assert recorded > 4500
