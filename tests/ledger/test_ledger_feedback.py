"""Label ingestion: JSON rows, CSV and Parquet files, bad rows with row numbers and reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from fraudgate.ledger import (
    Label,
    LabelFileError,
    RowError,
    open_ledger,
    parse_labels_file,
    validate_label_rows,
)

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()


def test_accepted_spellings() -> None:
    rows = [
        {"transaction_id": "a", "is_fraud": True, "label_time": "2024-05-01T12:00:00Z"},
        {"transaction_id": "b", "is_fraud": 0, "label_time": T, "amount": 12.5},
        {"transaction_id": "c", "is_fraud": "TRUE", "label_time": str(int(T)), "amount": "3"},
        {"transaction_id": "d", "is_fraud": "false", "label_time": "2024-05-01T14:00:00+02:00"},
        {"transaction_id": 17, "is_fraud": 1, "label_time": "2024-05-01 12:00:00", "amount": None},
        {"transaction_id": " e ", "is_fraud": "0", "label_time": int(T), "amount": ""},
    ]
    labels, errors = validate_label_rows(rows)
    assert errors == []
    assert labels == [
        Label("a", True, T),
        Label("b", False, T, 12.5),
        Label("c", True, T, 3.0),
        Label("d", False, T),  # offsets are honoured
        Label("17", True, T),  # no offset means UTC
        Label("e", False, T),
    ]


def test_bad_rows_are_rejected_with_row_number_field_expected_and_received() -> None:
    rows = [
        {"transaction_id": "ok-1", "is_fraud": True, "label_time": T},
        {"transaction_id": "bad-flag", "is_fraud": "maybe", "label_time": T},
        {"transaction_id": "", "is_fraud": True, "label_time": T},
        {"transaction_id": "bad-time", "is_fraud": False, "label_time": "yesterday"},
        {"transaction_id": "ms", "is_fraud": False, "label_time": T * 1000},
        {"transaction_id": "neg", "is_fraud": False, "label_time": T, "amount": -5},
        "not an object",
        {"is_fraud": 2, "label_time": T},
        {"transaction_id": "ok-2", "is_fraud": False, "label_time": T, "extra": "ignored"},
    ]
    labels, errors = validate_label_rows(rows)
    assert [label.transaction_id for label in labels] == ["ok-1", "ok-2"]  # good rows kept
    by_row = {(e.row, e.field): e for e in errors}
    assert sorted(by_row) == [
        (2, "is_fraud"),
        (3, "transaction_id"),
        (4, "label_time"),
        (5, "label_time"),
        (6, "amount"),
        (7, "row"),
        (8, "is_fraud"),
        (8, "transaction_id"),
    ]
    flag = by_row[(2, "is_fraud")]
    assert flag.received == "maybe" and "true/false" in flag.expected
    assert str(flag) == (
        'row 2: is_fraud: expected true/false, 1/0 or "true"/"false", received \'maybe\''
    )
    assert "milliseconds" in by_row[(5, "label_time")].expected
    assert "ISO-8601" in by_row[(4, "label_time")].expected
    assert by_row[(6, "amount")].received == -5
    assert "required" in by_row[(8, "transaction_id")].expected
    assert by_row[(7, "row")].to_dict()["message"].startswith("row 7: row: expected an object")


def test_csv_file_with_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "transaction_id,is_fraud,label_time,amount\n"
        "tx-1,1,2024-05-01T12:00:00Z,10.5\n"
        "tx-2,nope,2024-05-01T12:00:00Z,\n"
        "tx-3,false,1714564800,\n"
        "tx-4,true,,3\n"
    )
    labels, errors = parse_labels_file(path)
    assert labels == [Label("tx-1", True, T, 10.5), Label("tx-3", False, T)]
    assert [(e.row, e.field) for e in errors] == [(2, "is_fraud"), (4, "label_time")]


def test_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    pd.DataFrame(
        {
            "transaction_id": ["tx-1", "tx-2", "tx-3"],
            "is_fraud": [True, False, True],
            "label_time": pd.to_datetime(["2024-05-01T12:00:00Z"] * 3),
            "amount": [1.0, float("nan"), -1.0],
        }
    ).to_parquet(path)
    labels, errors = parse_labels_file(path)
    assert labels == [Label("tx-1", True, T, 1.0), Label("tx-2", False, T)]
    assert [(e.row, e.field) for e in errors] == [(3, "amount")]

    epoch = tmp_path / "epoch.parquet"  # epoch seconds, no amount column
    pd.DataFrame({"transaction_id": ["x"], "is_fraud": [0], "label_time": [T]}).to_parquet(epoch)
    assert parse_labels_file(epoch) == ([Label("x", False, T)], [])


def test_file_level_problems(tmp_path: Path) -> None:
    missing = tmp_path / "labels.csv"
    missing.write_text("transaction_id,label_time\ntx-1,1714564800\n")
    with pytest.raises(LabelFileError, match="lacks required column.*is_fraud"):
        parse_labels_file(missing)
    with pytest.raises(LabelFileError, match="expected a .csv or .parquet"):
        (tmp_path / "labels.xlsx").write_text("")
        parse_labels_file(tmp_path / "labels.xlsx")
    with pytest.raises(LabelFileError, match="does not exist"):
        parse_labels_file(tmp_path / "nope.csv")


def test_file_to_store_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("transaction_id,is_fraud,label_time\ntx-1,1,1714564800\ntx-1,1,1714564800\n")
    labels, errors = parse_labels_file(path)
    assert errors == [] and len(labels) == 2
    with open_ledger(tmp_path / "ledger.db") as store:  # a plain path means a SQLite file
        result = store.upsert_labels(labels, actor="cli")
        assert (result.inserted, result.unchanged, result.unknown_transaction_ids) == (
            1,
            1,
            ("tx-1",),
        )


def test_row_error_is_json_friendly() -> None:
    error = RowError(3, "label_time", "epoch seconds", object())
    data = error.to_dict()
    assert data["row"] == 3 and isinstance(data["received"], str)


def test_cli_feedback_refuses_an_overlong_actor_before_writing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fraudgate.cli import app

    labels = tmp_path / "labels.csv"
    labels.write_text("transaction_id,is_fraud,label_time\nt1,1,2026-03-01T00:00:00Z\n")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = ["feedback", str(labels), "--ledger", url, "--actor", "a" * 150]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--actor: expected at most 100 characters, received 150" in result.output
