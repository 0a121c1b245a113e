"""Real stores for the ledger tests: SQLite in tmp_path, and PostgreSQL through the session
database of tests/conftest.py (a fresh schema per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fraudgate.ledger import LedgerStore, open_ledger

BACKENDS = ("sqlite", "postgresql")


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
