"""Causal feature engineering: the 30 contract features for every simulated transaction.

Each feature of a transaction uses only transactions strictly before it. Terminal fraud risk uses
only labels at least ``label_delay_days`` old, because chargebacks and investigations arrive late.

Windows are computed without loops: rows are sorted by (entity, time) and the key
``entity * SPAN + time`` is searched for ``key - window``, so a window never crosses into another
entity; cumulative sums then give counts and sums over any window in O(1) per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudgate.data.contract import FEATURE_NAMES

MINUTE, HOUR, DAY = 60.0, 3600.0, 86_400.0
SMALL_AMOUNT = 5.0
LABEL_DELAY_DAYS = 7
_NO_HISTORY_SECONDS = 30 * DAY
_ENTITY_STRIDE_MS = 1 << 40  # ~34 years of milliseconds per entity id


class _Windows:
    """Backward-looking window aggregates over one entity column (card or terminal)."""

    def __init__(self, entity: np.ndarray, seconds: np.ndarray):
        self.order = np.lexsort((seconds, entity))
        self.t = seconds[self.order]
        # exact integer keys (milliseconds), so results never depend on the data's extent
        millis = np.round(self.t * 1000).astype(np.int64)
        self.key = entity[self.order].astype(np.int64) * _ENTITY_STRIDE_MS + millis
        self.position = np.arange(len(self.t))
        self.same_as_previous = np.r_[False, entity[self.order][1:] == entity[self.order][:-1]]

    def start(self, window: float) -> np.ndarray:
        return np.searchsorted(self.key, self.key - round(window * 1000), side="left")

    def _cumsum(self, values: np.ndarray) -> np.ndarray:
        return np.r_[0.0, np.cumsum(values[self.order], dtype=np.float64)]

    def count(self, window: float) -> np.ndarray:
        return (self.position - self.start(window)).astype(np.float64)

    def total(self, values: np.ndarray, window: float) -> np.ndarray:
        csum = self._cumsum(values)
        return csum[self.position] - csum[self.start(window)]

    def delayed(self, values: np.ndarray, window: float, delay: float):
        """Count and sum of `values` over [t - delay - window, t - delay)."""
        csum = self._cumsum(values)
        hi = np.searchsorted(self.key, self.key - round(delay * 1000), side="left")
        lo = np.searchsorted(self.key, self.key - round((delay + window) * 1000), side="left")
        return (hi - lo).astype(np.float64), csum[hi] - csum[lo]

    def previous(self, sorted_values: np.ndarray, fill: float) -> np.ndarray:
        """The entity's previous value for each row; `sorted_values` are already in window order."""
        shifted = np.r_[fill, sorted_values[:-1]]
        return np.where(self.same_as_previous, shifted, fill)

    def unsort(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.order] = values
        return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray, fill: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    return np.where(denominator > 0, out, fill)


def compute_features(
    transactions: pd.DataFrame,
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    label_delay_days: float = LABEL_DELAY_DAYS,
) -> pd.DataFrame:
    """Return ids, timestamp, label, scenario and the 30 contract features (float32, finite)."""
    tx = transactions
    seconds = (tx["timestamp"] - tx["timestamp"].min()).dt.total_seconds().to_numpy()
    amount = tx["amount"].to_numpy(np.float64)
    fraud = tx["is_fraud"].to_numpy(np.float64)
    card = tx["card_id"].to_numpy()
    terminal = tx["terminal_id"].to_numpy()
    hour = tx["timestamp"].dt.hour.to_numpy() + tx["timestamp"].dt.minute.to_numpy() / 60
    night = (hour < 6).astype(np.float64)

    f: dict[str, np.ndarray] = {
        "amount": amount,
        "log_amount": np.log1p(amount),
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "is_night": night,
        "is_weekend": (tx["timestamp"].dt.day_of_week.to_numpy() >= 5).astype(np.float64),
    }

    by_card = _Windows(card, seconds)
    a = amount[by_card.order]
    counts = {}
    for label, window in (
        ("10m", 10 * MINUTE),
        ("1h", HOUR),
        ("1d", DAY),
        ("7d", 7 * DAY),
        ("30d", 30 * DAY),
    ):
        counts[label] = by_card.count(window)
        f[f"card_tx_count_{label}"] = by_card.unsort(counts[label])
    means = {}
    for label, window in (("1d", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)):
        means[label] = _ratio(by_card.total(amount, window), counts[label], 0.0)
        f[f"card_mean_amount_{label}"] = by_card.unsort(means[label])
    sq_mean = _ratio(by_card.total(amount**2, 30 * DAY), counts["30d"], 0.0)
    std = np.sqrt(np.maximum(sq_mean - means["30d"] ** 2, 0.0))
    std = np.where((counts["30d"] >= 2) & (std > 0.01), std, 0.0)  # below a cent is rounding noise
    f["amount_to_card_mean_30d"] = by_card.unsort(_ratio(a, means["30d"], 1.0))
    f["amount_zscore_card_30d"] = by_card.unsort(
        np.clip(_ratio(a - means["30d"], std, 0.0), -50, 50)
    )
    f["card_small_tx_count_1h"] = by_card.unsort(
        by_card.total((amount < SMALL_AMOUNT).astype(np.float64), HOUR)
    )
    f["card_night_tx_count_1d"] = by_card.unsort(by_card.total(night, DAY))
    gap = by_card.t - by_card.previous(by_card.t, fill=np.nan)
    gap = np.where(np.isnan(gap), _NO_HISTORY_SECONDS, np.minimum(gap, _NO_HISTORY_SECONDS))
    f["log_seconds_since_last_card_tx"] = by_card.unsort(np.log1p(gap))
    f["amount_to_previous_card_amount"] = by_card.unsort(
        np.clip(_ratio(a, by_card.previous(a, fill=0.0), 1.0), 0, 1e4)
    )

    # geography
    term_xy = terminals.set_index("terminal_id").loc[terminal, ["x_km", "y_km"]].to_numpy()
    home_xy = (
        customers.set_index("customer_id")
        .loc[tx["customer_id"].to_numpy(), ["x_km", "y_km"]]
        .to_numpy()
    )
    f["distance_from_home_km"] = np.hypot(*(term_xy - home_xy).T)
    xy = term_xy[by_card.order]
    prev_x = by_card.previous(xy[:, 0], fill=np.nan)
    prev_y = by_card.previous(xy[:, 1], fill=np.nan)
    hop = np.hypot(xy[:, 0] - prev_x, xy[:, 1] - prev_y)
    hop = np.where(np.isnan(hop), 0.0, hop)
    f["distance_from_previous_km"] = by_card.unsort(hop)
    f["log_speed_from_previous_kmh"] = by_card.unsort(np.log1p(hop / (gap / HOUR + 1 / 60)))

    by_terminal = _Windows(terminal, seconds)
    for label, window in (("1h", HOUR), ("1d", DAY), ("7d", 7 * DAY)):
        f[f"terminal_tx_count_{label}"] = by_terminal.unsort(by_terminal.count(window))
    delay = label_delay_days * DAY
    for label, window in (("1d", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)):
        n, frauds = by_terminal.delayed(fraud, window, delay)
        f[f"terminal_risk_{label}"] = by_terminal.unsort(_ratio(frauds, n, 0.0))
    f["terminal_mean_amount_7d"] = by_terminal.unsort(
        _ratio(by_terminal.total(amount, 7 * DAY), by_terminal.count(7 * DAY), 0.0)
    )

    features = pd.DataFrame({name: f[name].astype(np.float32) for name in FEATURE_NAMES})
    if not np.isfinite(features.to_numpy()).all():  # the server rejects NaN/Inf; so do we
        bad = [c for c in features.columns if not np.isfinite(features[c].to_numpy()).all()]
        raise ValueError(f"non-finite values computed in features {bad}")
    ids = tx[["transaction_id", "timestamp", "card_id", "customer_id", "terminal_id"]]
    labels = tx[["is_fraud", "scenario"]] if "scenario" in tx else tx[["is_fraud"]]
    return pd.concat([ids.reset_index(drop=True), features, labels.reset_index(drop=True)], axis=1)
