"""Instructions per request of the REST infer path, under valgrind's callgrind.

    .venv/bin/python bench/instructions.py [--transport http|asgi] [--scenario plain ...]
                                           [--connections 13] [--seconds 10]

Wall-clock throughput on a shared 2-core VM moves by tens of percent from one second to the
next; instruction counts do not (the same code, inputs and environment give the same count).
One process per scenario builds the server as `fraudgate serve` does (config, experiment plane,
journal, data plane, `RestApp`; with ``--transport http``, the default, also uvicorn through
`fraudgate.serving.server.http_server`), without the gRPC server (its poller thread would add
counts unrelated to REST), and runs under ``valgrind --tool=callgrind --instr-atstart=no``.
After start-up and a warm-up, with Python's garbage collector frozen, it
switches instrumentation on through callgrind's client requests (a three-line C shim compiled
with ``cc``), serves the measured requests, and switches it off: only they are counted.

``http``: wrk, outside valgrind, sends the 4,000 real transactions of bench/experiment.py's
payload over ``--connections`` connections for ``--seconds``. ``asgi``: the app is called
directly (no HTTP parsing), ``--per-tick`` requests at a time. No shipper runs (the journal is
only appended). Scenarios are bench/experiment.py's. The ratio plain / scenario is the
throughput ratio the server would reach if every instruction cost the same: a model to steer by,
not a measurement (a cache miss costs no instruction). Writes bench/results/instructions.json.

``--monitoring off`` runs the server with ``monitoring.enabled: false`` (no drift sampling, no
background refresh, no monitoring gauges); ``--compare-monitoring`` runs every scenario with it
on and off and writes bench/results/instructions-monitoring.json. In every run the monitor's
periodic refresh is pushed out of the measured window (``refresh_s: 3600``: under valgrind a
5 s refresh would land on a few hundred requests instead of the thousands it serves for in real
time); with monitoring on, the background work is counted on its own after the measured
requests, in three parts to be amortised over the requests of their real intervals: a refresh
(move the kept batches into the rings, every ``refresh_s``), the drift of every column (every
``drift_refresh_s``) and the ledger's counts (every ``ledger_refresh_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import _model  # noqa: E402
import _wrk  # noqa: E402
import experiment  # noqa: E402

DEFAULT_SCENARIOS = ("plain", "routed+ledger", "routed+mirror+ledger")


def _bodies(workdir: Path, n: int) -> list[bytes]:
    rows, cards = experiment.transactions(workdir, n)
    return [experiment._body(row, card).encode() for row, card in zip(rows, cards, strict=True)]


async def _drive(app, path: str, bodies: list[bytes], requests: int, per_tick: int) -> int:
    """Send ``requests`` requests (a multiple of ``per_tick``), ``per_tick`` at a time; returns
    how many answered 200."""
    ok = 0
    sent = 0

    async def one(body: bytes) -> int:
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        status = 0

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    while sent < requests:
        batch = [bodies[(sent + i) % len(bodies)] for i in range(per_tick)]
        sent += per_tick
        statuses = await asyncio.gather(*(one(body) for body in batch))
        ok += sum(status == 200 for status in statuses)
    return ok


async def _run_scenario(args: argparse.Namespace) -> None:
    """Inside valgrind: build the app, warm up, then count the measured requests."""
    import yaml

    from fraudgate.config import load_config
    from fraudgate.serving.dataplane import DataPlane
    from fraudgate.serving.experiment import ExperimentPlane
    from fraudgate.serving.metrics import ServerMetrics
    from fraudgate.serving.rest import RestApp
    from fraudgate.serving.server import registry_loader

    scratch = Path(args.scratch)
    model = _model.prepare(args.workdir, scratch)
    uris = experiment.model_uris(model)
    ledger_url = None if args.scenario == "plain" else f"sqlite:///{scratch / 'ledger.db'}"
    config_dict = experiment.config_dict(model.tracking_uri, uris, args.scenario, ledger_url)
    # the periodic refresh out of the measured window; counted once on its own below
    config_dict["monitoring"] = {
        "enabled": args.monitoring == "on",
        "refresh_s": 3600.0,
        "traffic_window_s": 3600.0,
    }
    for served in config_dict["models"]:  # a fixed runtime: `auto` picks by timing
        served["runtime"] = args.runtime
    if ledger_url is not None:
        config_dict["ledger"]["journal_dir"] = str(scratch / "journal")
        config_dict["ledger"]["shipper"] = "external"
    path = scratch / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict, sort_keys=False))
    config = load_config(path)
    plane = ExperimentPlane.from_config(config)
    dataplane = DataPlane(config, registry_loader(config), ServerMetrics(), plane)
    errors = await dataplane.start()
    if errors:
        raise SystemExit(f"models failed to load: {errors}")
    if plane is not None:
        plane.start()
    app = RestApp(dataplane, config.server.max_payload_bytes)
    route = experiment.VERSIONED_PATH if "explicit" in args.scenario else experiment.INFER_PATH
    callgrind = ctypes.CDLL(args.toggle)
    if args.transport == "http":
        result = await _count_over_http(app, route, args, scratch, callgrind)
    else:
        bodies = _bodies(args.workdir, args.pool)
        await _drive(app, route, bodies, args.warmup, args.per_tick)
        _settle_gc()
        callgrind.fg_start()
        ok = await _drive(app, route, bodies, args.requests, args.per_tick)
        callgrind.fg_stop()
        result = {"sent": args.requests, "ok": ok}
    if args.monitoring == "on":
        result.update(await _count_refresh(dataplane.monitor, callgrind))
    Path(args.result).write_text(json.dumps(result))
    if plane is not None:
        await plane.aclose()
    dataplane.close()


async def _count_refresh(monitor, callgrind) -> dict:
    """The background work after the measured requests, in three counted parts: a refresh
    (counter reading, moving the measured requests' kept batches into the rings: what every
    ``refresh_s`` costs), the drift of every column on the rings (every ``drift_refresh_s``),
    and, with a ledger, the ledger's counts (every ``ledger_refresh_s``). The rows moved include
    the warm-up's (no refresh ran before: ``refresh_s`` 3600)."""
    import math
    import time

    monitor._ledger_at = time.monotonic()  # not due: the ledger read is counted on its own
    monitor._drift_at = time.monotonic()  # not due: the drift is counted on its own
    callgrind.fg_start()
    await monitor.refresh()
    callgrind.fg_stop_refresh()
    monitor._drift_at = -math.inf  # due now: nothing left to move, only the drift
    callgrind.fg_start()
    await monitor.refresh()
    callgrind.fg_stop_drift()
    samples = [m.sample for m in monitor.deployed() if m.sample is not None]
    counted = {
        "refresh_drift_rows": sum(sample.filled for sample in samples),
        "refresh_models_with_drift": len(monitor.drift),
        "ledger_read": monitor.store is not None,
    }
    if monitor.store is not None:
        await asyncio.to_thread(monitor._ledger_gauges)  # warm: imports, compiled statements
        callgrind.fg_start()
        await asyncio.to_thread(monitor._ledger_gauges)
        callgrind.fg_stop_ledger()
    return counted


def _settle_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.disable()


async def _count_over_http(app, route: str, args: argparse.Namespace, scratch: Path, callgrind):
    """uvicorn (`fraudgate serve`'s configuration, `http_server`) in this process, wrk outside
    valgrind: counts the instructions of the requests wrk sends in ``--seconds``."""
    from fraudgate.server_process import free_port
    from fraudgate.serving.server import http_server

    port = free_port()
    server = http_server(app, "127.0.0.1", port, app.max_payload_bytes)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    script = scratch / "post.lua"
    script.write_text(experiment.pool_script(*experiment.transactions(args.workdir, args.pool)))
    url = f"http://127.0.0.1:{port}{route}"

    def load(seconds: float):  # in a thread: the event loop serves meanwhile
        return _wrk.run(
            url, script, connections=args.connections, threads=1, duration_s=seconds, timeout_s=30
        )

    await asyncio.to_thread(load, args.warmup_seconds)
    _settle_gc()
    callgrind.fg_start()
    measured = await asyncio.to_thread(load, args.seconds)
    callgrind.fg_stop()
    server.should_exit = True
    await task
    return {"sent": measured.requests, "ok": measured.requests - measured.error_total}


# callgrind's client requests (valgrind/callgrind.h), callable from Python through ctypes
_TOGGLE_C = """
#include <valgrind/callgrind.h>
void fg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void fg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("measured"); }
void fg_stop_refresh(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("refresh"); }
void fg_stop_drift(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("drift"); }
void fg_stop_ledger(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("ledger"); }
"""


def _build_toggle(scratch: Path) -> Path:
    source, library = scratch / "toggle.c", scratch / "toggle.so"
    source.write_text(_TOGGLE_C)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def _total_instructions(out_dir: Path, trigger: str = "measured") -> int:
    """Sum of the 'totals:' lines of the run's callgrind dumps made by ``trigger``."""
    total = 0
    for dump in out_dir.glob("callgrind.out*"):
        text = dump.read_text(errors="replace")
        if f"Client Request: {trigger}" not in text:
            continue
        for line in text.splitlines():
            match = re.match(r"^totals:\s+(\d+)", line)
            if match:
                total += int(match.group(1))
                break
    return total


def measure(scenario: str, args: argparse.Namespace) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="fraudgate-instr-"))
    result = scratch / "result.json"
    out = scratch / "callgrind"
    out.mkdir()
    toggle = _build_toggle(scratch)
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/callgrind.out.%p",
        sys.executable,
        __file__,
        "--inside",
        "--scenario",
        scenario,
        "--scratch",
        str(scratch),
        "--result",
        str(result),
        "--workdir",
        str(args.workdir),
        "--requests",
        str(args.requests),
        "--per-tick",
        str(args.per_tick),
        "--warmup",
        str(args.warmup),
        "--pool",
        str(args.pool),
        "--toggle",
        str(toggle),
        "--transport",
        args.transport,
        "--connections",
        str(args.connections),
        "--seconds",
        str(args.seconds),
        "--warmup-seconds",
        str(args.warmup_seconds),
        "--runtime",
        args.runtime,
        "--monitoring",
        args.monitoring,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not result.exists():
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{scenario}: the measured run failed (exit {proc.returncode})")
    counted = json.loads(result.read_text())
    sent, ok = counted["sent"], counted["ok"]
    if ok != sent or not sent:
        raise SystemExit(f"{scenario}: {sent - ok} of {sent} requests failed")
    instructions = _total_instructions(out)
    cell = {
        "scenario": scenario,
        "monitoring": args.monitoring,
        "requests": sent,
        "instructions": instructions,
        "per_request": instructions / sent,
    }
    if args.monitoring == "on":
        cell["refresh_instructions"] = _total_instructions(out, "refresh")
        cell["drift_instructions"] = _total_instructions(out, "drift")
        cell["refresh_drift_rows"] = counted["refresh_drift_rows"]
        cell["refresh_models_with_drift"] = counted["refresh_models_with_drift"]
        if counted["ledger_read"]:
            cell["ledger_read_instructions"] = _total_instructions(out, "ledger")
    shutil.rmtree(scratch, ignore_errors=True)
    return cell


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / ".fraudgate" / "demo")
    parser.add_argument(
        "--transport",
        choices=("http", "asgi"),
        default="http",
        help="http: uvicorn + wrk (default); asgi: the app called directly, no HTTP parsing",
    )
    parser.add_argument("--connections", type=int, default=13, help="http: wrk connections")
    parser.add_argument("--seconds", type=float, default=10, help="http: measured seconds")
    parser.add_argument("--warmup-seconds", type=float, default=3, help="http: warm-up seconds")
    parser.add_argument("--requests", type=int, default=2600, help="asgi: measured requests")
    parser.add_argument("--warmup", type=int, default=1300, help="asgi: requests before")
    parser.add_argument("--per-tick", type=int, default=13, help="asgi: requests per tick")
    parser.add_argument("--pool", type=int, default=4000, help="distinct real transactions")
    parser.add_argument(
        "--runtime",
        default="tl2cgen",
        help="the models' runtime (fixed, so the count does not depend on which runtime `auto` "
        "timed fastest on a busy machine)",
    )
    parser.add_argument(
        "--monitoring",
        choices=("on", "off"),
        default="on",
        help="monitoring.enabled of the server (drift sampling, background gauges)",
    )
    parser.add_argument(
        "--compare-monitoring",
        action="store_true",
        help="every scenario with monitoring on and off; writes instructions-monitoring.json",
    )
    parser.add_argument(
        "--scenario", action="append", help="repeatable; default: " + ", ".join(DEFAULT_SCENARIOS)
    )
    parser.add_argument("--out", type=Path, help="default: results/instructions[-monitoring].json")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--toggle", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.requests -= args.requests % args.per_tick  # whole ticks only
    args.warmup -= args.warmup % args.per_tick
    if args.inside:
        args.scenario = args.scenario[0]
        asyncio.run(_run_scenario(args))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 1
    scenarios = args.scenario or list(DEFAULT_SCENARIOS)
    if "plain" not in scenarios:
        scenarios.insert(0, "plain")
    settings = ["on", "off"] if args.compare_monitoring else [args.monitoring]
    cells = {}
    for scenario in scenarios:
        for monitoring in settings:
            args.monitoring = monitoring
            name = f"{scenario} (monitoring {monitoring})" if args.compare_monitoring else scenario
            print(f"counting {name} ...", flush=True)
            cells[name] = measure(scenario, args)
            print(f"  {cells[name]['per_request']:,.0f} instructions per request", flush=True)
    for cell in cells.values():
        plain = next(
            c["per_request"]
            for c in cells.values()
            if c["scenario"] == "plain" and c["monitoring"] == cell["monitoring"]
        )
        cell["plain_over_scenario"] = plain / cell["per_request"]
        cell["extra_per_request"] = cell["per_request"] - plain
    report = {
        "benchmark": "instructions",
        "settings": {
            "transport": args.transport,
            "connections": args.connections if args.transport == "http" else None,
            "seconds": args.seconds if args.transport == "http" else None,
            "requests": args.requests if args.transport == "asgi" else None,
            "per_tick": args.per_tick if args.transport == "asgi" else None,
            "pool": args.pool,
            "runtime": args.runtime,
            "monitoring": settings,
            "method": "callgrind instruction counts of the measured requests only, GC frozen; "
            "monitoring.refresh_s 3600 (one refresh counted on its own after them)",
        },
        "cells": cells,
    }
    if args.compare_monitoring:
        report["monitoring"] = {s: _monitoring_cost(cells, s) for s in scenarios}
    out = args.out or BENCH_DIR / "results" / (
        "instructions-monitoring.json" if args.compare_monitoring else "instructions.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, cell in cells.items():
        print(
            f"{name:48s} {cell['per_request']:>10,.0f} instr/request  "
            f"extra {cell['extra_per_request']:>+9,.0f}  "
            f"plain/this {cell['plain_over_scenario']:.1%}"
        )
    for scenario, cost in report.get("monitoring", {}).items():
        print(
            f"{scenario:32s} monitoring on/off {cost['on_over_off']:.4f} "
            f"({cost['extra_per_request']:+,.0f} per request); one refresh "
            f"{cost['refresh_instructions']:,}, one drift {cost['drift_instructions']:,} "
            f"({cost['refresh_drift_rows']} rows)"
        )
    print(f"wrote {out}")
    return 0


def _monitoring_cost(cells: dict, scenario: str) -> dict:
    """Monitoring on against off for one scenario: the hot path's ratio, and the refresh as
    the requests it must be spread over to add 1% more."""
    on = cells[f"{scenario} (monitoring on)"]
    off = cells[f"{scenario} (monitoring off)"]
    return {
        "on_per_request": on["per_request"],
        "off_per_request": off["per_request"],
        "on_over_off": on["per_request"] / off["per_request"],
        "extra_per_request": on["per_request"] - off["per_request"],
        "refresh_instructions": on["refresh_instructions"],
        "refresh_drift_rows": on["refresh_drift_rows"],
        "drift_instructions": on["drift_instructions"],
        "requests_per_drift_for_1_percent": on["drift_instructions"] / (0.01 * off["per_request"]),
        "requests_per_refresh_for_1_percent": on["refresh_instructions"]
        / (0.01 * off["per_request"]),
        "ledger_read_instructions": on.get("ledger_read_instructions"),
        "requests_per_ledger_read_for_1_percent": on["ledger_read_instructions"]
        / (0.01 * off["per_request"])
        if "ledger_read_instructions" in on
        else None,
    }


if __name__ == "__main__":
    sys.exit(main())
