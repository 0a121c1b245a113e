"""Adapter for the Kaggle ULB `creditcard.csv` layout (Time, V1..V28, Amount, Class).

The 30 columns map onto the `[n, 30]` contract in the seed's order: V1..V28, Amount, Time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fraudgate.data.contract import CREDITCARD_FEATURE_NAMES

CREDITCARD_FEATURE_VERSION = "creditcard-ulb-v1"
REQUIRED_COLUMNS = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class")
EPOCH = pd.Timestamp("2013-09-01")  # the ULB data covers two days in September 2013


class CreditcardFormatError(ValueError):
    """The file is not in the creditcard.csv layout; the message names the column and line."""


def load_creditcard(path: Path) -> pd.DataFrame:
    """Read and validate the file; return ids, timestamp, the 30 features and `is_fraud`."""
    path = Path(path)
    if not path.is_file():
        raise CreditcardFormatError(f"{path}: no such file")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CreditcardFormatError(f"{path}: not a readable CSV file ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise CreditcardFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; expected the creditcard.csv header "
            f"{','.join(REQUIRED_COLUMNS)}"
        )
    if raw.empty:
        raise CreditcardFormatError(f"{path}: the file has a header but no rows")
    numbers = {}
    for column in REQUIRED_COLUMNS:
        text = raw[column].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise CreditcardFormatError(
                f"{path}: line {row + 2}, column {column!r}: expected a finite number, "
                f"got {raw[column].iloc[row]!r}"
            )
        numbers[column] = values.to_numpy(dtype=np.float64)
    labels = numbers["Class"]
    not_binary = ~np.isin(labels, (0.0, 1.0))
    if not_binary.any():
        row = int(np.argmax(not_binary))
        raise CreditcardFormatError(
            f"{path}: line {row + 2}, column 'Class': expected 0 or 1, "
            f"got {raw['Class'].iloc[row]!r}"
        )
    frame = pd.DataFrame(
        {name: numbers[name].astype(np.float32) for name in CREDITCARD_FEATURE_NAMES}
    )
    frame.insert(0, "transaction_id", [f"cc-{i:07d}" for i in range(len(frame))])
    frame.insert(1, "timestamp", EPOCH + pd.to_timedelta(numbers["Time"], unit="s"))
    frame["is_fraud"] = labels.astype(np.int8)
    return frame.sort_values("timestamp", kind="stable", ignore_index=True)
