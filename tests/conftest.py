"""Shared fixtures: a real SQLite MLflow registry holding two small trained LightGBM models.

* ``trained_registry`` (session): trains two boosters on random 30-feature data, registers them as
  versions of ``fraud-detection`` (aliases champion/challenger, serving names fraud-v1-baseline /
  fraud-v2-candidate, thresholds 0.5 / 0.3) in a temporary SQLite store. Returns `TrainedRegistry`.
* ``free_port`` (fixture): a function returning a currently free TCP port on 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

N_FEATURES = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    return _free_port


@dataclass(frozen=True)
class TrainedRegistry:
    tracking_uri: str
    root: Path
    champion: object  # lightgbm.Booster
    challenger: object  # lightgbm.Booster
    thresholds: dict[str, float]  # serving name -> registered threshold
    sample: np.ndarray  # [200, 30] float32 rows to score


def _train(seed: int, rows: int = 400):
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=rows)) > 1.0).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": seed}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=15)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> TrainedRegistry:
    from fraudgate.registry import Registry

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri)
    champion, challenger = _train(1), _train(2)
    thresholds = {"fraud-v1-baseline": 0.5, "fraud-v2-candidate": 0.3}
    for booster, name, alias in (
        (champion, "fraud-v1-baseline", "champion"),
        (challenger, "fraud-v2-candidate", "challenger"),
    ):
        registry.register(
            booster,
            serving_name=name,
            alias=alias,
            threshold=thresholds[name],
            params={"num_leaves": 7},
            metrics={"auc": 0.9},
        )
    sample = np.random.default_rng(7).normal(size=(200, N_FEATURES)).astype(np.float32)
    return TrainedRegistry(uri, root, champion, challenger, thresholds, sample)
