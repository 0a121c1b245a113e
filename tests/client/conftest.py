"""Servers for the client tests.

* ``server``: the plain two-model server of ``tests/serving/conftest.py`` (reused, not copied: the
  module is loaded by path and its fixture re-exported here).
* ``experiment_server``: the same process start, with the demo config (80/20 experiment by
  ``card_id``, 100% shadow mirror, SQLite ledger, admin token ``TOKEN``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "fraudgate_tests_serving_conftest", Path(__file__).parents[1] / "serving" / "conftest.py"
)
_serving = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = _serving  # dataclasses need their module registered
    _spec.loader.exec_module(_serving)

server = _serving.server  # the fixture, re-exported for tests/client
ServerProcess = _serving.ServerProcess

TOKEN = "client-tests-token-0123456789"  # also spelled out in the test modules


def _start(config: Path, root: Path, free_port) -> Iterator[ServerProcess]:
    http_port, grpc_port = free_port(), free_port()
    log = root / "server.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache"), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fraudgate.serving",
                "--config",
                str(config),
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        _serving._wait_ready(url, proc, log)
        yield ServerProcess(url, f"127.0.0.1:{grpc_port}", http_port, grpc_port, config, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def experiment_server(
    trained_registry, free_port, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    from fraudgate.config import write_default_config

    root = tmp_path_factory.mktemp("experiment-server")
    try:
        config = write_default_config(
            root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=True, token=TOKEN
        )
    except TypeError:
        pytest.skip("write_default_config(experiment=True, token=...) has not landed yet")
    yield from _start(config, root, free_port)
