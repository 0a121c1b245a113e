"""`fraudgate serve` as a child process: start it, wait until ready, stop it."""

from __future__ import annotations

import json
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
    """A started `fraudgate serve`; with `ready_file`, its ports are the ones it reports there."""

    proc: subprocess.Popen
    config_path: Path
    log_path: Path
    ready_file: Path | None = None
    ports: tuple[int, int] | None = None  # (http, grpc) once known

    @property
    def http_port(self) -> int:
        return self._ports()[0]

    @property
    def grpc_port(self) -> int:
        return self._ports()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    http_url = url

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _ports(self, timeout: float = 120.0) -> tuple[int, int]:
        """The bound ports: given at start, or read from the ready file once the server wrote it."""
        deadline = time.monotonic() + timeout
        while self.ports is None:
            assert self.ready_file is not None
            if self.ready_file.exists():
                bound = json.loads(self.ready_file.read_text())
                self.ports = (int(bound["http_port"]), int(bound["grpc_port"]))
            elif self.proc.poll() is not None:
                raise self._failure(f"the server exited with code {self.proc.returncode}")
            elif time.monotonic() > deadline:
                raise self._failure(f"the server did not bind in {timeout:.0f}s")
            else:
                time.sleep(0.05)
        return self.ports

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll /v2/health/ready; fail with the log's tail if the process dies or stalls."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self._ports(timeout)[0]}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._failure(f"the server exited with code {self.proc.returncode}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise self._failure(f"the server was not ready after {timeout:.0f}s")

    def _failure(self, what: str) -> RuntimeError:
        return RuntimeError(f"{what}:\n{self.log()[-4000:]}")

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
    """Start `fraudgate serve`. Without ports it binds port 0 and reports the ports it got in a
    ready file next to the log: no window in which another process can take a chosen port."""
    log_path = Path(log_path)
    ready_file, ports = None, None
    if http_port is None and grpc_port is None:
        ready_file = log_path.with_name(log_path.name + ".ready.json")
        ready_file.unlink(missing_ok=True)
        asked = (0, 0)
    else:
        ports = asked = (http_port or free_port(), grpc_port or free_port())
    command = [
        sys.executable,
        "-m",
        "fraudgate",
        "serve",
        "--config",
        str(config_path),
        "--http-port",
        str(asked[0]),
        "--grpc-port",
        str(asked[1]),
    ]
    if ready_file is not None:
        command += ["--ready-file", str(ready_file)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    server = ServerProcess(proc, Path(config_path), log_path, ready_file, ports)
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
