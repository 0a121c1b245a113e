"""The HTTP load generator: wrk, a Lua script for the POST body, one JSON line out of done()."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from _procs import LOAD_CPU, pin

MARK = "FRAUDGATE_BENCH "
PERCENTILES = (50, 90, 99, 99.9)

_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[BODY]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'MARK{"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{"min":%d,"mean":%.2f,"max":%d,"stdev":%.2f,'
    .. '"p50":%d,"p90":%d,"p99":%d,"p99.9":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
"""


def lua_script(body: bytes) -> str:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("payload cannot contain ']==]'")
    return _LUA.replace("BODY", text).replace("MARK", MARK)


def ensure_wrk() -> str:
    """Return wrk's path; install it with apt-get when running as root, else say how."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing it with apt-get (Debian package 'wrk') ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
        path = shutil.which("wrk")
        if path:
            return path
    raise SystemExit(
        "the benchmark needs the HTTP load generator `wrk`, which is not installed.\n"
        "Install it with: sudo apt-get update && sudo apt-get install -y wrk   (Debian/Ubuntu)\n"
        "or: brew install wrk   (macOS), then rerun `make bench`."
    )


def wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].strip()


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int]
    error_total: int
    loadgen_cpu_s: float = 0.0
    loadgen_cpu_util: float = 0.0  # of one core: close to 1.0 means wrk itself was the limit

    def as_dict(self) -> dict:
        return asdict(self)


def parse(stdout: str) -> WrkResult:
    """Read the JSON line the Lua done() hook printed."""
    for line in stdout.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            break
    else:
        raise ValueError(f"no {MARK.strip()} line in wrk output:\n{stdout}")
    lat = data["latency_us"]
    duration_s = data["duration_us"] / 1e6
    errors = {k: int(v) for k, v in data["errors"].items()}
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=duration_s,
        rps=data["requests"] / duration_s if duration_s else 0.0,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        p999_ms=lat["p99.9"] / 1000,
        mean_ms=lat["mean"] / 1000,
        max_ms=lat["max"] / 1000,
        errors=errors,
        error_total=sum(errors.values()),
    )


def run(
    url: str,
    script: Path,
    *,
    connections: int,
    threads: int,
    duration_s: float,
    timeout_s: float = 2.0,
) -> WrkResult:
    """One bounded wrk run pinned to the load core; CPU use of wrk comes from its rusage."""
    argv = pin(LOAD_CPU) + [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 60, start_new_session=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}\n{proc.stdout}")
    result = parse(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result.loadgen_cpu_s = cpu
    result.loadgen_cpu_util = cpu / result.duration_s if result.duration_s else 0.0
    return result
