import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fraudgate.data.contract import CREDITCARD_FEATURE_NAMES, to_matrix
from fraudgate.data.creditcard import REQUIRED_COLUMNS, CreditcardFormatError, load_creditcard


def write_creditcard(path, rows=400, seed=0, fraud_every=40):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 172_792, rows)).round()})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=rows)
    frame["Amount"] = rng.gamma(2, 40, rows).round(2)
    frame["Class"] = (np.arange(rows) % fraud_every == 0).astype(int)
    frame.loc[frame["Class"] == 1, "V4"] += 4  # a learnable signal
    # Kaggle's file quotes the header and the Class values
    frame.to_csv(path, index=False, quoting=1)
    return frame


def test_loads_into_the_contract_order(tmp_path):
    original = write_creditcard(tmp_path / "creditcard.csv")
    loaded = load_creditcard(tmp_path / "creditcard.csv")
    x = to_matrix(loaded, CREDITCARD_FEATURE_NAMES)
    assert x.shape == (400, 30) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], original["V1"], rtol=1e-6)
    np.testing.assert_allclose(x[:, 28], original["Amount"], rtol=1e-6)
    np.testing.assert_allclose(x[:, 29], original["Time"], rtol=1e-6)
    assert loaded["is_fraud"].sum() == original["Class"].sum()


def test_missing_column_is_named(tmp_path):
    write_creditcard(tmp_path / "c.csv").drop(columns="V17").to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(CreditcardFormatError, match="missing column.*V17"):
        load_creditcard(tmp_path / "c.csv")


def test_non_numeric_cell_names_line_and_column(tmp_path):
    frame = write_creditcard(tmp_path / "c.csv")
    frame["Amount"] = frame["Amount"].astype(object)
    frame.loc[6, "Amount"] = "12,50"
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(CreditcardFormatError, match=r"line 8, column 'Amount'.*'12,50'"):
        load_creditcard(tmp_path / "c.csv")


def test_bad_class_value(tmp_path):
    frame = write_creditcard(tmp_path / "c.csv")
    frame.loc[0, "Class"] = 2
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(CreditcardFormatError, match="line 2, column 'Class'"):
        load_creditcard(tmp_path / "c.csv")


def test_cli_exit_code_2_with_a_clear_message(tmp_path):
    frame = write_creditcard(tmp_path / "c.csv")
    frame[[c for c in REQUIRED_COLUMNS if c != "Time"]].to_csv(tmp_path / "c.csv", index=False)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudgate",
            "train",
            "--creditcard",
            str(tmp_path / "c.csv"),
            "--workdir",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Time" in result.stdout + result.stderr


def test_train_on_a_creditcard_file(tmp_path):
    write_creditcard(tmp_path / "creditcard.csv", rows=6_000, fraud_every=50)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudgate",
            "train",
            "--creditcard",
            str(tmp_path / "creditcard.csv"),
            "--workdir",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    import json

    offline = json.loads((tmp_path / "w" / "offline.json").read_text())
    assert offline["feature_version"] == "creditcard-ulb-v1"
    assert offline["data"]["transactions"] == 6_000
    for model in offline["models"].values():
        assert model["holdout"]["metrics"]["roc_auc"]["estimate"] > 0.9  # V4 carries the signal
