"""PSI and KS against scipy, the reference's bins, and a stored reference's validation."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from scipy.special import rel_entr
from scipy.stats import ks_2samp

from fraudgate.analysis.drift import (
    PSI_FLOOR,
    SCORE_COLUMN,
    DriftReference,
    DriftReferenceError,
    DriftThresholds,
    bin_counts,
    column_drift,
    drift,
    drift_reference,
    ks_statistic,
    level,
    psi,
)
from fraudgate.data.contract import FEATURE_NAMES, N_FEATURES


def test_psi_is_the_symmetrised_kullback_leibler_divergence():
    # PSI = sum (a - e) ln(a / e) = KL(a || e) + KL(e || a)
    rng = np.random.default_rng(1)
    expected = rng.dirichlet(np.ones(10))
    live = rng.multinomial(5000, rng.dirichlet(np.ones(10)))
    actual = live / live.sum()
    assert psi(expected, live) == pytest.approx(
        float(np.sum(rel_entr(actual, expected) + rel_entr(expected, actual))), rel=1e-12
    )
    assert psi(expected, np.round(expected * 1e6)) == pytest.approx(0.0, abs=1e-9)


def test_psi_of_an_empty_bin_is_finite_through_the_floor():
    value = psi([0.5, 0.5], [10, 0])
    actual, expected = np.array([1.0, PSI_FLOOR]), np.array([0.5, 0.5])
    assert value == pytest.approx(float(np.sum((actual - expected) * np.log(actual / expected))))
    assert np.isnan(psi([0.5, 0.5], [0, 0]))


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_ks_statistic_equals_scipys(shift):
    rng = np.random.default_rng(2)
    ref = np.sort(rng.normal(size=700))
    live = rng.normal(loc=shift, size=450)
    assert ks_statistic(ref, live) == pytest.approx(ks_2samp(ref, live).statistic, abs=1e-12)
    ties = np.round(live, 1)  # ties between and within the samples
    assert ks_statistic(np.sort(np.round(ref, 1)), ties) == pytest.approx(
        ks_2samp(np.round(ref, 1), ties).statistic, abs=1e-12
    )


def test_reference_bins_hold_their_training_shares_and_collapse_repeated_edges():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5000, N_FEATURES)).astype(np.float32)
    x[:, 1] = rng.integers(0, 3, size=5000)  # a count: three values, repeated quantiles
    scores = rng.beta(1, 20, size=5000)
    reference = drift_reference(x, scores, FEATURE_NAMES, bins=10, sample=800, seed=0)
    assert [c.name for c in reference.columns] == [*FEATURE_NAMES, SCORE_COLUMN]
    first = reference.columns[0]
    assert len(first.edges) == 9 and sum(first.shares) == pytest.approx(1.0)
    assert np.allclose(first.shares, 0.1, atol=0.002)  # deciles
    count = reference.columns[1]
    assert len(count.edges) == len(set(count.edges)) <= 2
    assert list(bin_counts(x[:, 1], count.edges) / 5000) == pytest.approx(list(count.shares))
    assert len(first.sample) == 800 and list(first.sample) == sorted(first.sample)
    # the training data against itself: no drift; a shifted feature: a major one
    same = drift(reference, x, scores)
    assert max(r.psi for r in same) < 0.01
    shifted = column_drift(first, x[:, 0] + 1.0)
    assert shifted.psi > 0.25 and level(shifted.psi, DriftThresholds()) == "alert"
    assert shifted.ks_statistic == pytest.approx(
        ks_2samp(first.sample, x[:, 0] + 1.0).statistic, abs=1e-12
    )


def test_score_drift_is_the_same_for_fp64_fp32_and_json_scores_of_a_discrete_model():
    # a tree ensemble's scores: few distinct values, quantile edges on them, many rows per edge;
    # the server holds FP32 scores, a JSON client reads their shortest decimals, training FP64
    rng = np.random.default_rng(5)
    values = rng.beta(1, 8, size=40)  # FP64 values, most not representable in FP32
    train = rng.choice(values, size=4000, p=rng.dirichlet(np.ones(40)))
    x = rng.normal(size=(4000, N_FEATURES)).astype(np.float32)
    reference = drift_reference(x, train, FEATURE_NAMES, sample=1000)
    score = reference.column(SCORE_COLUMN)
    assert all(e == float(np.float32(e)) for e in (*score.edges, *score.sample))
    assert np.isin(train.astype(np.float32), np.float32(score.edges)).mean() > 0.1  # on edges
    live = rng.choice(values, size=1500, p=rng.dirichlet(np.ones(40)))
    served = live.astype(np.float32)
    # the response's encoding (orjson: the shortest decimal of each FP32 value), read back
    decimals = np.array(json.loads(orjson.dumps(served, option=orjson.OPT_SERIALIZE_NUMPY)))
    assert not np.array_equal(decimals, served.astype(np.float64))
    results = {
        name: drift(reference, x[:1500], scores)[-1]
        for name, scores in (("fp64", live), ("fp32", served), ("json", decimals))
    }
    assert results["fp64"] == results["fp32"] == results["json"]
    # against numpy/scipy on the FP32 values on both sides
    ref32, live32 = np.array(score.sample), served.astype(np.float64)
    assert results["fp32"].ks_statistic == pytest.approx(
        ks_2samp(ref32, live32).statistic, abs=1e-12
    )
    counts = np.histogram(live32, bins=[-np.inf, *score.edges, np.inf])[0]  # [a, b) bins
    on_edges = np.array([np.sum(live32 == e) for e in score.edges])
    counts = counts + np.append(on_edges, 0) - np.insert(on_edges, 0, 0)  # (a, b] bins
    assert results["fp32"].psi == pytest.approx(psi(score.shares, counts), rel=1e-12)
    # the training scores against their own reference: no drift at any precision
    assert drift(reference, x, train.astype(np.float32))[-1].psi < 1e-3


def test_a_stored_fp64_score_reference_is_read_at_fp32():
    rng = np.random.default_rng(6)
    data = drift_reference(rng.normal(size=(300, N_FEATURES)), rng.random(300), FEATURE_NAMES)
    stored = json.loads(json.dumps(data.as_dict()))
    old = stored["columns"][-1]
    old["edges"] = [e + 1e-12 for e in old["edges"]]  # an FP64 reference of older versions
    old["sample"] = [v + 1e-12 for v in old["sample"]]
    loaded = DriftReference.from_dict(stored, N_FEATURES).column(SCORE_COLUMN)
    assert loaded.edges == data.column(SCORE_COLUMN).edges
    assert loaded.sample == data.column(SCORE_COLUMN).sample


def test_levels_follow_the_thresholds():
    t = DriftThresholds(0.1, 0.25)
    assert [level(v, t) for v in (0.05, 0.1, 0.2, 0.25, float("nan"))] == [
        "stable",
        "warning",
        "warning",
        "alert",
        "unknown",
    ]


def test_stored_reference_round_trips_and_rejects_bad_input():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, N_FEATURES))
    reference = drift_reference(x, rng.random(300), FEATURE_NAMES, sample=50)
    data = json.loads(json.dumps(reference.as_dict()))
    assert DriftReference.from_dict(data, N_FEATURES) == reference
    with pytest.raises(DriftReferenceError, match="format"):
        DriftReference.from_dict({**data, "format": 9}, N_FEATURES)
    with pytest.raises(DriftReferenceError, match="expected 29 features"):
        DriftReference.from_dict(data, N_FEATURES - 1)
    bad = json.loads(json.dumps(data))
    bad["columns"][0]["name"] = 'x"} 1\n'
    with pytest.raises(DriftReferenceError, match=r"columns\[0\].name"):
        DriftReference.from_dict(bad, N_FEATURES)
    bad = json.loads(json.dumps(data))
    bad["columns"][2]["shares"] = [1.0]
    with pytest.raises(DriftReferenceError, match=r"columns\[2\].shares"):
        DriftReference.from_dict(bad, N_FEATURES)
    bad = json.loads(json.dumps(data))
    bad["columns"][3]["sample"] = [0.0] * 10_001
    with pytest.raises(DriftReferenceError, match="at most 10000"):
        DriftReference.from_dict(bad, N_FEATURES)
