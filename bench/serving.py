"""Serving benchmark: fraudgate vs MLServer 1.7.1 + mlserver-mlflow, same model, same load.

    .venv/bin/python bench/serving.py [--workdir .fraudgate/demo] [--duration 10] [--warmup 2]

Both servers serve the same registered MLflow model version (the work dir's
``models:/fraud-detection@champion``, or a LightGBM stand-in of the same shape registered into a
scratch work dir). Each gets the seed's ``[1, 30]`` FP32 request, checked to score the same before
any load. One server runs at a time, pinned to CPU 1; the load generator is pinned to CPU 0:

* REST: ``wrk`` (Lua script for the POST body, percentiles from its done() hook), -c1 and -c32;
* gRPC ModelInfer: a grpc.aio client (bench/_grpc_load.py) that reports its own CPU use;
* the floor: a bare ASGI echo of the same payload on uvicorn (httptools + uvloop), under wrk.

Prints a table and writes bench/results/serving.json. Exits non-zero if any request failed, the
scores disagree or a server could not start; the targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import _model  # noqa: E402
import _procs  # noqa: E402
import _wrk  # noqa: E402

SERVING_NAME = _model.SERVING_NAME
INFER_PATH = f"/v2/models/{SERVING_NAME}/infer"
CONCURRENCY = (1, 32)
SCORE_TOLERANCE = 1e-5
TARGETS = {
    "throughput_ratio_c32": ">= 10x MLServer requests/s at concurrency 32",
    "p99_ms_c32": "<= 10 ms p99 at concurrency 32",
    "p50_ratio_c1": "<= 1/3 of MLServer's p50 at concurrency 1",
}


class BenchError(RuntimeError):
    pass


# -- the payload ---------------------------------------------------------------------------------
def build_payload(row: list[float]) -> bytes:
    """The seed's plain-HTTP request: one `[1, 30]` FP32 row, content type np."""
    if len(row) != 30:
        raise ValueError(f"a row has 30 features, got {len(row)}")
    return json.dumps(
        {
            "inputs": [
                {"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": row}
            ],
            "parameters": {"content_type": "np"},
        }
    ).encode()


def score_of(response: dict) -> float:
    """outputs[0].data[0], flat or nested, as the seed's client reads it."""
    data = response["outputs"][0]["data"]
    while isinstance(data, list):
        data = data[0]
    return float(data)


def post_infer(base_url: str, body: bytes) -> dict:
    request = urllib.request.Request(
        base_url + INFER_PATH, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        if resp.status != 200:
            raise BenchError(f"{base_url}{INFER_PATH} answered {resp.status}")
        return json.loads(resp.read())


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


# -- the servers -----------------------------------------------------------------------------------
def write_fraudgate_config(path: Path, tracking_uri: str, http_port: int, grpc_port: int) -> Path:
    """The demo's default config, reduced to the one model MLServer serves too."""
    import yaml

    from fraudgate.config import default_config_dict, load_config

    config = default_config_dict(tracking_uri)
    config["models"] = [m for m in config["models"] if m["name"] == SERVING_NAME]
    config["server"].update({"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port})
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    load_config(path)
    return path


def fraudgate_argv(config: Path, http_port: int, grpc_port: int) -> list[str]:
    """`fraudgate serve ...`, or the same server through `python -m fraudgate serve`."""
    from importlib.util import find_spec

    flags = ["--config", str(config), "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    exe = Path(sys.executable).parent / "fraudgate"
    if exe.exists() and find_spec("fraudgate.cli") is not None:
        return [str(exe), "serve", *flags]
    if find_spec("fraudgate.cli.serve") is not None:
        return [sys.executable, "-m", "fraudgate", "serve", *flags]
    code = (
        "import sys; from fraudgate.serving.server import run_server;"
        " run_server(sys.argv[1], http_port=int(sys.argv[2]), grpc_port=int(sys.argv[3]))"
    )
    return [sys.executable, "-c", code, str(config), str(http_port), str(grpc_port)]


def start_fraudgate(model: _model.BenchModel, scratch: Path, timeout: float) -> _procs.Server:
    http_port, grpc_port = _procs.free_port(), _procs.free_port()
    config = write_fraudgate_config(
        scratch / "fraudgate.yaml", model.tracking_uri, http_port, grpc_port
    )
    server = _procs.start(
        "fraudgate",
        fraudgate_argv(config, http_port, grpc_port),
        http_port=http_port,
        grpc_port=grpc_port,
        log_path=scratch / "logs" / "fraudgate.log",
        cwd=scratch,
    )
    server.extra["startup_s"] = _procs.wait_ready(
        server, f"/v2/models/{SERVING_NAME}/ready", timeout
    )
    return server


def start_mlserver(model: _model.BenchModel, scratch: Path, timeout: float) -> _procs.Server:
    import _mlserver

    return _mlserver.launch(
        scratch / "mlserver-repo", model.local_path, SERVING_NAME, scratch / "logs", timeout
    )


def start_echo(scratch: Path, timeout: float) -> _procs.Server:
    port = _procs.free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "_echo_app:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = _procs.start(
        "echo", argv, http_port=port, grpc_port=None, log_path=scratch / "logs" / "echo.log"
    )
    server.extra["startup_s"] = _procs.wait_ready(server, "/", timeout)
    return server


# -- measuring -------------------------------------------------------------------------------------
def load_cells(server, name: str, script, row, args, scores: dict) -> list[dict]:
    """wrk (and gRPC unless skipped) at every concurrency against one server."""
    cells = []
    for c in CONCURRENCY:
        print(f"wrk -> {name} c={c} ...", flush=True)
        cells.append(http_cell(server, script, c, args, name))
    if not args.skip_grpc:
        for c in CONCURRENCY:
            print(f"grpc -> {name} c={c} ...", flush=True)
            cell = grpc_cell(server, row, c, args, name)
            scores[f"{name}-grpc"] = cell.pop("score")
            cells.append(cell)
    return cells


def http_cell(server: _procs.Server, script: Path, c: int, args, label: str) -> dict:
    """Warm up, then `--repeat` measured wrk runs; the run with the median req/s is reported,
    every run's req/s and errors are kept (errors of any run count)."""
    url = server.base_url + (INFER_PATH if server.name != "echo" else "/")
    threads = 1  # wrk is pinned to one core: a second thread there would only contend
    warm = _wrk.run(url, script, connections=c, threads=threads, duration_s=args.warmup)
    runs = []
    for _ in range(max(1, args.repeat)):
        cpu0 = _procs.cpu_seconds(server.proc.pid)
        result = _wrk.run(url, script, connections=c, threads=threads, duration_s=args.duration)
        cpu1 = _procs.cpu_seconds(server.proc.pid)
        run = {**result.as_dict(), **_server_cpu(cpu1 - cpu0, result.duration_s, result.requests)}
        runs.append(run)
    median = sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]
    cell = {
        "server": label,
        "protocol": "http",
        "load_generator": f"wrk -t{threads} -c{c}",
        "concurrency": c,
        **median,
        "warmup_errors": warm.error_total,
    }
    if len(runs) > 1:
        cell["runs_rps"] = [r["rps"] for r in runs]
        cell["runs_p99_ms"] = [r["p99_ms"] for r in runs]
        cell["error_total"] = sum(r["error_total"] for r in runs)
    return cell


def _server_cpu(cpu_s: float, wall_s: float, requests: int) -> dict:
    """CPU the server burnt: its share of its core, and requests per CPU-second (the efficiency
    figure that stays meaningful when other work on the machine steals the server's core)."""
    return {
        "server_cpu_s": cpu_s,
        "server_cpu_util": cpu_s / wall_s if wall_s else 0.0,
        "requests_per_server_cpu_s": requests / cpu_s if cpu_s > 0 else None,
    }


def grpc_cell(server: _procs.Server, row: list[float], c: int, args, label: str) -> dict:
    argv = _procs.pin(_procs.LOAD_CPU) + [
        sys.executable,
        str(BENCH_DIR / "_grpc_load.py"),
        "--target",
        f"127.0.0.1:{server.grpc_port}",
        "--model",
        SERVING_NAME,
        "--concurrency",
        str(c),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--row",
        json.dumps(row),
    ]
    cpu0 = _procs.cpu_seconds(server.proc.pid)
    t0 = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=args.duration + args.warmup + 90,
        start_new_session=True,  # its own autogroup, for --nice
    )
    cpu1 = _procs.cpu_seconds(server.proc.pid)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(f"gRPC load generator failed against {label}:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith(_wrk.MARK))
    result = json.loads(line[len(_wrk.MARK) :])
    return {
        "server": label,
        "protocol": "grpc",
        "load_generator": f"python grpc.aio x{c}",
        "concurrency": c,
        **result,
        # the client's start-up and warm-up are inside this window: the server's CPU share is
        # an under-estimate, its CPU per request an over-estimate (warm-up requests count too)
        **_server_cpu(cpu1 - cpu0, wall, result["requests"]),
    }


def check_scores(label: str, got: float, want: float, what: str) -> None:
    if abs(got - want) > SCORE_TOLERANCE:
        raise BenchError(
            f"{label} scored {got!r}, {what} scored {want!r}: they differ by more than"
            f" {SCORE_TOLERANCE} - the servers are not serving the same model"
        )


# -- reporting -------------------------------------------------------------------------------------
def _version(name: str) -> str | None:
    try:
        return pkg_version(name)
    except PackageNotFoundError:
        return None


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return rev.stdout.strip() or None


def machine_info() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_available": _procs.cpus_available(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def find(cells: list[dict], server: str, protocol: str, c: int) -> dict | None:
    for cell in cells:
        if (cell["server"], cell["protocol"], cell["concurrency"]) == (server, protocol, c):
            return cell
    return None


def ratios_and_targets(cells: list[dict]) -> tuple[dict, dict]:
    ratios: dict[str, float | None] = {}
    fg32, ml32 = find(cells, "fraudgate", "http", 32), find(cells, "mlserver", "http", 32)
    fg1, ml1 = find(cells, "fraudgate", "http", 1), find(cells, "mlserver", "http", 1)
    echo32, echo1 = find(cells, "echo", "http", 32), find(cells, "echo", "http", 1)
    for c, fg, ml in ((1, fg1, ml1), (32, fg32, ml32)):
        if fg and ml:
            ratios[f"throughput_ratio_c{c}"] = fg["rps"] / ml["rps"]
            ratios[f"p50_ratio_c{c}"] = fg["p50_ms"] / ml["p50_ms"]
            ratios[f"p99_ratio_c{c}"] = fg["p99_ms"] / ml["p99_ms"]
    if (
        fg32
        and ml32
        and fg32.get("requests_per_server_cpu_s")
        and ml32.get("requests_per_server_cpu_s")
    ):
        ratios["cpu_efficiency_ratio_c32"] = (
            fg32["requests_per_server_cpu_s"] / ml32["requests_per_server_cpu_s"]
        )
    for c, fg, echo in ((1, fg1, echo1), (32, fg32, echo32)):
        if fg and echo:
            ratios[f"fraudgate_vs_echo_throughput_c{c}"] = fg["rps"] / echo["rps"]
            ratios[f"fraudgate_minus_echo_p50_ms_c{c}"] = fg["p50_ms"] - echo["p50_ms"]
    for c in CONCURRENCY:
        g_fg, g_ml = find(cells, "fraudgate", "grpc", c), find(cells, "mlserver", "grpc", c)
        if g_fg and g_ml:
            ratios[f"grpc_throughput_ratio_c{c}"] = g_fg["rps"] / g_ml["rps"]
            ratios[f"grpc_p50_ratio_c{c}"] = g_fg["p50_ms"] / g_ml["p50_ms"]
    targets = {}
    if "throughput_ratio_c32" in ratios:
        value = ratios["throughput_ratio_c32"]
        targets["throughput_ratio_c32"] = {"value": value, "target": 10.0, "met": value >= 10.0}
    if fg32:
        value = fg32["p99_ms"]
        targets["p99_ms_c32"] = {"value": value, "target": 10.0, "met": value <= 10.0}
    if "p50_ratio_c1" in ratios:
        value = ratios["p50_ratio_c1"]
        targets["p50_ratio_c1"] = {"value": value, "target": 1 / 3, "met": value <= 1 / 3}
    for name, target in targets.items():
        target["description"] = TARGETS[name]
    return ratios, targets


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 132)
    meta = report.get("fraudgate_model_metadata") or {}
    runtime = (meta.get("parameters") or {}).get("runtime", "?")
    table = Table(
        title=f"Serving benchmark: {SERVING_NAME} ({report['model']['source']} model,"
        f" {report['model']['n_trees']} trees; fraudgate runtime {runtime}), [1,30] FP32 request,"
        " server on CPU "
        f"{_procs.SERVER_CPU}, load on CPU {_procs.LOAD_CPU}"
    )
    for col in ("protocol", "server", "conc."):
        table.add_column(col)
    columns = ("req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors")
    columns += ("server CPU", "req/CPU-s", "load CPU")
    for col in columns:
        table.add_column(col, justify="right")
    for cell in report["cells"]:
        errors = cell["error_total"] + cell.get("warmup_errors", 0)
        table.add_row(
            cell["protocol"],
            cell["server"],
            str(cell["concurrency"]),
            f"{cell['rps']:,.0f}",
            f"{cell['p50_ms']:.2f}",
            f"{cell['p99_ms']:.2f}",
            f"{cell['p999_ms']:.2f}",
            f"[red]{errors}[/red]" if errors else "0",
            f"{cell['server_cpu_util']:.0%}",
            f"{cell['requests_per_server_cpu_s'] or 0:,.0f}",
            f"{cell['loadgen_cpu_util']:.0%}",
        )
    console.print(table)
    ratios = Table(title="fraudgate / MLServer")
    ratios.add_column("ratio")
    ratios.add_column("value", justify="right")
    for name, value in report["ratios"].items():
        ratios.add_row(name, "-" if value is None else f"{value:.3f}")
    console.print(ratios)
    targets = Table(title="Targets")
    for col in ("target", "measured", "met"):
        targets.add_column(col)
    for name, t in report["targets"].items():
        shown = f"{t['value']:.2f} ms" if name.startswith("p99_ms") else f"{t['value']:.3f}x"
        met = "[green]yes[/green]" if t["met"] else "[red]NO[/red]"
        targets.add_row(t["description"], shown, met)
    console.print(targets)
    for note in report["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    for error in report["errors"]:
        console.print(f"[bold red]ERROR:[/bold red] {error}")


def notes_for(cells: list[dict], nice: int) -> list[str]:
    notes = []
    for cell in cells:
        if cell["loadgen_cpu_util"] >= 0.9:
            notes.append(
                f"{cell['protocol']} {cell['server']} c={cell['concurrency']}: the load generator"
                f" used {cell['loadgen_cpu_util']:.0%} of its core, so it (not the server) may be"
                " the limit; the requests/s is a lower bound"
            )
    for cell in cells:
        if cell["server"] != "echo" and cell["concurrency"] > 1 and cell["server_cpu_util"] < 0.8:
            notes.append(
                f"{cell['protocol']} {cell['server']} c={cell['concurrency']}: the server got only"
                f" {cell['server_cpu_util']:.0%} of its core (other work on the machine, or it"
                " waited); compare req/CPU-s, which does not depend on that"
            )
    load = os.getloadavg()[0]
    if load > 2.5:
        advice = "" if nice else "; as root, --nice -10 keeps it off the benchmark's cores"
        notes.append(
            f"1-minute load average {load:.1f} on this machine: other work was running{advice}"
        )
    if nice:
        notes.append(f"servers and load generators ran at (autogroup) nice {nice}")
    return notes


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fraudgate vs MLServer serving benchmark")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".fraudgate" / "demo")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per cell")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measured wrk runs per HTTP cell; the median (by req/s) is reported",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "serving.json")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and load generators at this nice level (e.g. -10 as root) so other"
        " work on a shared machine steals less of their cores; 0 = as is",
    )
    parser.add_argument("--skip-fraudgate", action="store_true")
    parser.add_argument("--skip-mlserver", action="store_true")
    parser.add_argument("--skip-grpc", action="store_true")
    parser.add_argument("--skip-echo", action="store_true")
    return parser.parse_args(argv)


def measure_fraudgate(model, scratch, args, report, script, body, row) -> None:
    cells, scores, expected = report["cells"], report["scores"], report["scores"]["mlflow-pyfunc"]
    server = start_fraudgate(model, scratch, args.startup_timeout)
    try:
        report["fraudgate_startup_s"] = server.extra["startup_s"]
        with contextlib.suppress(Exception):
            report["fraudgate_model_metadata"] = get_json(
                f"{server.base_url}/v2/models/{SERVING_NAME}"
            )
        scores["fraudgate-http"] = score_of(post_infer(server.base_url, body))
        check_scores("fraudgate", scores["fraudgate-http"], expected, "the MLflow model")
        cells += load_cells(server, "fraudgate", script, row, args, scores)
    finally:
        _procs.stop(server.proc)


def run(args: argparse.Namespace) -> dict:
    started = time.time()
    if args.nice < 0 and os.geteuid() != 0:
        raise BenchError("--nice below 0 needs root; run without it or as root")
    _procs.NICE = args.nice
    wrk_path = _wrk.ensure_wrk()
    scratch = BENCH_DIR / ".scratch" / "serving"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)

    report: dict = {
        "benchmark": "serving",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "concurrency": list(CONCURRENCY),
            "server_cpu": _procs.SERVER_CPU,
            "load_cpu": _procs.LOAD_CPU,
            "pinned": bool(_procs.pin(0)),
            "target_host": "127.0.0.1",
            "one_server_at_a_time": True,
            "nice": args.nice,
        },
        "versions": {
            "fraudgate": {
                p: _version(p)
                for p in ("fraudgate", "mlflow", "lightgbm", "numpy", "uvicorn", "grpcio")
            },
            "git": git_revision(),
            "wrk": _wrk.wrk_version(),
            "wrk_path": wrk_path,
        },
        "cells": [],
        "errors": [],
        "notes": [],
    }
    print("preparing the model ...", flush=True)
    model = _model.prepare(args.workdir, scratch)
    row = _model.sample_row()
    body = build_payload(row)
    expected = _model.local_score(model, row)
    report["model"] = {
        "source": model.source,
        "workdir": str(model.workdir),
        "uri": model.model_uri,
        "registered_version": model.version,
        "local_path": str(model.local_path),
        "n_trees": model.n_trees,
        "mlflow_pyfunc_score": expected,
    }
    report["payload"] = json.loads(body)
    script = scratch / "post.lua"
    script.write_text(_wrk.lua_script(body))
    cells: list[dict] = report["cells"]
    scores: dict[str, float] = {"mlflow-pyfunc": expected}
    report["scores"] = scores

    if not args.skip_mlserver:
        import _mlserver

        _mlserver.ensure_venv()
        report["versions"]["mlserver_venv"] = _mlserver.versions()

    # fraudgate: verify the score against the MLflow model, then load it
    if not args.skip_fraudgate:
        print("starting fraudgate ...", flush=True)
        measure_fraudgate(model, scratch, args, report, script, body, row)

    if not args.skip_mlserver:
        print("starting MLServer 1.7.1 + mlserver-mlflow ...", flush=True)
        server = start_mlserver(model, scratch, args.startup_timeout)
        try:
            report["mlserver_startup_s"] = server.extra["startup_s"]
            scores["mlserver-http"] = score_of(post_infer(server.base_url, body))
            reference = "fraudgate-http" if "fraudgate-http" in scores else "mlflow-pyfunc"
            check_scores("MLServer", scores["mlserver-http"], scores[reference], reference)
            cells += load_cells(server, "mlserver", script, row, args, scores)
        finally:
            _procs.stop(server.proc)

    if not args.skip_echo:
        print("starting the bare ASGI echo ...", flush=True)
        server = start_echo(scratch, args.startup_timeout)
        try:
            for c in CONCURRENCY:
                print(f"wrk -> echo c={c} ...", flush=True)
                cells.append(http_cell(server, script, c, args, "echo"))
        finally:
            _procs.stop(server.proc)

    for name, score in scores.items():
        if abs(score - expected) > SCORE_TOLERANCE:
            report["errors"].append(f"{name} scored {score!r}, the MLflow model {expected!r}")
    for cell in cells:
        errors = cell["error_total"] + cell.get("warmup_errors", 0)
        if errors:
            report["errors"].append(
                f"{cell['protocol']} {cell['server']} c={cell['concurrency']}: {errors} failed"
                f" requests ({cell['errors']}, warm-up {cell.get('warmup_errors', 0)})"
            )
    report["ratios"], report["targets"] = ratios_and_targets(cells)
    report["notes"] = notes_for(cells, args.nice)
    report["machine"]["loadavg_at_end"] = list(os.getloadavg())
    report["elapsed_s"] = time.time() - started
    report["ok"] = not report["errors"]
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except (BenchError, RuntimeError) as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        _procs._kill_all()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"wrote {args.out}")
    if report["errors"]:
        print("\nBENCHMARK FAILED: requests failed or scores disagree (see ERROR above)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
