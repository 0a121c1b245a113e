"""Start and stop the benchmarked servers: pinned, bounded in time, always killed on exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fraudgate.server_process import free_port  # noqa: F401  (re-exported for the benches)

SERVER_CPU = 1
LOAD_CPU = 0

_LIVE: list[subprocess.Popen] = []
# `--nice N` (negative needs root): raise the benchmarked processes above the machine's other work
NICE = 0


def _kill_all() -> None:
    for proc in list(_LIVE):
        stop(proc)


atexit.register(_kill_all)


def _on_signal(signum, frame):  # noqa: ARG001
    _kill_all()
    raise SystemExit(128 + signum)


def _install_signal_handlers() -> None:
    """Kill our servers on SIGTERM/SIGHUP too (atexit alone misses those); main thread only."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not _on_signal:
            signal.signal(signum, _on_signal)


def cpus_available() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin(cpu: int | None) -> list[str]:
    """A `taskset` prefix for one CPU (none on a single-core machine), plus `nice` if asked."""
    prefix = []
    if NICE:
        # With autogroup scheduling (the Linux default) a plain `nice` only ranks processes within
        # one session; the session's autogroup nice ranks it against the machine's other work.
        # Callers start these commands with start_new_session=True, so each gets its own group.
        autogroup = f'echo {NICE} > /proc/self/autogroup 2>/dev/null; exec "$@"'
        prefix = ["sh", "-c", autogroup, "sh", "nice", "-n", str(NICE)]
    if cpu is None or len(cpus_available()) < 2:
        return prefix
    return prefix + ["taskset", "-c", str(cpu)]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    http_port: int
    grpc_port: int | None
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def spawn(
    argv: list[str],
    *,
    cpu: int | None,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``argv`` pinned to ``cpu`` in its own process group, killed when the bench exits."""
    _install_signal_handlers()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        pin(cpu) + argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,  # its own process group: we kill the whole tree
    )
    log.close()
    _LIVE.append(proc)
    return proc


def start(
    name: str,
    argv: list[str],
    *,
    http_port: int,
    grpc_port: int | None,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Server:
    proc = spawn(argv, cpu=SERVER_CPU, log_path=log_path, env=env, cwd=cwd)
    return Server(name, proc, http_port, grpc_port, log_path)


def wait_ready(server: Server, path: str, timeout: float) -> float:
    """Poll `path` until it answers 200; return the seconds it took. Raise with the log tail."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with code {server.proc.returncode} before it was ready;"
                f" log {server.log_path}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(
        f"{server.name} not ready at {server.base_url}{path} after {timeout:.0f}s ({last});"
        f" log {server.log_path}:\n{server.log_tail()}"
    )


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc in _LIVE:
        _LIVE.remove(proc)
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its live children (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_quiet(max_s: float = 60.0, window_s: float = 0.25, busy_below: float = 0.1) -> float:
    """Wait until the machine is nearly idle (below ``busy_below`` of all CPUs over a window),
    at most ``max_s``; returns the seconds waited. A shipper still catching up on the previous
    cell's backlog, or a model being compiled, must not run during the next measurement."""
    start = time.monotonic()
    while True:
        busy0, total0 = _cpu_jiffies()
        time.sleep(window_s)
        busy1, total1 = _cpu_jiffies()
        waited = time.monotonic() - start
        if total1 == total0 or (busy1 - busy0) / (total1 - total0) < busy_below or waited > max_s:
            return waited
