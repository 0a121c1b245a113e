"""The model both servers serve: the demo's registered champion, or a realistic stand-in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fraudgate.data.contract import N_FEATURES

SERVING_NAME = "fraud-v1-baseline"
MODEL_URI = "models:/fraud-detection@champion"


@dataclass(frozen=True)
class BenchModel:
    workdir: Path
    tracking_uri: str
    model_uri: str
    version: str
    local_path: Path  # the MLflow model directory (MLmodel + model.lgb) MLServer loads
    source: str  # "workdir" or "stand-in"
    n_trees: int


def _has_champion(tracking_uri: str) -> bool:
    from fraudgate.registry import Registry

    return "champion" in Registry(tracking_uri).aliases()


def train_stand_in(workdir: Path, *, n_trees: int = 300, seed: int = 7) -> str:
    """Register a LightGBM model shaped like the real one (30 features, ~300 trees) as champion."""
    import lightgbm as lgb

    from fraudgate.analysis.drift import drift_reference
    from fraudgate.data.contract import FEATURE_NAMES
    from fraudgate.registry import Registry, resolve_tracking_uri

    rng = np.random.default_rng(seed)
    n = 40_000
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    X[:, 0] = rng.lognormal(3.5, 1.2, size=n)  # amount-like
    logit = -4.0 + 1.2 * X[:, 1] - 0.8 * X[:, 5] + 0.6 * X[:, 7] * X[:, 9] + 0.002 * X[:, 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.8,
        "verbose": -1,
        "num_threads": 1,
        "seed": seed,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=n_trees)
    workdir.mkdir(parents=True, exist_ok=True)
    registry = Registry(resolve_tracking_uri(None, workdir))
    return registry.register(
        booster,
        serving_name=SERVING_NAME,
        alias="champion",
        threshold=0.5,
        params={**params, "num_boost_round": n_trees, "stand_in": True},
        metrics={"positive_rate": float(y.mean())},
        sample=X[:2],
        # as `fraudgate train` registers: the server samples its scored rows for drift
        drift_reference=drift_reference(X, booster.predict(X), FEATURE_NAMES, seed=seed),
    )


def prepare(workdir: Path | None, scratch: Path) -> BenchModel:
    """Use the champion in `workdir` when it has one, else train a stand-in under `scratch`."""
    from fraudgate.registry import Registry, resolve_tracking_uri

    source = "workdir"
    if workdir is None or not (workdir / "mlflow.db").exists():
        source = "stand-in"
    else:
        tracking_uri = f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
        if not _has_champion(tracking_uri):
            source = "stand-in"
    if source == "stand-in":
        workdir = scratch / "workdir"
        train_stand_in(workdir)
    assert workdir is not None
    tracking_uri = resolve_tracking_uri(None, workdir)
    # Ignore MLFLOW_TRACKING_URI for the bench: the work dir's own store is the one both serve.
    tracking_uri = f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
    loaded = Registry(tracking_uri).load(MODEL_URI)
    # A stable local copy MLServer can load (parameters.uri), independent of MLflow's temp dirs.
    import mlflow.artifacts

    dst = scratch / "model-artifacts"
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=MODEL_URI, dst_path=str(dst), tracking_uri=tracking_uri
        )
    )
    return BenchModel(
        workdir=workdir,
        tracking_uri=tracking_uri,
        model_uri=MODEL_URI,
        version=loaded.version,
        local_path=local,
        source=source,
        n_trees=loaded.booster.num_trees(),
    )


def sample_row(seed: int = 11) -> list[float]:
    """One realistic-looking row of 30 floats (the payload both servers receive)."""
    rng = np.random.default_rng(seed)
    row = rng.normal(size=N_FEATURES).astype(np.float32)
    row[0] = 149.62
    return [float(round(float(v), 4)) for v in row]


def local_score(model: BenchModel, row: list[float]) -> float:
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(model.local_path))
    out = pyfunc.predict(np.asarray([row], dtype=np.float32))
    return float(np.asarray(out).ravel()[0])
