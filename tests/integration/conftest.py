"""Real `fraudgate serve` processes with the demo's experiment, over real ledgers.

* ``trained_registry`` (tests/conftest.py): two small LightGBM models in a SQLite MLflow store.
* ``pg_database`` / ``pg_schema_url``: the ledger tests' PostgreSQL fixtures (tests/ledger/
  conftest.py, loaded from its file so the helpers are not copied): a database created for the
  session at 127.0.0.1:5432 and dropped afterwards, and a fresh schema per test.
* ``launch``: starts servers from a config (demo experiment + ledger + token by default), waits
  until they are ready, and kills whatever is still running at the end of the test.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fraudgate.config import write_default_config

TOKEN = "integration-test-token"
V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
EXPERIMENT = "fraud-detection-ab-test"


def _load_ledger_conftest() -> Any:
    path = Path(__file__).parent.parent / "ledger" / "conftest.py"
    spec = importlib.util.spec_from_file_location("fraudgate_tests_ledger_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ledger_conftest = _load_ledger_conftest()
pg_database = _ledger_conftest.pg_database
pg_schema_url = _ledger_conftest.pg_schema_url


@dataclass
class Server:
    proc: subprocess.Popen
    http_port: int
    grpc_port: int
    config_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


def write_config(
    path: Path,
    tracking_uri: str,
    *,
    ledger_url: str | None = None,
    weights: tuple[int, int] | None = None,
    poll_s: float | None = None,
    seed: int | None = None,
    mirror_percent: int | None = None,
) -> Path:
    """The demo's config (experiment, SQLite ledger next to it, token), adjusted for a test."""
    write_default_config(path, tracking_uri, token=TOKEN)
    data = yaml.safe_load(path.read_text())
    if ledger_url is not None:
        data["ledger"]["url"] = ledger_url
    if weights is not None:
        for candidate, weight in zip(data["experiment"]["candidates"], weights, strict=True):
            candidate["weight"] = weight
    if poll_s is not None:
        data["ledger"]["weights_poll_s"] = poll_s
    if seed is not None:
        data["experiment"]["seed"] = seed
    if mirror_percent is not None:
        data["experiment"]["mirror"]["percent"] = mirror_percent
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.proc.returncode}:\n{server.log()[-4000:]}"
            )
        try:
            if httpx.get(f"{server.url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{server.log()[-4000:]}")


class Launcher:
    """Starts servers (demo experiment + ledger + token by default); kills them on close."""

    def __init__(self, free_port: Callable[[], int], root: Path, cache: Path) -> None:
        self.free_port, self.root, self.cache = free_port, root, cache
        self.started: list[Server] = []

    def __call__(self, config_path: Path, *, wait: bool = True) -> Server:
        http_port, grpc_port = self.free_port(), self.free_port()
        log_path = self.root / f"server-{len(self.started)}-{http_port}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(self.cache)}
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fraudgate.serving",
                    "--config",
                    str(config_path),
                    "--http-port",
                    str(http_port),
                    "--grpc-port",
                    str(grpc_port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = Server(proc, http_port, grpc_port, config_path, log_path)
        self.started.append(server)
        if wait:
            wait_ready(server)
        return server

    def close(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
        for server in self.started:
            try:
                server.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One XDG cache for every server of the session: models compile once, later starts are fast."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def launch(free_port, tmp_path: Path, compile_cache: Path) -> Iterator[Launcher]:
    """``launch(config_path, wait=True) -> Server``; every server is stopped at teardown."""
    launcher = Launcher(free_port, tmp_path, compile_cache)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def module_launch(
    free_port, tmp_path_factory: pytest.TempPathFactory, compile_cache: Path
) -> Iterator[Launcher]:
    launcher = Launcher(free_port, tmp_path_factory.mktemp("servers"), compile_cache)
    yield launcher
    launcher.close()
