"""Replay throughput against the demo server: the earlier client path against the current one.

    .venv/bin/python bench/replay.py [--workdir .fraudgate/demo] [--transactions 10000]
                                     [--repeat 3] [--concurrency 32]

The demo's experiment (80/20 by card, 100% shadow, SQLite ledger) is served from ``--workdir``
(made by ``fraudgate demo``; without one, a small demo is built in bench/.scratch/replay with
``--replay 0``) by one server with a fresh ledger for the benchmark. Client and server share
the machine's cores, as they do in the demo. Each run replays the same ``--transactions``
transactions of the holdout window as fast as it can (no rate limit); scoring only is timed
(labels are not sent). Modes:

* ``before (httpx, concurrency 16)``: what ``fraudgate replay`` did until now, one
  ``AsyncFraudgateClient.score`` (httpx) call per transaction, 16 in flight;
* ``after (rest)``: `fraudgate.replay`'s scoring: bodies encoded once with orjson, a lean
  keep-alive HTTP/1.1 pool (`fraudgate.client.http1`), ``--concurrency`` in flight;
* ``after (grpc)``: the same loop over the gRPC channel (`AsyncFraudgateClient`).

The modes alternate within each of ``--repeat`` rounds (so load from other processes hits all of
them alike); each mode reports its median run (transactions/s, p50/p99 latency, client CPU per
transaction). Writes bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "replay.json"
TARGET_TPS = 3000.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(".fraudgate/demo"))
    parser.add_argument("--transactions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def ensure_demo(workdir: Path, scratch: Path) -> Path:
    if (workdir / "fraudgate.yaml").is_file() and (workdir / "data").is_dir():
        return workdir
    demo = scratch / "demo"
    if not (demo / "fraudgate.yaml").is_file():
        print(f"no demo in {workdir}: building a small one in {demo}", flush=True)
        command = [sys.executable, "-m", "fraudgate", "demo", "--workdir", str(demo)]
        command += ["--days", "60", "--tx-per-day", "5000", "--replay", "0"]
        subprocess.run(command, check=True)
    return demo


def fresh_config(workdir: Path, scratch: Path, run: str) -> Path:
    """The demo's config with the ledger moved into the scratch directory."""
    text = (workdir / "fraudgate.yaml").read_text()
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("url: sqlite:") and "ledger" in line:
            line = f"  url: sqlite:///{scratch / f'ledger-{run}.db'}"
        lines.append(line)
    path = scratch / f"fraudgate-{run}.yaml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


async def before(settings, batch) -> tuple[float, list[float]]:
    """The earlier replay loop: one httpx `score` call per transaction."""
    from fraudgate.client import AsyncFraudgateClient

    ids = batch.frame["transaction_id"].tolist()
    cards = batch.frame["card_id"].tolist()
    amounts = batch.frame["amount"].tolist()
    latencies: list[float] = []
    n = len(ids)
    next_index = 0
    async with AsyncFraudgateClient(
        settings.url,
        token=settings.token,
        model=settings.model,
        routing_parameter=settings.routing_parameter,
        max_connections=16,
    ) as client:
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal next_index
            while next_index < n:
                i = next_index
                next_index += 1
                result = await client.score(
                    batch.features[i],
                    routing_key=int(cards[i]),
                    transaction_id=ids[i],
                    amount=float(amounts[i]),
                    request_id=f"replay-{ids[i]}",
                )
                latencies.append(result.latency_ms)

        await asyncio.gather(*(worker() for _ in range(16)))
        return time.perf_counter() - started, latencies


async def after(settings, batch) -> tuple[float, list[float]]:
    """`fraudgate.replay`'s scoring loop (no labels)."""
    from fraudgate.replay import _client, _Run, _score_all

    run = _Run(settings, batch)
    async with _client(settings) as client:
        elapsed = await _score_all(run, client, lambda tally: None)
    if run.tally.errors:
        raise RuntimeError(f"errors during the run: {dict(run.tally.errors)}")
    return elapsed, run.tally.latencies


def measure(mode: str, settings, batch) -> dict[str, float]:
    cpu = time.process_time()
    fn = before if mode.startswith("before") else after
    elapsed, latencies = asyncio.run(fn(settings, batch))
    cpu = time.process_time() - cpu
    n = len(latencies)
    if n != len(batch.frame):
        raise RuntimeError(f"{mode}: {n} answers for {len(batch.frame)} transactions")
    lat = sorted(latencies)
    return {
        "tps": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(lat[min(n - 1, int(0.99 * n))], 2),
        "client_cpu_us_per_tx": round(cpu / n * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    from fraudgate.replay import (
        ReplayBatch,
        ReplaySettings,
        select_transactions,
        target_from_config,
    )
    from fraudgate.server_process import running_server

    args = parse_args(argv)
    scratch = BENCH_DIR / ".scratch" / "replay"
    for old in scratch.glob("ledger-*"):
        old.unlink()
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = ensure_demo(args.workdir, scratch)
    target = target_from_config(workdir / "fraudgate.yaml")
    base = ReplaySettings(
        url="http://unused",
        transactions=args.transactions,
        rate=0,
        concurrency=args.concurrency,
        token=target.token,
        workdir=workdir,
        model=target.model,
        routing_parameter=target.routing_parameter,
    )
    batch = select_transactions(base)
    modes = ["before (httpx, concurrency 16)", "after (rest)", "after (grpc)"]
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    loadavg_start = list(os.getloadavg())
    config = fresh_config(workdir, scratch, "bench")
    with running_server(config, scratch / "server.log", ready_timeout=300) as server:
        warm = ReplayBatch(batch.frame.head(500), batch.features[:500], batch.source, batch.window)
        for round_ in range(args.repeat):
            for mode in modes:
                settings = dataclasses.replace(
                    base,
                    url=server.url,
                    protocol="grpc" if "grpc" in mode else "rest",
                    grpc_address=server.grpc_address,
                )
                measure(mode, settings, warm)  # connections, the server's first batches
                result = measure(mode, settings, batch)
                runs[mode].append(result)
                print(f"round {round_ + 1} {mode:32s} {result}", flush=True)
    summary = {}
    for mode in modes:
        ordered = sorted(runs[mode], key=lambda r: r["tps"])
        summary[mode] = {**ordered[len(ordered) // 2], "runs_tps": [r["tps"] for r in runs[mode]]}
    report = {
        "benchmark": "replay",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "transactions": len(batch.frame),
        "repeat": args.repeat,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg_start,
        "loadavg_end": list(os.getloadavg()),
        "target_tps": TARGET_TPS,
        "median": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'mode':32s} {'tx/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU us/tx':>10s}")
    for mode, r in summary.items():
        print(
            f"{mode:32s} {r['tps']:8.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
            f"{r['client_cpu_us_per_tx']:10.1f}"
        )
    print(f"wrote {args.out}")
    shutil.rmtree(scratch / "cache", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
