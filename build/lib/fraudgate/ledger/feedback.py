"""Label ingestion: validate rows from the JSON bulk API or a CSV/Parquet file into Labels.

A row is ``{transaction_id, is_fraud, label_time, amount?, source?}``. Bad rows are rejected one
by one, each with its 1-based data-row number and, per bad field, what was expected and what was
received; good rows of the same batch are kept. Accepted spellings:

* ``transaction_id``: a non-empty string within `fraudgate.protocol.limits` (at most
  ``MAX_ID_CHARS`` characters, no control characters; an integer is turned into its string);
* ``is_fraud``: a bool, 0/1, or "true"/"false"/"1"/"0" (any case);
* ``label_time``: ISO-8601 (``2024-05-01T12:00:00Z``; no offset means UTC), a datetime, or epoch
  seconds (number or numeric string);
* ``amount`` (optional): a finite number >= 0; missing, null, empty or NaN means unknown;
* ``source`` (optional): ``investigation``, ``chargeback`` or ``manual`` (the default).

``label_time`` is the time the label became known (the analysis as of T counts only labels known
by T). ``known_at`` is accepted as its other name (new clients may send either; a row with both
must give the same time), so existing clients keep working unchanged.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from fraudgate.ledger.records import DEFAULT_LABEL_SOURCE, LABEL_SOURCES, Label, RowError
from fraudgate.protocol.limits import MAX_ID_CHARS, text_problem

REQUIRED_COLUMNS: tuple[str, ...] = ("transaction_id", "is_fraud", "label_time")
OPTIONAL_COLUMNS: tuple[str, ...] = ("amount", "source")
KNOWN_AT = "known_at"  # the other name of label_time
# Epoch seconds past this (year 2286) are almost surely milliseconds.
_MAX_EPOCH_S = 1e10

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


class LabelFileError(ValueError):
    """The file as a whole cannot be read (unknown format, missing column)."""


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _transaction_id(value: object) -> str:
    """The id as the serving core accepts it (`fraudgate.protocol.limits`), else ValueError
    saying why (a bad character or the length: more use than the generic expectation)."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return str(value)
    text = value.strip() if isinstance(value, str) else value
    problem = text_problem(text, MAX_ID_CHARS)
    if problem is not None:
        raise ValueError(problem)
    return text  # type: ignore[return-value]


def _is_fraud(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError


def _label_time(value: object) -> float:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, bool):
        raise ValueError
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError
    if seconds > _MAX_EPOCH_S:
        raise OverflowError  # milliseconds?
    return seconds


def _amount(value: object) -> float | None:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())  # ValueError propagates
    else:
        raise ValueError
    if not math.isfinite(number) or number < 0:
        raise ValueError
    return number


_EXPECTED = {
    "transaction_id": f"a non-empty string of at most {MAX_ID_CHARS} printable characters",
    "is_fraud": 'true/false, 1/0 or "true"/"false"',
    "label_time": "ISO-8601 (e.g. 2024-05-01T12:00:00Z) or epoch seconds",
    "amount": "a number >= 0 or nothing",
    "source": f"one of {', '.join(LABEL_SOURCES)} or nothing (= {DEFAULT_LABEL_SOURCE})",
}


def _source(value: object) -> str:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return DEFAULT_LABEL_SOURCE
    if isinstance(value, str) and value.strip().lower() in LABEL_SOURCES:
        return value.strip().lower()
    raise ValueError


def validate_label_rows(
    rows: Sequence[object], *, first_row: int = 1
) -> tuple[list[Label], list[RowError]]:
    """Turn raw rows (dicts from JSON, CSV or Parquet) into Labels, rejecting bad rows.

    Returns the labels of the good rows (in order) and one :class:`RowError` per bad field of
    each bad row; ``row`` numbers count data rows from ``first_row`` (1 = the first data row).
    """
    good: list[Label] = []
    errors: list[RowError] = []
    for offset, row in enumerate(rows):
        number = first_row + offset
        if not isinstance(row, Mapping):
            errors.append(RowError(number, "row", "an object with " + _columns_text(), row))
            continue
        row_errors: list[RowError] = []
        values: dict[str, object] = {}
        if KNOWN_AT in row and not _missing(row[KNOWN_AT]):
            if "label_time" in row and not _missing(row["label_time"]):
                try:
                    same = _label_time(row["label_time"]) == _label_time(row[KNOWN_AT])
                except (ValueError, TypeError, OverflowError):
                    same = True  # the label_time check below reports the bad value
                if not same:
                    row_errors.append(
                        RowError(
                            number,
                            KNOWN_AT,
                            f"the same time as label_time ({row['label_time']!r}) or nothing",
                            row[KNOWN_AT],
                        )
                    )
            else:
                row = {**row, "label_time": row[KNOWN_AT]}
        for name in REQUIRED_COLUMNS:
            raw = row.get(name)
            if _missing(raw) or (isinstance(raw, str) and not raw.strip()):
                row_errors.append(RowError(number, name, _EXPECTED[name] + " (required)", raw))
                continue
            try:
                if name == "transaction_id":
                    values[name] = _transaction_id(raw)
                elif name == "is_fraud":
                    values[name] = _is_fraud(raw)
                else:
                    values[name] = _label_time(raw)
            except OverflowError:
                row_errors.append(
                    RowError(number, name, "epoch *seconds* (this looks like milliseconds)", raw)
                )
            except (ValueError, TypeError):
                row_errors.append(RowError(number, name, _EXPECTED[name], raw))
        try:
            values["amount"] = _amount(row.get("amount"))
        except (ValueError, TypeError):
            row_errors.append(RowError(number, "amount", _EXPECTED["amount"], row.get("amount")))
        try:
            values["source"] = _source(row.get("source"))
        except (ValueError, TypeError):
            row_errors.append(RowError(number, "source", _EXPECTED["source"], row.get("source")))
        if row_errors:
            errors.extend(row_errors)
            continue
        good.append(
            Label(
                transaction_id=values["transaction_id"],  # type: ignore[arg-type]
                is_fraud=values["is_fraud"],  # type: ignore[arg-type]
                label_time=values["label_time"],  # type: ignore[arg-type]
                amount=values["amount"],  # type: ignore[arg-type]
                source=values["source"],  # type: ignore[arg-type]
            )
        )
    return good, errors


def _columns_text() -> str:
    return ", ".join(REQUIRED_COLUMNS) + " and optionally " + ", ".join(OPTIONAL_COLUMNS)


def parse_labels_file(path: str | Path) -> tuple[list[Label], list[RowError]]:
    """Read a CSV (header row required) or Parquet file of labels; see :func:`validate_label_rows`.

    Raises :class:`LabelFileError` for problems of the whole file (unknown extension, missing
    required columns, unreadable file); row problems are returned as errors.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise LabelFileError(f"labels file {str(path)!r} does not exist")
    if suffix in (".csv", ".txt"):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            _check_columns(path, columns)
            rows: list[object] = list(reader)
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:
            message = f"labels file {str(path)!r}: not readable Parquet ({exc})"
            raise LabelFileError(message) from exc
        _check_columns(path, table.column_names)
        wanted = [
            c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, KNOWN_AT) if c in table.column_names
        ]
        rows = table.select(wanted).to_pylist()
    else:
        raise LabelFileError(
            f"labels file {str(path)!r}: expected a .csv or .parquet file, received {suffix!r}"
        )
    return validate_label_rows(rows)


def _check_columns(path: Path, columns: Sequence[str]) -> None:
    missing = [
        c
        for c in REQUIRED_COLUMNS
        if c not in columns and not (c == "label_time" and KNOWN_AT in columns)
    ]
    if missing:
        raise LabelFileError(
            f"labels file {str(path)!r} lacks required column(s) {', '.join(missing)}; "
            f"expected {_columns_text()}, found {', '.join(columns) or 'no header'}"
        )
