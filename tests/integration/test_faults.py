"""Fault injection against real server processes: what breaks around the server must never turn
an acknowledged decision into a lost or a duplicated one.

* a full disk under the journal (a real 1 MiB tmpfs): appends fail, the requests of those ticks
  get a clear 503, every 200 is in the ledger exactly once, and serving recovers by itself once
  the shipper has moved the full segment out;
* a store that refuses writes (PostgreSQL privileges revoked while serving): with the journal the
  server keeps answering and the shipper retries, and once writes are allowed again every 200 is
  in the ledger exactly once; with ``acknowledge: commit`` a refused write is a 503, never a 200.

SIGKILL of the server, of its shipper and of both under load are in test_acknowledge_modes,
test_experiment_server and test_supervision, with a deleted journal directory and a locked
SQLite ledger.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from experiment_config import wait_ready, write_config
from load import Result, endless, keyed, send_many, served_exactly_once

pytestmark = pytest.mark.slow


def load_until(
    url: str, prefix: str, done: Callable[[list[Result]], bool], limit_s: float
) -> list[Result]:
    """A bounded load (16 connections) that stops once ``done(results so far)`` or at limit_s."""

    async def run() -> list[Result]:
        stop = asyncio.Event()
        results: list[Result] = []
        task = asyncio.create_task(
            send_many(url, endless(prefix), concurrency=16, stop=stop, results=results)
        )
        began = time.monotonic()
        while time.monotonic() - began < limit_s and not task.done() and not done(results):
            await asyncio.sleep(0.05)
        stop.set()
        return await task

    return asyncio.run(run())


def _seconds_after_first(status: int, seconds: float) -> Callable[[list[Result]], bool]:
    first: list[float] = []

    def done(results: list[Result]) -> bool:
        if not first and any(r.status == status for r in results):
            first.append(time.monotonic())
        return bool(first) and time.monotonic() - first[0] > seconds

    return done


def _with_ledger(config: Path, **ledger: object) -> Path:
    data = yaml.safe_load(config.read_text())
    data["ledger"].update(ledger)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


# -- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (mounting needs root, as CI and the dev machines have)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_answers_503_loses_nothing_and_recovers(
    trained_registry, launch, tmp_path, tiny_tmpfs
):
    config = write_config(tmp_path / "fraudgate.yaml", trained_registry.tracking_uri)
    _with_ledger(config, journal_dir=str(tiny_tmpfs / "journal"))
    server = launch(config, wait=False)
    wait_ready(server)
    results = load_until(server.url, "disk", _seconds_after_first(503, 1.0), limit_s=60)
    statuses = Counter(r.status for r in results)
    assert statuses[503] > 0, f"the 1 MiB journal never filled up: {statuses}"
    assert set(statuses) <= {200, 503}, statuses
    refusal = next(r.body["error"] for r in results if r.status == 503)
    assert "could not be recorded" in refusal and "No space left on device" in refusal
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    acknowledged = served_exactly_once(results, ledger)
    # the shipper moves the full segment out and deletes it: serving recovers by itself
    deadline = time.monotonic() + 60
    while True:
        after = asyncio.run(send_many(server.url, keyed(f"after-{time.monotonic_ns()}", 50)))
        if all(r.status == 200 for r in after) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(r.status == 200 for r in after), Counter(r.status for r in after)
    served_exactly_once(after, ledger)
    print(f"full disk: {acknowledged} acknowledged (all once), {statuses[503]} answered 503")


# -- a store that refuses writes -------------------------------------------------------------


@pytest.fixture
def limited_role(pg_schema_url: str) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A ledger URL for a login role that may read and write the (migrated) ledger tables, and
    ``allow(flag)`` that grants or revokes its INSERT privilege while the server runs."""
    from fraudgate.ledger import open_ledger

    open_ledger(pg_schema_url).close()  # the schema, migrated by the owner
    url = sa.make_url(pg_schema_url)
    schema = url.query["options"].split("=", 1)[1]
    role = f"fg_limited_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_schema_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(
            sa.text(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
                f'TO "{role}"'
            )
        )
        conn.execute(sa.text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"'))

    def allow(flag: bool) -> None:
        verb = "GRANT" if flag else "REVOKE"
        direction = "TO" if flag else "FROM"
        with admin.connect() as conn:
            conn.execute(
                sa.text(f'{verb} INSERT ON ALL TABLES IN SCHEMA "{schema}" {direction} "{role}"')
            )

    try:
        yield url.set(username=role).render_as_string(hide_password=False), allow
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_store_refusing_writes_journal_keeps_answering_and_ships_everything_later(
    trained_registry, launch, tmp_path, limited_role, pg_schema_url
):
    ledger_url, allow = limited_role
    config = write_config(tmp_path / "fraudgate.yaml", trained_registry.tracking_uri)
    _with_ledger(config, url=ledger_url)
    server = launch(config, wait=False)
    wait_ready(server)
    before = asyncio.run(send_many(server.url, keyed("refused-before", 200)))
    allow(False)
    try:
        during = load_until(server.url, "refused-during", lambda r: len(r) >= 1500, limit_s=20)
        deadline = time.monotonic() + 30  # the shipper fails and retries meanwhile
        while "shipping the decision journal failed" not in server.log():
            assert time.monotonic() < deadline, "the shipper never met the refusing store"
            time.sleep(0.2)
    finally:
        allow(True)
    results = before + during
    assert all(r.status == 200 for r in results), Counter(r.status for r in results)
    acknowledged = served_exactly_once(results, pg_schema_url)
    print(f"store refusing writes (journal): {acknowledged} acknowledged, all recorded once")


def test_store_refusing_writes_in_commit_mode_is_a_503_never_a_lost_200(
    trained_registry, launch, tmp_path, limited_role, pg_schema_url
):
    ledger_url, allow = limited_role
    config = write_config(
        tmp_path / "fraudgate.yaml", trained_registry.tracking_uri, acknowledge="commit"
    )
    _with_ledger(config, url=ledger_url)
    server = launch(config, wait=False)
    wait_ready(server)
    allow(False)
    try:
        refused = asyncio.run(send_many(server.url, keyed("commit-refused", 100)))
    finally:
        allow(True)
    statuses = Counter(r.status for r in refused)
    assert statuses[503] == 100, statuses
    assert all("could not be recorded" in r.body["error"] for r in refused)
    assert "[SQL" not in refused[0].body["error"], "no SQL text in an error body"
    after = asyncio.run(send_many(server.url, keyed("commit-after", 200)))
    assert all(r.status == 200 for r in after), Counter(r.status for r in after)
    assert served_exactly_once(after, pg_schema_url, timeout_s=0) == 200
    print(f"store refusing writes (commit): {statuses[503]} answered 503, then 200 recorded once")
