import numpy as np
import pandas as pd
import pytest

from fraudgate.data.contract import FEATURE_NAMES, N_FEATURES, to_matrix
from fraudgate.data.features import LABEL_DELAY_DAYS, compute_features
from fraudgate.data.simulator import SimulationConfig, simulate

CFG = SimulationConfig(
    seed=5, days=40, transactions_per_day=1_500, customers=600, terminals=300, emerging_day=25
)


@pytest.fixture(scope="module")
def sim():
    return simulate(CFG)


@pytest.fixture(scope="module")
def features(sim):
    return compute_features(sim.transactions, sim.customers, sim.terminals)


def test_contract_shape_and_types(features):
    x = to_matrix(features)
    assert x.shape == (len(features), N_FEATURES)
    assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    assert np.isfinite(x).all()
    assert list(features.columns[5 : 5 + N_FEATURES]) == list(FEATURE_NAMES)


def test_features_are_causal(sim, features):
    """Features of a row never change when later transactions are removed."""
    cut = sim.transactions["timestamp"].iloc[len(sim.transactions) // 2]
    prefix = sim.transactions[sim.transactions["timestamp"] < cut]
    early = compute_features(prefix, sim.customers, sim.terminals)
    # same start, same rows before the cut: only float rounding of running sums may differ
    np.testing.assert_allclose(
        to_matrix(early), to_matrix(features.iloc[: len(early)]), rtol=1e-4, atol=1e-4
    )


def test_label_features_only_use_old_labels(sim, features):
    """Flipping labels younger than the delay leaves terminal risk untouched."""
    tx = sim.transactions.copy()
    last = tx["timestamp"].max()
    recent = tx["timestamp"] > last - pd.Timedelta(days=LABEL_DELAY_DAYS)
    tx.loc[recent, "is_fraud"] = 1 - tx.loc[recent, "is_fraud"]
    flipped = compute_features(tx, sim.customers, sim.terminals)
    risk = [c for c in FEATURE_NAMES if c.startswith("terminal_risk")]
    np.testing.assert_array_equal(flipped[risk].to_numpy(), features[risk].to_numpy())


def test_windows_match_a_brute_force_loop(sim, features):
    tx = sim.transactions.reset_index(drop=True)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(tx), 200, replace=False):
        row = tx.iloc[i]
        same_card = tx[(tx["card_id"] == row["card_id"]) & (tx.index < i)]
        window = same_card[same_card["timestamp"] > row["timestamp"] - pd.Timedelta(days=7)]
        window = window[window["timestamp"] >= row["timestamp"] - pd.Timedelta(days=7)]
        assert features.loc[i, "card_tx_count_7d"] == len(window)
        expected_mean = window["amount"].mean() if len(window) else 0.0
        assert features.loc[i, "card_mean_amount_7d"] == pytest.approx(expected_mean, rel=1e-5)
        hour = same_card[same_card["timestamp"] >= row["timestamp"] - pd.Timedelta(hours=1)]
        assert features.loc[i, "card_small_tx_count_1h"] == (hour["amount"] < 5).sum()
        term = tx[(tx["terminal_id"] == row["terminal_id"]) & (tx.index < i)]
        old = term[
            (term["timestamp"] < row["timestamp"] - pd.Timedelta(days=LABEL_DELAY_DAYS))
            & (term["timestamp"] >= row["timestamp"] - pd.Timedelta(days=LABEL_DELAY_DAYS + 7))
        ]
        expected_risk = old["is_fraud"].mean() if len(old) else 0.0
        assert features.loc[i, "terminal_risk_7d"] == pytest.approx(expected_risk, abs=1e-6)
