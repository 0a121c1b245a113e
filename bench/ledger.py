"""Ledger benchmark: group-commit throughput and per-submit latency, SQLite and PostgreSQL.

    .venv/bin/python bench/ledger.py [--duration 4] [--pg-admin-url URL] [--skip-pg]

For each backend, in one process (the writer thread shares the GIL with the event loop, as in
the server):

* ``c32``: 32 tasks each loop ``await writer.submit(decision)`` (a server at concurrency 32 whose
  every request waits for its decision to be durable): decisions/s and submit latency
  percentiles -- the latency the ledger adds to each request;
* ``c32_mirror``: the same, plus one fire-and-forget mirror decision per request (the demo's 100%
  mirror): served decisions/s, rows written/s;
* ``c512``: 512 concurrent submitters: the group-commit ceiling;
* ``open_2000``: Poisson arrivals at 2,000 requests/s (no concurrency cap): latency at a
  realistic, non-saturating load;
* ``c32_one_writer_thread`` (PostgreSQL): c32 with one writer thread instead of the default two;
* ``one_commit_per_decision``: the naive design (a commit per decision, one thread) for scale.

SQLite runs with ``synchronous=NORMAL`` (the default: durable against a killed process) and, for
comparison, ``FULL`` (an fsync per commit: durable against power loss too) at c32. PostgreSQL
gets a fresh database (unique name), dropped afterwards. Results are printed and written to
``bench/results/ledger.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from fraudgate.ledger import Decision, DecisionWriter, LedgerStore, open_ledger

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.json"
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def make_decision(i: int, role: str = "served") -> Decision:
    return Decision(
        request_id=f"req-{i}-{role}",
        transaction_id=f"tx-{i}",
        decided_at=time.time(),
        experiment="fraud-detection-ab-test",
        arm="fraud-v1-baseline" if role == "served" else None,
        role=role,  # type: ignore[arg-type]
        model_name="fraud-v1-baseline" if role == "served" else "fraud-v2-candidate",
        model_version="1",
        score=0.123,
        threshold=0.5,
        is_fraud_decision=False,
        latency_ms=0.8,
        amount=42.0,
        routing_key_hash="9f86d081884c7d65",
    )


def percentiles(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {}
    ordered = sorted(samples_s)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {
        "p50_ms": round(pct(50), 3),
        "p90_ms": round(pct(90), 3),
        "p99_ms": round(pct(99), 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


async def closed_loop(
    store: LedgerStore,
    concurrency: int,
    duration: float,
    warmup: float,
    mirror: bool,
    writers: int | None = None,
) -> dict[str, object]:
    writer = DecisionWriter(store, writers=writers)
    counter = iter(range(10**12))
    latencies: list[float] = []
    measuring = False
    stop = False

    async def worker() -> None:
        while not stop:
            i = next(counter)
            if mirror:
                writer.record_mirror(make_decision(i, "mirror"))
            started = time.perf_counter()
            await writer.submit(make_decision(i))
            if measuring:
                latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    before = writer.stats()
    measuring = True
    t0 = time.perf_counter()
    await asyncio.sleep(duration)
    measuring = False
    elapsed = time.perf_counter() - t0
    after = writer.stats()
    stop = True
    await asyncio.gather(*tasks)
    await writer.aclose()
    batches = after.batches - before.batches
    written = after.written - before.written
    return {
        "concurrency": concurrency,
        "mirror": mirror,
        "writer_threads": len(writer._threads),
        "served_per_s": round(len(latencies) / elapsed, 1),
        "rows_written_per_s": round(written / elapsed, 1),
        "commits_per_s": round(batches / elapsed, 1),
        "mean_batch": round(written / batches, 1) if batches else 0.0,
        "dropped_mirror": after.dropped_mirror,
        "submit_latency": percentiles(latencies),
    }


async def open_loop(store: LedgerStore, rate: float, duration: float) -> dict[str, object]:
    writer = DecisionWriter(store)
    rng = random.Random(1)
    latencies: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        started = time.perf_counter()
        await writer.submit(make_decision(i))
        latencies.append(time.perf_counter() - started)

    t0 = time.perf_counter()
    next_at = t0
    i = 0
    while next_at - t0 < duration:
        next_at += rng.expovariate(rate)
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - t0
    stats = writer.stats()
    await writer.aclose()
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(len(latencies) / elapsed, 1),
        "mean_batch": round(stats.written / stats.batches, 1) if stats.batches else 0.0,
        "submit_latency": percentiles(latencies),
    }


def one_commit_per_decision(store: LedgerStore, duration: float) -> dict[str, object]:
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < duration:
        store.record_decisions([make_decision(n)])
        n += 1
    elapsed = time.perf_counter() - t0
    return {"decisions_per_s": round(n / elapsed, 1), "commit_ms": round(elapsed / n * 1000, 3)}


def run_backend(url: str, duration: float, warmup: float) -> dict[str, object]:
    store = open_ledger(url)
    try:
        out: dict[str, object] = {}
        out["c32"] = asyncio.run(closed_loop(store, 32, duration, warmup, mirror=False))
        print(f"    c32         {summary(out['c32'])}", flush=True)
        out["c32_mirror"] = asyncio.run(closed_loop(store, 32, duration, warmup, mirror=True))
        print(f"    c32_mirror  {summary(out['c32_mirror'])}", flush=True)
        out["c512"] = asyncio.run(closed_loop(store, 512, duration, warmup, mirror=False))
        print(f"    c512        {summary(out['c512'])}", flush=True)
        out["open_2000"] = asyncio.run(open_loop(store, 2000.0, duration))
        print(f"    open_2000   {summary(out['open_2000'])}", flush=True)
        if store.backend == "postgresql":
            out["c32_one_writer_thread"] = asyncio.run(
                closed_loop(store, 32, duration, warmup, mirror=False, writers=1)
            )
            print(f"    c32 1 thread {summary(out['c32_one_writer_thread'])}", flush=True)
        out["one_commit_per_decision"] = one_commit_per_decision(store, min(duration, 2.0))
        print(f"    1 commit/decision  {out['one_commit_per_decision']}", flush=True)
        out["decisions_in_store"] = store.count_decisions()
        return out
    finally:
        store.close()


def summary(result: object) -> str:
    r = result if isinstance(result, dict) else {}
    lat = r.get("submit_latency", {})
    rate = r.get("served_per_s", r.get("achieved_per_s"))
    return (
        f"{rate:>9} served/s  batch {r.get('mean_batch'):>6}  "
        f"p50 {lat.get('p50_ms')} ms  p99 {lat.get('p99_ms')} ms"
    )


def pg_version(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("show server_version")).scalar_one())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    results: dict[str, object] = {
        "benchmark": "ledger group commit",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "event_loop": loop_name,
        },
        "duration_s": args.duration,
        "backends": {},
    }
    backends: dict[str, object] = results["backends"]  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="fraudgate-ledger-bench-") as tmp:
        for sync in ("NORMAL", "FULL"):
            name = f"sqlite_{sync.lower()}"
            print(f"== {name} ==", flush=True)
            url = f"sqlite:///{tmp}/{name}.db?synchronous={sync}"
            if sync == "NORMAL":  # the default
                backends[name] = run_backend(url, args.duration, args.warmup)
            else:  # only the headline case, for comparison
                store = open_ledger(url)
                try:
                    c32 = asyncio.run(closed_loop(store, 32, args.duration, args.warmup, False))
                finally:
                    store.close()
                print(f"    c32         {summary(c32)}", flush=True)
                backends[name] = {"c32": c32}

    if not args.skip_pg:
        admin = sa.create_engine(
            args.pg_admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        name = f"fraudgate_ledger_bench_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError as exc:
            print(f"PostgreSQL unreachable, skipped: {str(exc).splitlines()[0]}", file=sys.stderr)
            backends["postgresql"] = {"skipped": str(exc).splitlines()[0]}
        else:
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            try:
                print("== postgresql ==", flush=True)
                results["machine"]["postgresql"] = pg_version(url)  # type: ignore[index]
                backends["postgresql"] = run_backend(url, args.duration, args.warmup)
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    raise SystemExit(main())
