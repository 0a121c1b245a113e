"""Runtimes against a real model registered in a real (SQLite) MLflow store; no mocks."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from fraudgate.registry import Registry
from fraudgate.runtimes import (
    NativeRuntime,
    Runtime,
    Tl2cgenRuntime,
    build_runtime,
    verification_rows,
)

N = 30


def _train(seed: int, rounds: int = 40) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, N)).astype(np.float32)
    x[rng.random(x.shape) < 0.03] = np.nan
    x[:, 5] = rng.integers(0, 2, size=len(x))  # a binary feature, like is_night
    logit = np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1] * x[:, 2]) + x[:, 5]
    y = (logit + rng.normal(size=len(x)) > 1.5).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": seed}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("mlflow")
    return Registry(f"sqlite:///{root / 'mlflow.db'}")


@pytest.fixture(scope="module")
def model(registry: Registry):
    booster = _train(seed=1)
    registry.register(
        booster,
        serving_name="fraud-v1-baseline",
        alias="champion",
        threshold=0.5,
        params={"num_leaves": 15},
        metrics={"auc": 0.9},
    )
    return registry.load("models:/fraud-detection@champion")


@pytest.fixture(scope="module")
def other_model(registry: Registry):
    registry.register(
        _train(seed=2),
        serving_name="fraud-v2-candidate",
        alias="challenger",
        threshold=0.5,
        params={"num_leaves": 15},
        metrics={"auc": 0.9},
    )
    return registry.load("models:/fraud-detection@challenger")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime-cache")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(99)
    x = rng.normal(scale=2.0, size=(500, N)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[0] = 0.0
    x[1] = 1e-35  # LightGBM scores |x| <= 1e-35 as exactly 0
    x[2] = -1e-35
    return x


def _reference(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.pyfunc.predict(x), dtype=np.float64).reshape(-1)


@pytest.mark.parametrize("kind", ["native", "tl2cgen", "pyfunc", "auto"])
def test_every_runtime_matches_the_mlflow_model(model, cache_dir, rows, kind):
    runtime = build_runtime(model, kind, cache_dir=cache_dir)
    assert not runtime.report.fallback  # the kind asked for (or auto's pick) serves
    assert isinstance(runtime, Runtime)
    if kind != "auto":
        assert runtime.name == kind
    else:
        assert runtime.name in {"tl2cgen", "native"}
        assert runtime.report.single_row_seconds.keys() == {"tl2cgen", "native"}
    expected = _reference(model, rows)
    # single rows, small batches (scratch-buffer path) and one large batch (direct path)
    single = np.concatenate([runtime.predict(rows[i : i + 1]) for i in range(len(rows))])
    batches = np.concatenate([runtime.predict(rows[i : i + 32]) for i in range(0, len(rows), 32)])
    whole = runtime.predict(rows)
    for got in (single, batches, whole):
        assert got.shape == (len(rows),)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_input_is_normalised_and_shape_checked(model, cache_dir, rows):
    for runtime in (build_runtime(model, "native"), build_runtime(model, "tl2cgen", cache_dir)):
        expected = runtime.predict(rows[:8])
        as_f64 = rows[:8].astype(np.float64)
        fortran = np.asfortranarray(rows[:8])
        readonly = np.frombuffer(rows[:8].tobytes(), dtype=np.float32).reshape(8, N)
        for x in (as_f64, fortran, readonly):
            np.testing.assert_array_equal(runtime.predict(x), expected)
        assert runtime.predict(rows[:0]).shape == (0,)
        with pytest.raises(ValueError, match=r"\[n, 30\]"):
            runtime.predict(rows[:2, :29])


def test_compiled_library_is_cached_by_model(model, other_model, tmp_path):
    first = build_runtime(model, "tl2cgen", cache_dir=tmp_path)
    assert first.report.compile is not None and not first.report.compile.cached
    library = first.report.compile.library
    assert library.parent == tmp_path and library.is_file()
    mtime = library.stat().st_mtime_ns

    again = build_runtime(model, "tl2cgen", cache_dir=tmp_path)
    assert again.report.compile.cached
    assert again.report.compile.library == library
    assert library.stat().st_mtime_ns == mtime
    assert again.report.compile.seconds < first.report.compile.seconds

    other = build_runtime(other_model, "tl2cgen", cache_dir=tmp_path)
    assert not other.report.compile.cached
    assert other.report.compile.library != library
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [library.name, other.report.compile.library.name]
    )


def test_failed_verification_falls_back_with_a_warning(model, other_model, cache_dir, caplog):
    # the booster and the MLflow model disagree (a broken registration): neither compiled nor
    # native scores can be trusted, so the MLflow model itself serves
    broken = dataclasses.replace(model, pyfunc=other_model.pyfunc)
    with caplog.at_level(logging.WARNING, logger="fraudgate.runtimes"):
        runtime = build_runtime(broken, "auto", cache_dir=cache_dir)
    assert runtime.name == "pyfunc"
    assert runtime.report.fallback and runtime.report.failed == ["tl2cgen", "native"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("tl2cgen runtime failed verification" in m and "1e-05" in m for m in messages)
    assert any("native runtime failed verification" in m for m in messages)
    x = verification_rows(model.booster, 16, N)
    np.testing.assert_array_equal(runtime.predict(x), _reference(other_model, x))


def test_tight_tolerance_rejects_a_runtime(model, cache_dir, caplog):
    # a negative tolerance fails every candidate that is checked against the reference
    with caplog.at_level(logging.WARNING, logger="fraudgate.runtimes"):
        runtime = build_runtime(model, "tl2cgen", cache_dir=cache_dir, tolerance=-1.0)
    assert runtime.name == "pyfunc"
    assert "tl2cgen runtime failed verification" in caplog.text


def test_compile_failure_falls_back_to_native(model, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="fraudgate.runtimes"):
        runtime = build_runtime(model, "tl2cgen", cache_dir=tmp_path, toolchain="no-such-cc")
    assert runtime.name == "native"
    assert runtime.report.fallback  # fraudgate_model_runtime_fallback is 1
    assert isinstance(runtime, NativeRuntime)
    assert "tl2cgen runtime unavailable" in caplog.text
    assert not list(tmp_path.glob("*.so"))


def test_caller_sample_is_verified_too(model, cache_dir):
    sample = np.full((3, N), 7.5, dtype=np.float32)
    runtime = build_runtime(model, "tl2cgen", cache_dir=cache_dir, verify_rows=16, sample=sample)
    assert runtime.name == "tl2cgen"
    with pytest.raises(ValueError, match="unknown runtime kind"):
        build_runtime(model, "onnx")


def test_verification_rows_are_deterministic_and_cover_edges(model):
    a = verification_rows(model.booster, 256, N)
    b = verification_rows(model.booster, 256, N)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (256, N) and a.dtype == np.float32 and a.flags.c_contiguous
    assert np.isnan(a).any() and np.isnan(a).all(axis=1).any()
    assert (a == 0).all(axis=1).any()


def test_concurrent_callers_get_their_own_scores(model, cache_dir, rows):
    runtimes = [build_runtime(model, "native"), build_runtime(model, "tl2cgen", cache_dir)]
    expected = _reference(model, rows)
    errors: list[str] = []

    def worker(rt, offset: int) -> None:
        for k in range(300):
            i = (offset + k * 7) % (len(rows) - 4)
            got = rt.predict(rows[i : i + 1 + k % 4])
            if not np.allclose(got, expected[i : i + 1 + k % 4], rtol=0, atol=1e-5):
                errors.append(f"{rt.name} rows {i}")

    threads = [
        threading.Thread(target=worker, args=(rt, t * 13)) for rt in runtimes for t in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert isinstance(runtimes[1], Tl2cgenRuntime)
