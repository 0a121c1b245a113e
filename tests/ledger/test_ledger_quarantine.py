"""Journal lines the store refuses are quarantined, never jam the shipper, and re-ship exactly once
(real PostgreSQL, where such lines used to fail their batch forever; real SQLite)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from fraudgate.cli import app
from fraudgate.ledger import (
    Decision,
    DecisionBatch,
    Label,
    LedgerStore,
    open_ledger,
    quarantine,
    validate_label_rows,
)
from fraudgate.ledger.journal import Journal, JournalShipper
from fraudgate.protocol.errors import InvalidInput


def _row(request_id: str, i: int = 0) -> Decision:
    return Decision(request_id, f"t-{i}", 1.7e9 + i, "exp", "m1", "served", "m1", "1", 0.25,
                    0.5, False, 0.1)  # fmt: skip


def _request_counts(store: LedgerStore) -> Counter:
    with store._engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT request_id FROM decisions").fetchall()
    return Counter(r[0] for r in rows)


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result, " ".join(result.output.split())


def test_refused_lines_are_quarantined_the_rest_shipped_once_and_reshipped(
    pg_schema_url: str, tmp_path: Path
):
    root = tmp_path / "journal"
    store = open_ledger(pg_schema_url)
    try:
        journal = Journal(root, store.ledger_id())
        journal.append([DecisionBatch.of([_row("good-0")])])
        long_id = "r" * 300  # past the String(200) column: StringDataRightTruncation
        journal.append([DecisionBatch.of([_row(long_id, 1), _row("sibling", 2)])])
        journal.append([DecisionBatch.of([_row("nul\x00id", 3)])])  # psycopg refuses NUL
        for i in range(1, 6):
            journal.append([DecisionBatch.of([_row(f"good-{i}", 10 + i)])])
        journal.close()

        ship = ("ledger", "ship", "--once", "--nice", "0", "--ledger", pg_schema_url)
        result, out = _invoke(*ship, "--journal", str(root))
        assert result.exit_code == 0, result.output
        assert "shipped 6 decisions" in out and "2 lines (3 decisions)" in out, out
        assert _request_counts(store) == Counter({f"good-{i}": 1 for i in range(6)})
        assert [p.name for p in root.iterdir()] == ["quarantine"], "the journal itself is done"

        result, out = _invoke("ledger", "quarantine", "--journal", str(root))
        assert result.exit_code == 0, result.output
        assert "2 lines, 3 decisions in quarantine" in out
        assert "StringDataRightTruncation" in out and "NUL" in out, out
        assert quarantine.quarantine_summary(root) == quarantine.QuarantineSummary(2, 3)

        reship = ("ledger", "quarantine", "reship", "--ledger", pg_schema_url)
        result, out = _invoke(*reship, "--journal", str(root))
        assert result.exit_code == 1 and "2 lines stay" in out, out  # nothing fixed yet
        assert quarantine.quarantine_summary(root) == quarantine.QuarantineSummary(2, 3)

        with store._engine.begin() as conn:  # the operator widens the column
            conn.exec_driver_sql("ALTER TABLE decisions ALTER COLUMN request_id TYPE varchar(400)")
        result, out = _invoke(*reship, "--journal", str(root))
        assert result.exit_code == 1 and "re-shipped 1 lines (2 decisions)" in out, out
        result, out = _invoke(*reship, "--journal", str(root))  # nothing goes in twice
        assert "re-shipped 0 lines" in out and "1 lines stay" in out, out
        counts = _request_counts(store)
        assert counts[long_id] == counts["sibling"] == 1 and sum(counts.values()) == 8
        (kept,) = quarantine.records(root)
        assert kept.rows == 1 and "NUL" in kept.reason
        assert set(store.journal_offsets()) == {kept.marker}  # done markers are forgotten
    finally:
        store.close()


def test_a_database_failure_is_retried_not_quarantined(pg_schema_url: str, tmp_path: Path):
    store = open_ledger(pg_schema_url)
    journal = Journal(tmp_path / "journal", store.ledger_id())
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        for i in range(3):
            journal.append([DecisionBatch.of([_row(f"r{i}", i)])])
        with store._engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE decisions RENAME TO decisions_moved")
        with pytest.raises(Exception) as caught:
            shipper.ship_once()
        assert not quarantine.refused_data(caught.value)
        assert shipper.quarantined_lines == 0 and quarantine.records(tmp_path / "journal") == []
        with store._engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE decisions_moved RENAME TO decisions")
        assert shipper.ship_once() == 3
    finally:
        shipper.close()
        journal.close()
        store.close()
    down = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/x")
    with pytest.raises(sa.exc.OperationalError) as refused:
        down.connect()
    assert not quarantine.refused_data(refused.value)


def test_a_record_left_by_a_kill_before_its_commit_is_not_reshipped(
    store: LedgerStore, tmp_path: Path
):
    """A kill between writing the quarantine file and committing the offset leaves a record
    without a marker; if the shipper then ships that line, reship must drop the record."""
    root = tmp_path / "journal"
    journal = Journal(root, store.ledger_id())
    journal.append([DecisionBatch.of([_row("only", 1)])])
    segment, end = journal.position()
    line = next(journal.directory.glob("*.jsonl")).read_bytes().rstrip(b"\n")
    quarantine.add(root, quarantine.QuarantinedLine(segment, 0, end, 1, "killed", 0.0, line))
    journal.close()
    shipper = JournalShipper(store, root)
    try:
        assert shipper.ship_once() == 1
        result = shipper.reship_quarantined()
    finally:
        shipper.close()
    assert (result.shipped_lines, result.kept) == (0, [])
    assert _request_counts(store) == Counter({"only": 1})
    assert quarantine.records(root) == []


def test_store_writes_bound_caller_text_the_same_on_both_backends(store: LedgerStore):
    label = Label("t1", True, 1.7e9)
    with pytest.raises(InvalidInput, match="actor: expected at most 100 characters"):
        store.upsert_labels([label], "a" * 100_000)
    with pytest.raises(InvalidInput, match="actor: .*U\\+0000"):
        store.record_weight_change("exp", {"a": 1.0}, "x\x00y")
    with pytest.raises(InvalidInput, match="transaction_id"):
        store.upsert_labels([Label("t\x00", True, 1.7e9)], "ok")
    assert store.count_labels() == 0 and store.weight_history("exp") == []


def test_label_validation_uses_the_serving_limits():
    rows = [
        {"transaction_id": "a\x00b", "is_fraud": True, "label_time": 1.7e9},
        {"transaction_id": "x" * 201, "is_fraud": True, "label_time": 1.7e9},
        {"transaction_id": "  ok  ", "is_fraud": True, "label_time": 1.7e9},
    ]
    good, errors = validate_label_rows(rows)
    assert [label.transaction_id for label in good] == ["ok"]
    assert [(e.row, e.field) for e in errors] == [(1, "transaction_id"), (2, "transaction_id")]
    assert len(str(errors[1])) < 400  # the received value is quoted, bounded
