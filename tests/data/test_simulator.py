import numpy as np
import pandas as pd
import pytest

from fraudgate.data.simulator import EMERGING_SCENARIO, SimulatedData, SimulationConfig, simulate

SMALL = SimulationConfig(
    seed=3, days=30, transactions_per_day=2_000, customers=1_000, terminals=2_000, emerging_day=20
)


@pytest.fixture(scope="module")
def small():
    return simulate(SMALL)


def test_same_seed_same_data(small):
    again = simulate(SMALL)
    pd.testing.assert_frame_equal(small.transactions, again.transactions)
    pd.testing.assert_frame_equal(small.customers, again.customers)


def test_other_seed_other_data(small):
    other = simulate(SimulationConfig(**{**SMALL.__dict__, "seed": 4}))
    assert not small.transactions["amount"].equals(other.transactions["amount"])


def test_volume_fraud_rate_and_scenarios(small):
    tx = small.transactions
    per_day = len(tx) / SMALL.days
    assert 0.9 * SMALL.transactions_per_day < per_day < 1.1 * SMALL.transactions_per_day
    assert 0.003 < tx["is_fraud"].mean() < 0.015
    assert set(tx.loc[tx["is_fraud"] == 1, "scenario"]) >= {
        "large_amount",
        "compromised_card",
        EMERGING_SCENARIO,
    }
    assert (tx.loc[tx["is_fraud"] == 0, "scenario"] == "legit").all()
    assert tx["timestamp"].is_monotonic_increasing
    assert tx["transaction_id"].is_unique


def test_emerging_pattern_only_after_its_date(small):
    tx = small.transactions
    testing = tx[tx["scenario"] == EMERGING_SCENARIO]
    assert len(testing) > 0
    assert testing["timestamp"].min() >= SMALL.emerging_date
    # card testing: night-time, with tiny probe amounts
    assert (testing["timestamp"].dt.hour < 6).mean() > 0.9
    assert (testing["amount"] < 3).mean() > 0.5


def test_parquet_round_trip(small, tmp_path):
    small.write(tmp_path)
    back = SimulatedData.read(tmp_path)
    pd.testing.assert_frame_equal(small.transactions, back.transactions)
    assert back.config == SMALL
    assert back.summary["frauds"] == int(small.transactions["is_fraud"].sum())


@pytest.mark.parametrize("field,value", [("days", 0), ("emerging_day", 99), ("terminals", 1)])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        SimulationConfig(**{**SMALL.__dict__, field: value})


def test_no_unseeded_randomness():
    # global RNG state must not influence the result
    np.random.seed(123)
    a = simulate(SMALL).transactions
    np.random.seed(999)
    b = simulate(SMALL).transactions
    pd.testing.assert_frame_equal(a, b)
