"""`fraudgate serve` as a child process: start it, wait until ready, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    http_port: int
    grpc_port: int
    config_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    http_url = url

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll /v2/health/ready; fail with the log's tail if the process dies or stalls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.proc.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server was not ready after {timeout:.0f}s:\n{self.log()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful: the ledger flushes), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(
    config_path: Path,
    log_path: Path,
    *,
    http_port: int | None = None,
    grpc_port: int | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
    ready_timeout: float = 120.0,
) -> ServerProcess:
    http_port = http_port or free_port()
    grpc_port = grpc_port or free_port()
    command = [
        sys.executable,
        "-m",
        "fraudgate",
        "serve",
        "--config",
        str(config_path),
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
    ]
    with Path(log_path).open("wb") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    server = ServerProcess(proc, http_port, grpc_port, Path(config_path), Path(log_path))
    if wait:
        try:
            server.wait_ready(ready_timeout)
        except BaseException:
            server.stop()
            raise
    return server


@contextmanager
def running_server(config_path: Path, log_path: Path, **options) -> Iterator[ServerProcess]:
    """`start_server` for a with-block: the server is stopped however the block ends."""
    server = start_server(config_path, log_path, **options)
    try:
        yield server
    finally:
        server.stop()
