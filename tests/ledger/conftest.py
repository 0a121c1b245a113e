"""Real stores for the ledger tests: SQLite in tmp_path, PostgreSQL at 127.0.0.1:5432.

The PostgreSQL run creates its own database (unique name) once per test session and drops it at
the end; each test gets a fresh schema inside it (selected through ``search_path`` in the URL),
which is much cheaper than a database per test. PostgreSQL tests are skipped, with the reason,
only when the server is unreachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fraudgate.ledger import LedgerStore, open_ledger

PG_HOST = os.environ.get("FRAUDGATE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FRAUDGATE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FRAUDGATE_TEST_PG_USER", "postgres")
BACKENDS = ("sqlite", "postgresql")


def _pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin_engine() -> tuple[sa.Engine | None, str]:
    """An AUTOCOMMIT engine on a maintenance database, or (None, why not)."""
    reasons = []
    for maintenance_db in ("postgres", "test"):
        engine = sa.create_engine(
            _pg_url(maintenance_db),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return engine, ""
        except sa.exc.OperationalError as exc:
            engine.dispose()
            reasons.append(f"{maintenance_db}: {str(exc).splitlines()[0]}")
    return None, "; ".join(reasons)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a database created for this test session (dropped afterwards)."""
    admin, why = _admin_engine()
    if admin is None:
        pytest.skip(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} as {PG_USER} ({why})")
    name = f"fraudgate_ledger_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_schema_url(pg_database: str) -> str:
    """A fresh, empty schema in the session database, as a ledger URL."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A URL of an empty ledger location, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(ledger_url: str) -> Iterator[LedgerStore]:
    ledger = open_ledger(ledger_url)
    try:
        yield ledger
    finally:
        ledger.close()
