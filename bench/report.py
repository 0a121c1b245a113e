"""`fraudgate report` over a large ledger: wall time and peak memory, SQLite and PostgreSQL.

    .venv/bin/python bench/report.py [--decisions 10000000] [--days 30] [--skip-pg]
                                     [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each backend: a fresh ledger (the real schema, `open_ledger`), filled inside the database
(a recursive CTE on SQLite, ``generate_series`` on PostgreSQL: no rows cross the client) with
``--decisions`` decisions -- half served, half the 100% shadow's mirror copies, an 80/20 split,
1% fraud, the champion catching 60% of frauds and the challenger 80% -- and the labels the
realistic way (every alert investigated two days later, every missed fraud charged back twenty
days later). Then ``fraudgate ledger rollup`` (what a running server does in the background) and
``fraudgate report --config ... --as-of ... --json ... --html ...`` run as child processes, in
the order `daily` describes; their wall times and peak RSS (``wait4``'s ``ru_maxrss``, from a
small launcher process: see ``_LAUNCHER``) are the figures (on PostgreSQL the server's own
memory is not in them). Writes ``bench/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "report.json"
T0 = 1_700_006_400.0  # a UTC midnight
DAY = 86_400.0
A, B = "fraud-v1-baseline", "fraud-v2-candidate"

# One transaction i -> its served and its mirror decision (r = 0, 1), the same SQL on both
# backends (|| concatenates, integer / and % are the same, comparisons are booleans). Card
# i % 1000003 routes stickily: every fifth card to the challenger.
_DECISIONS = """
INSERT INTO decisions (request_id, transaction_id, decided_at, experiment, arm, role,
    model_name, model_version, score, threshold, is_fraud_decision, latency_ms, amount,
    routing_key_hash, event_time)
SELECT 'r' || i, 't' || i, {t0} + i * {step} + r, 'ab',
    CASE WHEN (i % 1000003) % 5 = 0 THEN '{b}' ELSE '{a}' END,
    CASE WHEN r = 0 THEN 'served' ELSE 'mirror' END,
    CASE WHEN ((i % 1000003) % 5 = 0) = (r = 0) THEN '{b}' ELSE '{a}' END,
    '1', (((i % 1000) * 7919 + r * 13) % 1000) / 1000.0, 0.5,
    CASE WHEN ((i % 1000003) % 5 = 0) = (r = 0)
        THEN (i % 100 = 7 AND (i / 100) % 10 < 8) OR (i % 100 <> 7 AND i % 89 = 0)
        ELSE (i % 100 = 7 AND (i / 100) % 10 < 6) OR (i % 100 <> 7 AND i % 97 = 0) END,
    1.0 + (i % 37) * 0.1 + r, 1.0 + i % 500, 'card' || (i % 1000003), {t0} + i * {step}
FROM {series} CROSS JOIN (SELECT 0 AS r UNION ALL SELECT 1) AS roles
"""
# served model flagged? (the arm's own flag rule, as above for r = 0)
_SERVED_FLAG = (
    "CASE WHEN (i % 1000003) % 5 = 0"
    " THEN (i % 100 = 7 AND (i / 100) % 10 < 8) OR (i % 100 <> 7 AND i % 89 = 0)"
    " ELSE (i % 100 = 7 AND (i / 100) % 10 < 6) OR (i % 100 <> 7 AND i % 97 = 0) END"
)
_LABELS = """
INSERT INTO labels (transaction_id, is_fraud, label_time, amount, received_at, updated_at,
    actor, source)
SELECT 't' || i, i % 100 = 7,
    {t0} + i * {step} + CASE WHEN {flag} THEN 2 * {day} ELSE 20 * {day} END,
    NULL, 0, 0, 'bench', CASE WHEN {flag} THEN 'investigation' ELSE 'chargeback' END
FROM {series}
WHERE {flag} OR i % 100 = 7
"""


def _series(backend: str, start: int, stop: int) -> str:
    """The transaction numbers start .. stop - 1."""
    if backend == "postgresql":
        return f"generate_series({start}, {stop - 1}) AS s(i)"
    recursive = f"SELECT {start} UNION ALL SELECT i + 1 FROM s WHERE i < {stop - 1}"
    return f"(WITH RECURSIVE s(i) AS ({recursive}) SELECT i FROM s) AS s"


def _insert(engine: sa.Engine, backend: str, start: int, stop: int, step: float) -> None:
    """Transactions start .. stop - 1 (event time T0 + i step), their decisions and labels."""
    values = {"t0": T0, "step": step, "a": A, "b": B, "day": DAY, "flag": _SERVED_FLAG}
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
        for statement in (_DECISIONS, _LABELS):
            sql = statement.format(series=_series(backend, start, stop), **values)
            if backend == "postgresql":  # psycopg's paramstyle: a literal % is %%
                sql = sql.replace("%", "%%")
            conn.exec_driver_sql(sql)


def next_day(url: str, backend: str, decisions: int, days: float) -> dict[str, float]:
    """One more day of the same traffic after the filled ``days`` (the ledger a day later)."""
    transactions = decisions // 2
    per_day = int(transactions / days)
    engine = sa.create_engine(url)
    started = time.perf_counter()
    _insert(engine, backend, transactions, transactions + per_day, days * DAY / transactions)
    added = time.perf_counter() - started
    engine.dispose()
    return {"next_day_fill_s": round(added, 1), "next_day_decisions": 2 * per_day}


def fill(url: str, backend: str, decisions: int, days: float) -> dict[str, float]:
    from fraudgate.ledger import open_ledger

    transactions = decisions // 2
    step = days * DAY / transactions
    open_ledger(url).close()  # the real schema and indexes, migrated
    engine = sa.create_engine(url)
    started = time.perf_counter()
    _insert(engine, backend, 0, transactions, step)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if backend == "postgresql":  # what autovacuum does to a real ledger's older rows:
            # statistics, hint bits and the visibility map (index-only scans)
            conn.exec_driver_sql("VACUUM ANALYZE decisions")
            conn.exec_driver_sql("VACUUM ANALYZE labels")
        else:
            conn.exec_driver_sql("ANALYZE")
    vacuumed = time.perf_counter() - started
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar_one()
        labels = conn.exec_driver_sql("SELECT count(*) FROM labels").scalar_one()
    engine.dispose()
    return {
        "fill_s": round(filled, 1),
        "analyze_s": round(vacuumed, 1),
        "decisions": int(n),
        "labels": int(labels),
    }


# Runs argv[2:] as its child and writes the child's peak RSS (KiB) to argv[1]. A child of
# this bench directly would not do: fork + exec keep the parent's high-water RSS in the
# child's ru_maxrss (the bench's own, after the fill), so the report's peak is measured one
# process further, from a small parent.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Models:
    """The registry the report's config names: two small stand-ins registered with their drift
    references, so the report's monitoring section (score histograms over each reference's
    bins) is part of the measured time."""

    tracking_uri: str
    uris: tuple[str, str]


def register_models(workdir: Path) -> Models:
    import _model  # bench/ is the script's directory

    target = workdir / "registry"
    first = _model.train_stand_in(target, n_trees=20, seed=7)
    second = _model.train_stand_in(target, n_trees=20, seed=8)
    uri = f"sqlite:///{(target / 'mlflow.db').resolve()}"
    return Models(uri, (f"models:/fraud-detection/{first}", f"models:/fraud-detection/{second}"))


def write_config(url: str, workdir: Path, models: Models) -> Path:
    config = {
        "models": [{"name": A, "uri": models.uris[0]}, {"name": B, "uri": models.uris[1]}],
        "registry": models.tracking_uri,
        "experiment": {
            "name": "ab",
            "default": A,
            "candidates": [{"name": A, "weight": 80}, {"name": B, "weight": 20}],
            "mirror": {"percent": 100},
        },
        "ledger": {"url": url},
        "analysis": {"maturity_days": 14, "planned_frauds": 2000},
    }
    path = workdir / "fraudgate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(arguments: list[str], workdir: Path) -> dict[str, object]:
    """``fraudgate ARGUMENTS`` as a child process: its wall time, peak RSS and last line."""
    peak = workdir / "peak_rss_kib"
    command = [
        sys.executable, "-S", "-c", _LAUNCHER, str(peak),
        sys.executable, "-m", "fraudgate", *arguments,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdout is not None
    output = child.stdout.read().decode(errors="replace")
    child.wait()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"fraudgate {arguments[0]} failed ({child.returncode}):\n{output}")
    return {
        "s": round(wall, 1),
        "peak_rss_mib": round(int(peak.read_text()) / 1024, 1),
        "output_tail": output.strip().splitlines()[-1][:200],
    }


def run_report(
    config: Path, workdir: Path, as_of: float, extra: tuple[str, ...] = ()
) -> dict[str, object]:
    result = run_cli(
        ["report", "--config", str(config), "--as-of", str(as_of), *extra,
         "--json", str(workdir / "report.json"), "--html", str(workdir / "report.html")],
        workdir,
    )  # fmt: skip
    outcome = json.loads((workdir / "report.json").read_text())["decision"]["outcome"]
    return {
        "report_s": result["s"],
        "peak_rss_mib": result["peak_rss_mib"],
        "outcome": outcome,
        "output_tail": result["output_tail"],
    }


def run_rollup(config: Path, workdir: Path, as_of: float) -> dict[str, object]:
    """What a running server does every ``monitoring.rollup_interval_s`` (here by hand)."""
    result = run_cli(["ledger", "rollup", "--config", str(config), "--as-of", str(as_of)], workdir)
    return {
        "rollup_s": result["s"],
        "rollup_peak_rss_mib": result["peak_rss_mib"],
        "rollup_output_tail": result["output_tail"],
    }


def warm_up(workdir: Path, days: float, models: Models) -> dict[str, float]:
    """The report over a tiny ledger twice: the first run compiles and caches the byte code
    (the figure without a cache), the second is the start-up and rendering floor."""
    tiny = workdir / "warm-up"
    tiny.mkdir()
    url = f"sqlite:///{tiny / 'ledger.db'}"
    fill(url, "sqlite", 2_000, days)
    config = write_config(url, tiny, models)
    as_of = T0 + (days + 30) * DAY
    cold = run_report(config, tiny, as_of)["report_s"]
    warm = run_report(config, tiny, as_of)["report_s"]
    return {"report_2000_uncached_s": cold, "report_2000_s": warm}


def daily(
    url: str, backend: str, workdir: Path, as_of: float, models: Models, args: argparse.Namespace
) -> dict[str, object]:
    """A day in a running deployment, then the cost with no server running:

    1. the roll-up over the filled ledger (what the server does in the background every
       ``monitoring.rollup_interval_s``: it counts every closed day and keeps them);
    2. the report after it: what whoever asks for the first report waits for;
    3. ``report --recount``: the first report with nothing kept (every day counted; it keeps
       them again);
    4. one more day of traffic and the next day's report with no roll-up in between (the
       worst case: the new day and the changed days counted, the rest read back)."""
    config = write_config(url, workdir, models)
    figures: dict[str, object] = dict(run_rollup(config, workdir, as_of))
    print(backend, "roll-up", figures, flush=True)
    after = run_report(config, workdir, as_of)
    figures |= after
    print(backend, "report after the roll-up", after, flush=True)
    recount = run_report(config, workdir, as_of, ("--recount",))
    figures |= {f"recount_{key}": value for key, value in recount.items()}
    print(backend, "report --recount", recount, flush=True)
    figures |= next_day(url, backend, args.decisions, args.days)
    later = run_report(config, workdir, as_of + DAY)
    figures |= {f"next_day_{key}": value for key, value in later.items()}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    as_of = T0 + (args.days + 30) * DAY
    results: dict[str, object] = {
        "decisions": args.decisions,
        "days": args.days,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="fraudgate-bench-report-") as tmp:
        workdir = Path(tmp)
        # byte code cached as an installed package has it (pip compiles it; warm_up fills it):
        # this VM's venv has none and sets PYTHONDONTWRITEBYTECODE (every run would compile)
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
        models = register_models(workdir)
        results["startup"] = warm_up(workdir, args.days, models)
        print("startup", results["startup"], flush=True)
        if not args.skip_sqlite:
            url = f"sqlite:///{workdir / 'ledger.db'}"
            figures = fill(url, "sqlite", args.decisions, args.days)
            figures |= daily(url, "sqlite", workdir, as_of, models, args)
            figures["database_mib"] = round((workdir / "ledger.db").stat().st_size / 2**20)
            results["sqlite"] = figures
            print("sqlite", figures, flush=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{workdir / 'ledger.db'}{suffix}").unlink(missing_ok=True)
        if not args.skip_pg:
            admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
            name = f"fraudgate_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
                figures = fill(url, "postgresql", args.decisions, args.days)
                figures |= daily(url, "postgresql", workdir, as_of, models, args)
                results["postgresql"] = figures
                print("postgresql", figures, flush=True)
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    # a skipped backend keeps its figures from the existing file (measured by an earlier run)
    before = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for backend in ("sqlite", "postgresql"):
        if backend not in results and backend in before:
            results[backend] = before[backend]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
