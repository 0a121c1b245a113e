"""A real `fraudgate.serving` process over the shared trained registry (see tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fraudgate.config import write_default_config


@dataclass(frozen=True)
class ServerProcess:
    http_url: str
    grpc_address: str
    http_port: int
    grpc_port: int
    config_path: Path
    log_path: Path


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(
    trained_registry, free_port, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("server")
    config = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
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
        _wait_ready(url, proc, log)
        yield ServerProcess(url, f"127.0.0.1:{grpc_port}", http_port, grpc_port, config, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
