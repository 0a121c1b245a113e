"""The one model loader (server and shipper) against a real SQLite MLflow registry; no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from fraudgate.ledger.mirror import _load as shipper_load
from fraudgate.registry import Registry, RegistryError
from fraudgate.runtimes import LoadedRuntime, RuntimeLoader, load_runtime

N = 30


def _train(seed: int) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, N)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=len(x)) > 1.0).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": seed}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=20)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A registry with a good champion and a version whose booster file is cut mid-tree."""
    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(tracking_uri)
    booster = _train(seed=1)
    registry.register(
        booster, serving_name="fraud-v1", alias="champion", threshold=0.5, params={}, metrics={}
    )
    before = set(root.rglob("booster.txt"))
    registry.register(
        booster, serving_name="fraud-bad", alias="corrupt", threshold=0.5, params={}, metrics={}
    )
    (corrupt,) = set(root.rglob("booster.txt")) - before
    text = corrupt.read_text()
    corrupt.write_text(text[: len(text) // 2])  # LightGBM's parser crashes on this
    return tracking_uri, root


def test_loader_gives_the_model_and_a_verified_runtime(store, tmp_path):
    tracking_uri, _ = store
    loader = RuntimeLoader(tracking_uri, cache_dir=tmp_path)
    served = loader.load("models:/fraud-detection@champion", "tl2cgen")
    assert isinstance(served, LoadedRuntime)
    assert served.model.serving_name == "fraud-v1" and served.model.threshold == 0.5
    assert served.runtime.name == "tl2cgen"
    assert served.runtime.report is not None and served.runtime.report.chosen == "tl2cgen"
    x = np.random.default_rng(3).normal(size=(16, N)).astype(np.float32)
    expected = np.asarray(served.model.pyfunc.predict(x), dtype=np.float64).reshape(-1)
    np.testing.assert_allclose(served.runtime.predict(x), expected, rtol=0, atol=1e-5)
    # a pinned version (what a mirror entry names) loads through the same registry
    pinned = loader.load(f"models:/fraud-detection/{served.model.version}", "native")
    assert pinned.model.version == served.model.version and pinned.runtime.name == "native"


def test_a_corrupt_model_file_is_rejected_without_crashing_the_loader(store):
    tracking_uri, _ = store
    with pytest.raises(RegistryError, match=r"booster\.txt.*the model file is corrupt\?"):
        load_runtime(tracking_uri, "models:/fraud-detection@corrupt", "auto")


def test_the_shipper_checks_model_files_in_a_child_process_too(store):
    # before the shared loader, the shipper parsed the file itself and LightGBM killed it
    tracking_uri, _ = store
    with pytest.raises(RegistryError, match=r"the model file is corrupt\?"):
        shipper_load(tracking_uri, "models:/fraud-detection@corrupt", "tl2cgen")
    runtime = shipper_load(tracking_uri, "models:/fraud-detection@champion", "not-a-kind")
    assert runtime.name in {"tl2cgen", "native"}  # an unknown kind in an entry builds auto


def test_importing_the_runtimes_loads_no_heavy_library():
    # every public name resolves, and none of them pulls MLflow or LightGBM in at import time
    code = (
        "import sys, fraudgate.runtimes\n"
        "from fraudgate.runtimes import KINDS, RuntimeLoader, build_runtime\n"
        "import fraudgate.runtimes as r; [getattr(r, name) for name in r.__all__]\n"
        "heavy = ('mlflow', 'lightgbm', 'pandas', 'sklearn', 'treelite', 'tl2cgen')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
