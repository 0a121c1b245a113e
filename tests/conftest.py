"""Shared fixtures: a real MLflow registry, real server processes, a real PostgreSQL database.

* ``trained_registry`` (session): trains two boosters on random 30-feature data, registers them as
  versions of ``fraud-detection`` (aliases champion/challenger, serving names fraud-v1-baseline /
  fraud-v2-candidate, thresholds 0.5 / 0.3) in a temporary SQLite store, each with a drift
  reference of its training distribution. Returns `TrainedRegistry`.
* ``free_port`` (fixture): a function returning a currently free TCP port on 127.0.0.1.
* ``launch`` / ``module_launch`` / ``session_launch``: ``launch(config_path, wait=True)`` starts a
  `fraudgate serve` process (fraudgate.server_process) and stops it with the fixture's scope;
  all share one compile cache, so models compile once per session.
* ``server`` (session): the plain two-model server (no experiment, no ledger).
* ``pg_database`` / ``pg_schema_url``: a PostgreSQL database at 127.0.0.1:5432 created for the
  session and dropped afterwards, and a fresh schema in it per test (skipped, with the reason,
  only when PostgreSQL is unreachable).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from fraudgate.config import write_default_config
from fraudgate.server_process import ServerProcess, start_server
from fraudgate.server_process import free_port as _free_port

N_FEATURES = 30


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
    from fraudgate.analysis.drift import drift_reference
    from fraudgate.data.contract import FEATURE_NAMES
    from fraudgate.registry import Registry

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri)
    champion, challenger = _train(1), _train(2)
    thresholds = {"fraud-v1-baseline": 0.5, "fraud-v2-candidate": 0.3}
    reference_x = np.random.default_rng(11).normal(size=(2000, N_FEATURES)).astype(np.float32)
    for booster, name, alias in (
        (champion, "fraud-v1-baseline", "champion"),
        (challenger, "fraud-v2-candidate", "challenger"),
    ):
        reference = drift_reference(reference_x, booster.predict(reference_x), FEATURE_NAMES)
        registry.register(
            booster,
            serving_name=name,
            alias=alias,
            threshold=thresholds[name],
            params={"num_leaves": 7},
            metrics={"auc": 0.9},
            drift_reference=reference,
        )
    sample = np.random.default_rng(7).normal(size=(200, N_FEATURES)).astype(np.float32)
    return TrainedRegistry(uri, root, champion, challenger, thresholds, sample)


# -- server processes ----------------------------------------------------------------------------


class Launcher:
    """Starts `fraudgate serve` processes; stops whatever is still running on close."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root, self.cache = root, cache
        self.started: list[ServerProcess] = []

    def __call__(self, config_path: Path, *, wait: bool = True) -> ServerProcess:
        log_path = self.root / f"server-{len(self.started)}.log"
        server = start_server(
            config_path, log_path, env={"XDG_CACHE_HOME": str(self.cache)}, wait=wait
        )
        self.started.append(server)
        return server

    def close(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def launch(tmp_path: Path, compile_cache: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path, compile_cache)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def module_launch(tmp_path_factory, compile_cache: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path_factory.mktemp("servers"), compile_cache)
    yield launcher
    launcher.close()


@pytest.fixture(scope="session")
def session_launch(tmp_path_factory, compile_cache: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path_factory.mktemp("session-servers"), compile_cache)
    yield launcher
    launcher.close()


@pytest.fixture(scope="session")
def server(trained_registry, session_launch, tmp_path_factory) -> ServerProcess:
    """The plain two-model server: no experiment, no ledger."""
    root = tmp_path_factory.mktemp("server")
    config = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
    return session_launch(config)


# -- PostgreSQL ----------------------------------------------------------------------------------

PG_HOST = os.environ.get("FRAUDGATE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FRAUDGATE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FRAUDGATE_TEST_PG_USER", "postgres")


def _pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin_engine() -> tuple[sa.Engine | None, str]:
    """An AUTOCOMMIT engine on a maintenance database, or (None, why not)."""
    reasons = []
    for maintenance_db in ("postgres", "test"):
        engine = sa.create_engine(
            _pg_url(maintenance_db),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return engine, ""
        except sa.exc.OperationalError as exc:
            engine.dispose()
            reasons.append(f"{maintenance_db}: {str(exc).splitlines()[0]}")
    return None, "; ".join(reasons)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a database created for this test session (dropped afterwards)."""
    admin, why = _admin_engine()
    if admin is None:
        pytest.skip(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} as {PG_USER} ({why})")
    name = f"fraudgate_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_schema_url(pg_database: str) -> str:
    """A fresh, empty schema in the session database, as a ledger URL."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{pg_database}?options=-csearch_path%3D{schema}"
