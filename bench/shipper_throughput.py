"""Sustained shipper throughput into one PostgreSQL database: 1 shipper vs 3 in parallel.

    .venv/bin/python bench/shipper_throughput.py [--decisions 100000] [--pg-admin-url URL]

For each cell (``1 shipper``: one replica's journal; ``3 shippers``: three replicas' journals,
one ``fraudgate ledger ship`` each, into the same database), in a PostgreSQL database created
for the cell and dropped after:

1. journals are pre-filled with ``--decisions`` decisions each by the real journal writer
   (`fraudgate.ledger.journal.Journal`, one line per one-row request, as `fraudgate serve`
   appends them; no mirror copies: the store's cost alone), then closed (their owner gone, so a
   shipper seals and drains them);
2. the shippers start in follow mode on empty journal directories and ship a one-decision probe
   each (so start-up, imports and the first connection are behind them);
3. the pre-filled journals are moved in (a rename) and timed until every shipper has drained and
   removed its journal; the database then must hold exactly the decisions written.

Reported: decisions/s per cell (and per shipper, and per shipper CPU-second), rows written per
decision (every table), the decisions table's bytes per million decisions with its indexes
(``pg_total_relation_size``, the empty table's size subtracted) and rows/day at the measured
rate. Writes bench/results/shipper.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _cluster  # noqa: E402
import _procs  # noqa: E402

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LINES_PER_APPEND = 1  # one request of one transaction per journal line, as the server writes
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Cell:
    name: str
    shippers: int
    decisions: int  # shipped in the timed part, all shippers together
    seconds: float
    decisions_per_s: float
    decisions_per_s_per_shipper: float
    shipper_cpu_s: float
    decisions_per_shipper_cpu_s: float | None
    rows_per_decision: dict[str, float]
    decisions_table_bytes: int  # with indexes and TOAST, less the empty table's
    bytes_per_million_decisions: float
    index_bytes_per_million_decisions: float
    rows_per_day_at_rate: float
    journal_bytes_per_decision: float
    index_bytes_per_decision: dict[str, float]  # each index of the decisions table


def decisions_for(prefix: str, n: int) -> list:
    from fraudgate.ledger import Decision

    now = time.time()
    return [
        Decision(
            request_id=f"{prefix}-req-{i}",
            transaction_id=f"{prefix}-tx-{i}",
            decided_at=now + i * 1e-4,
            experiment="fraud-detection-ab-test",
            arm="fraud-v1-baseline" if i % 5 else "fraud-v2-candidate",
            role="served",
            model_name="fraud-v1-baseline" if i % 5 else "fraud-v2-candidate",
            model_version="1",
            score=(i % 997) / 997,
            threshold=0.5,
            is_fraud_decision=i % 97 == 0,
            latency_ms=0.8,
            amount=float(i % 5000) / 7,
            routing_key_hash=f"{(i * 2654435761) % (1 << 64):016x}",
        )
        for i in range(n)
    ]


def fill_journal(staging: Path, ledger_id: str, prefix: str, n: int) -> tuple[Path, int]:
    """A closed journal instance of ``n`` decisions under ``staging``; (its directory, bytes)."""
    from fraudgate.ledger.journal import Journal
    from fraudgate.ledger.records import DecisionBatch

    journal = Journal(staging, ledger_id)
    for decision in decisions_for(prefix, n):
        journal.append([DecisionBatch.of([decision])])
    journal.close()
    size = sum(p.stat().st_size for p in journal.directory.glob("*.jsonl"))
    return journal.directory, size


def table_stats(url: str) -> dict[str, dict[str, int]]:
    """Rows and bytes (total with indexes and TOAST; indexes alone) of every ledger table."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            names = conn.execute(
                sa.text("select tablename from pg_tables where schemaname = current_schema()")
            ).scalars()
            for name in sorted(names):
                rows = conn.execute(sa.text(f'select count(*) from "{name}"')).scalar_one()
                total, indexes = conn.execute(
                    sa.text(
                        "select pg_total_relation_size(cast(:t as regclass)),"
                        " pg_indexes_size(cast(:t as regclass))"
                    ),
                    {"t": f'"{name}"'},
                ).one()
                out[name] = {"rows": int(rows), "bytes": int(total), "index_bytes": int(indexes)}
            for index, size in conn.execute(
                sa.text(
                    "select indexname, pg_relation_size(cast(quote_ident(indexname) as regclass))"
                    " from pg_indexes where schemaname = current_schema()"
                    " and tablename = 'decisions'"
                )
            ):
                out[f"decisions index {index}"] = {"rows": 0, "bytes": int(size), "index_bytes": 0}
    finally:
        engine.dispose()
    return out


def run_cell(name: str, shippers: int, n: int, admin_url: str, scratch: Path) -> Cell:
    from experiment import create_pg_database, drop_pg_database

    from fraudgate.ledger import open_ledger

    pg = create_pg_database(admin_url)
    if pg is None:
        raise SystemExit(1)
    url = pg[1]
    root = scratch / name.replace(" ", "-")
    procs = []
    try:
        store = open_ledger(url)  # creates the schema
        ledger_id = store.ledger_id()
        store.close()
        filled = []
        print(f"{name}: writing {shippers} x {n} decisions into journals ...", flush=True)
        for i in range(shippers):
            directory, size = fill_journal(root / f"staging-{i}", ledger_id, f"j{i}", n)
            filled.append((directory, size))
            probe, _ = fill_journal(root / f"probe-{i}", ledger_id, f"probe{i}", 1)
            target = root / f"journal-{i}"
            target.mkdir(parents=True)
            probe.rename(target / probe.name)
        env = _cluster.python_env()
        for i in range(shippers):
            argv = _cluster.fraudgate_argv("ledger", "ship", "--ledger", url, "--nice", "0")
            argv += ["--journal", str(root / f"journal-{i}")]
            procs.append(_procs.spawn(argv, cpu=None, log_path=root / f"shipper-{i}.log", env=env))
        _wait_for_rows(url, shippers, timeout=120.0)
        _procs.wait_quiet(max_s=20.0)
        empty = table_stats(url)  # the probes shipped
        cpu0 = [_procs.cpu_seconds(p.pid) for p in procs]
        print(f"{name}: shipping ...", flush=True)
        start = time.monotonic()
        for i, (directory, _) in enumerate(filled):
            directory.rename(root / f"journal-{i}" / directory.name)
        pending = [root / f"journal-{i}" / d.name for i, (d, _) in enumerate(filled)]
        cpu = list(cpu0)
        deadline = start + 1800
        while any(p.exists() for p in pending):
            for i, proc in enumerate(procs):
                if proc.poll() is not None:
                    raise RuntimeError(f"shipper {i} exited with {proc.returncode}")
                cpu[i] = max(cpu[i], _procs.cpu_seconds(proc.pid))
            if time.monotonic() > deadline:
                raise RuntimeError("the shippers did not drain the journals within 30 minutes")
            time.sleep(0.02)
        seconds = time.monotonic() - start
        for proc in procs:
            _procs.stop(proc, grace=30)
        full = table_stats(url)
    finally:
        for proc in procs:
            _procs.stop(proc)
        drop_pg_database(admin_url, pg[0])
    shipped = full["decisions"]["rows"] - empty["decisions"]["rows"]
    expected = shippers * n
    if shipped != expected:
        raise RuntimeError(f"{name}: {shipped} decisions in the ledger, expected {expected}")
    shipper_cpu = sum(c - c0 for c, c0 in zip(cpu, cpu0, strict=True))
    table_bytes = full["decisions"]["bytes"] - empty["decisions"]["bytes"]
    index_bytes = full["decisions"]["index_bytes"] - empty["decisions"]["index_bytes"]
    rate = shipped / seconds
    return Cell(
        name=name,
        shippers=shippers,
        decisions=shipped,
        seconds=seconds,
        decisions_per_s=rate,
        decisions_per_s_per_shipper=rate / shippers,
        shipper_cpu_s=shipper_cpu,
        decisions_per_shipper_cpu_s=shipped / shipper_cpu if shipper_cpu else None,
        rows_per_decision={
            table: (full[table]["rows"] - empty[table]["rows"]) / shipped
            for table in sorted(full)
            if full[table]["rows"] != empty[table]["rows"] and " index " not in table
        },
        decisions_table_bytes=table_bytes,
        bytes_per_million_decisions=table_bytes / shipped * 1e6,
        index_bytes_per_million_decisions=index_bytes / shipped * 1e6,
        rows_per_day_at_rate=rate * SECONDS_PER_DAY,
        journal_bytes_per_decision=sum(size for _, size in filled) / shipped,
        index_bytes_per_decision={
            table.removeprefix("decisions index "): (full[table]["bytes"] - empty[table]["bytes"])
            / shipped
            for table in sorted(full)
            if table.startswith("decisions index ")
        },
    )


def _wait_for_rows(url: str, rows: int, timeout: float) -> None:
    """Until the probes are shipped: every shipper is up, connected and idle."""
    from fraudgate.ledger import open_ledger

    deadline = time.monotonic() + timeout
    store = open_ledger(url)
    try:
        while store.count_decisions() < rows:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the shippers did not ship {rows} probe decisions")
            time.sleep(0.1)
    finally:
        store.close()


def print_table(cells: list[Cell]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="shipper throughput into one PostgreSQL database", title_justify="left")
    for column in (
        "cell",
        "decisions",
        "seconds",
        "decisions/s",
        "per shipper",
        "per shipper CPU-s",
        "rows/decision",
        "MB per 1M (idx)",
        "rows/day",
    ):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for c in cells:
        table.add_row(
            c.name,
            f"{c.decisions:,}",
            f"{c.seconds:.1f}",
            f"{c.decisions_per_s:,.0f}",
            f"{c.decisions_per_s_per_shipper:,.0f}",
            f"{c.decisions_per_shipper_cpu_s:,.0f}" if c.decisions_per_shipper_cpu_s else "-",
            " ".join(f"{t}:{v:.3g}" for t, v in c.rows_per_decision.items()),
            f"{c.bytes_per_million_decisions / 1e6:.0f} "
            f"({c.index_bytes_per_million_decisions / 1e6:.0f})",
            f"{c.rows_per_day_at_rate / 1e6:,.0f}M",
        )
    Console(width=max(Console().width, 140)).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="shipper throughput into PostgreSQL")
    parser.add_argument("--decisions", type=int, default=100_000, help="per journal")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "shipper.json")
    args = parser.parse_args(argv)
    if args.decisions < 1:
        parser.error(f"--decisions: expected at least 1, received {args.decisions}")
    scratch = BENCH_DIR / ".scratch" / "shipper"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    loadavg = list(os.getloadavg())
    cells = [
        run_cell("1 shipper", 1, args.decisions, args.pg_admin_url, scratch),
        run_cell("3 shippers", 3, args.decisions, args.pg_admin_url, scratch),
    ]
    one, three = cells
    report = {
        "benchmark": "shipper",
        "run": uuid.uuid4().hex,
        "started_at": started,
        "machine": {
            "cpu_count": os.cpu_count(),
            "loadavg_at_start": loadavg,
            "loadavg_at_end": list(os.getloadavg()),
        },
        "settings": {
            "decisions_per_journal": args.decisions,
            "journal_line": "one served decision per line (a one-row request), no mirror copies",
            "postgresql": "127.0.0.1:5432, a fresh database per cell",
        },
        "cells": [asdict(c) for c in cells],
        "summary": {
            "one_shipper_decisions_per_s": one.decisions_per_s,
            "three_shippers_decisions_per_s": three.decisions_per_s,
            "scaling_3_vs_1": three.decisions_per_s / one.decisions_per_s,
            "rows_per_day_three_shippers": three.rows_per_day_at_rate,
            "bytes_per_million_decisions": three.bytes_per_million_decisions,
            "index_bytes_per_million_decisions": three.index_bytes_per_million_decisions,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(cells)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
