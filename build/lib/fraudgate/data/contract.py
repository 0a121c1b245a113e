"""The 30-feature contract: names, order and version of the `fraud_features` input.

Every model, server and client agrees on this module. Changing a name or the order is a breaking
change: bump ``FEATURE_VERSION`` so registry tags and servers can refuse a mismatched model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # to_matrix takes a frame; the serving path never imports pandas
    import pandas as pd

FEATURE_VERSION = "fraudgate-features-v1"
INPUT_NAME = "fraud_features"
INPUT_DATATYPE = "FP32"
N_FEATURES = 30

FEATURE_NAMES: tuple[str, ...] = (
    # the transaction itself
    "amount",
    "log_amount",
    "hour_sin",
    "hour_cos",
    "is_night",
    "is_weekend",
    # the card's recent history (strictly before this transaction)
    "card_tx_count_10m",
    "card_tx_count_1h",
    "card_tx_count_1d",
    "card_tx_count_7d",
    "card_tx_count_30d",
    "card_mean_amount_1d",
    "card_mean_amount_7d",
    "card_mean_amount_30d",
    "amount_to_card_mean_30d",
    "amount_zscore_card_30d",
    "card_small_tx_count_1h",
    "card_night_tx_count_1d",
    "log_seconds_since_last_card_tx",
    "amount_to_previous_card_amount",
    # where it happens
    "distance_from_home_km",
    "distance_from_previous_km",
    "log_speed_from_previous_kmh",
    # the terminal's recent history; fraud risk uses only labels old enough to be known
    "terminal_tx_count_1h",
    "terminal_tx_count_1d",
    "terminal_tx_count_7d",
    "terminal_risk_1d",
    "terminal_risk_7d",
    "terminal_risk_30d",
    "terminal_mean_amount_7d",
)

assert len(FEATURE_NAMES) == N_FEATURES, "the contract is exactly 30 features"
assert len(set(FEATURE_NAMES)) == N_FEATURES, "feature names must be unique"

# The Kaggle ULB creditcard.csv layout mapped onto the same 30 slots (seed order).
CREDITCARD_FEATURE_NAMES: tuple[str, ...] = tuple(f"V{i}" for i in range(1, 29)) + (
    "Amount",
    "Time",
)


def to_matrix(frame: pd.DataFrame, names: tuple[str, ...] = FEATURE_NAMES) -> np.ndarray:
    """Return the `[n, 30]` float32 matrix in contract order (C-contiguous)."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise KeyError(f"feature columns missing: {missing}")
    return np.ascontiguousarray(frame.loc[:, list(names)].to_numpy(dtype=np.float32))
