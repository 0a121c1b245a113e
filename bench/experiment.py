"""Experiment overhead benchmark: routing + mirror + ledger vs plain serving of one model.

    .venv/bin/python bench/experiment.py [--workdir .fraudgate/demo] [--duration 10] [--warmup 2]
                                         [--postgres URL | --no-postgres]
                                         [--payload transactions|single]

One run, one server at a time, each pinned to CPU 1 with wrk pinned to CPU 0 (the load method of
bench/serving.py, through its helpers bench/_wrk.py and bench/_procs.py), concurrency 32,
``[1, 30]`` FP32 requests routed by ``card_id``. The default payload cycles through 4,000 real
transactions of the demo's replay window (their features and cards); ``--payload single`` sends
one synthetic row with a new card each time, as earlier runs did. One repeated row flatters the
models: the CPU's branch predictors learn its path through the trees (32 rows score in 35 us
instead of 140 us on this machine), which no live traffic allows, and that inflates every cost
the experiment adds relative to serving. Scenarios:

* ``plain``: one model, no experiment, no ledger (what bench/serving.py measures);
* ``explicit version+ledger``: requests to ``fraud-v1-baseline_1`` bypass the experiment but
  are recorded like the rest (the ledger path without routing);
* ``routed 100/0+ledger``: routed, every card to the champion (routing without the split);
* ``routed+ledger``: the demo's 80/20 experiment, sticky by card, every served decision appended
  to the server's decision journal before the 200 (the default ``acknowledge: journal``), no
  mirror. The shipper (``shipper: external``, as a sidecar with its own CPU would be) runs after
  the rounds: the serving process is measured alone, and the shipping is measured apart (rows
  moved per second and per CPU-second, into SQLite);
* ``routed+mirror+ledger``: the same plus the 100% mirror (the other arm scores every request
  off the response path: the server journals the copies' features with its decisions and the
  shipper scores them, see fraudgate.ledger.mirror; so with the shipper run afterwards, the
  shipper's figures include the mirror's scoring);
* ``... (sidecar)``: the shipper runs during the rounds, on the load generator's CPU (this
  machine has no third core for it);
* ``... (one core)``: the shipper as the server's child on the server's CPU (``shipper: child``,
  the local default, at nice 10);
* ``... (commit)``: ``acknowledge: commit``, the 200 waits for the SQLite group commit;
* ``... (postgresql, sidecar)``: the journal shipped into PostgreSQL during the rounds
  (127.0.0.1:5432, a database created for the run and dropped).

Every cell starts once the machine is idle (`_procs.wait_quiet`), so no shipper still working
off a previous cell's backlog runs during it.

Targets (reported, not enforced): ``routed+mirror+ledger`` (SQLite) at most 15% below ``plain`` in
throughput, and the mirror adds at most 1 ms to the served p99 (mirror vs no-mirror). The
summary adds the median of the per-round ratios with a distribution-free 95% interval and a sign
test against the 85% target. Each scenario's ledger is checked afterwards: one served decision
per answered request.
Prints a table and writes bench/results/experiment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import _model  # noqa: E402
import _procs  # noqa: E402
import _wrk  # noqa: E402

CONCURRENCY = 32
V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
INFER_PATH = f"/v2/models/{V1}/infer"
VERSIONED_PATH = f"/v2/models/{V1}_1/infer"
THROUGHPUT_TARGET = 0.85
MIRROR_P99_TARGET_MS = 1.0
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

_LUA_SINGLE = r"""
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, [==[PREFIX]==] .. (counter % 100000) .. [==[SUFFIX]==])
end
"""
_LUA_POOL = r"""
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end
"""
POOL_SIZE = 4000
PAYLOADS = {
    "transactions": f"[1, 30] FP32: {POOL_SIZE} transactions of the demo's replay window in "
    "turn, parameters.card_id = each one's card",
    "single": "[1, 30] FP32, one row, parameters.card_id = card-<counter % 100000>",
}


def _body(row: list[float], card: str) -> str:
    return json.dumps(
        {
            "inputs": [
                {"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": row}
            ],
            "parameters": {"content_type": "np", "card_id": card},
        }
    )


def lua_script(row: list[float]) -> str:
    """bench/_wrk.py's script (its done() hook reports the percentiles) + one body whose
    ``card_id`` changes with every request (the ``single`` payload)."""
    body = _body(row, "card-CARD")
    prefix, suffix = body.split("CARD")
    return _wrk.lua_script(body.encode()) + _LUA_SINGLE.replace("PREFIX", prefix).replace(
        "SUFFIX", suffix
    )


def pool_script(rows: list[list[float]], cards: list[str]) -> str:
    """The same, cycling through real transactions: each its own features and card."""
    bodies = "\n".join(
        f"bodies[{i + 1}] = [==[{_body(row, card)}]==]"
        for i, (row, card) in enumerate(zip(rows, cards, strict=True))
    )
    first = _body(rows[0], cards[0]).encode()
    return _wrk.lua_script(first) + "bodies = {}\n" + bodies + "\n" + _LUA_POOL


def transactions(workdir: Path, n: int) -> tuple[list[list[float]], list[str]]:
    """``n`` transactions of the demo's replay window (simulated when ``workdir`` has none)."""
    from fraudgate.replay import ReplaySettings, select_transactions

    batch = select_transactions(ReplaySettings(url="-", workdir=workdir, transactions=n))
    rows = [[float(v) for v in row] for row in batch.features]
    return rows, [f"card-{card}" for card in batch.frame["card_id"]]


# -- the models ---------------------------------------------------------------------------------
def model_uris(model: _model.BenchModel) -> tuple[str, str]:
    """Champion and challenger URIs; registers a second stand-in when there is no challenger."""
    from fraudgate.registry import Registry

    registry = Registry(model.tracking_uri)
    aliases = registry.aliases()
    if "challenger" in aliases:
        return "models:/fraud-detection@champion", "models:/fraud-detection@challenger"
    # a stand-in work dir: register another stand-in, address both by version
    first = aliases["champion"]
    second = _model.train_stand_in(model.workdir, seed=8)
    return f"models:/fraud-detection/{first}", f"models:/fraud-detection/{second}"


def config_dict(
    tracking_uri: str, uris: tuple[str, str], scenario: str, ledger_url: str | None
) -> dict:
    """The scenario's config; its name says mirror, "one core" (child shipper), "commit",
    "100/0" (every card to the champion)."""
    from fraudgate.config import default_config_dict, demo_experiment_dict

    config = default_config_dict(tracking_uri)
    config["models"][0]["uri"], config["models"][1]["uri"] = uris
    if scenario == "plain":
        config["models"] = config["models"][:1]
        return config
    experiment = demo_experiment_dict()
    if "mirror" not in scenario:
        experiment["mirror"] = {"percent": 0}
    if "100/0" in scenario:
        experiment["candidates"][0]["weight"], experiment["candidates"][1]["weight"] = 100, 0
    config["experiment"] = experiment
    config["ledger"] = {
        "url": ledger_url,
        "weights_poll_s": 0,
        "acknowledge": "commit" if "commit" in scenario else "journal",
        "shipper": "child" if "one core" in scenario else "external",
    }
    config["auth"] = {"token": "bench-token-" + uuid.uuid4().hex}
    return config


def slugify(scenario: str) -> str:
    return scenario.replace(" ", "_").replace("(", "").replace(")", "").replace("/", "-")


def fraudgate_cli() -> list[str]:
    exe = Path(sys.executable).parent / "fraudgate"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "fraudgate"]


def fraudgate_argv(config: Path, http_port: int, grpc_port: int) -> list[str]:
    flags = ["--config", str(config), "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    return [*fraudgate_cli(), "serve", *flags]


# -- PostgreSQL ---------------------------------------------------------------------------------
def create_pg_database(admin_url: str) -> tuple[str, str] | None:
    import sqlalchemy as sa

    name = f"fraudgate_bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL unreachable, skipping it: {str(exc).splitlines()[0]}")
        return None
    finally:
        engine.dispose()
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(admin_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# -- measuring ----------------------------------------------------------------------------------
def start_server(
    scenario: str, config: dict, scratch: Path, args: argparse.Namespace
) -> _procs.Server:
    import yaml

    slug = slugify(scenario)
    http_port, grpc_port = _procs.free_port(), _procs.free_port()
    config["server"].update({"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port})
    path = scratch / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    server = _procs.start(
        scenario,
        fraudgate_argv(path, http_port, grpc_port),
        http_port=http_port,
        grpc_port=grpc_port,
        log_path=scratch / "logs" / f"{slug}.log",
        cwd=scratch,
    )
    server.extra["startup_s"] = _procs.wait_ready(
        server, f"/v2/models/{V1}/ready", args.startup_timeout
    )
    server.extra["config"] = config
    server.extra["config_path"] = path
    if "sidecar" in scenario:
        server.extra["sidecar"] = _procs.spawn(
            [*fraudgate_cli(), "ledger", "ship", "--config", str(path)],
            cpu=_procs.LOAD_CPU,
            log_path=scratch / "logs" / f"{slug}-shipper.log",
            cwd=scratch,
        )
    return server


def ship_afterwards(server: _procs.Server, scratch: Path) -> dict:
    """Run `fraudgate ledger ship --once` on a deferred scenario's journal: rows/s, rows/CPU-s."""
    from fraudgate.ledger import open_ledger

    url = server.extra["config"]["ledger"]["url"]
    store = open_ledger(url)
    before = store.count_decisions()
    store.close()
    start = time.monotonic()
    proc = _procs.spawn(
        [*fraudgate_cli(), "ledger", "ship", "--once", "--nice", "0"]
        + ["--config", str(server.extra["config_path"])],
        cpu=_procs.SERVER_CPU,
        log_path=scratch / "logs" / f"{slugify(server.name)}-ship-once.log",
        cwd=scratch,
    )
    cpu = 0.0
    while proc.poll() is None:
        cpu = max(cpu, _procs.cpu_seconds(proc.pid))
        time.sleep(0.05)
    seconds = time.monotonic() - start
    store = open_ledger(url)
    rows = store.count_decisions() - before
    store.close()
    return {
        "shipped_rows": rows,
        "ship_seconds": seconds,
        "ship_cpu_s": cpu,
        "ship_rows_per_s": rows / seconds if seconds else None,
        "ship_rows_per_cpu_s": rows / cpu if cpu else None,
        "ship_exit_code": proc.returncode,
    }


def run_cell(server: _procs.Server, script: Path, duration: float) -> dict:
    # explicit version: the request reaches the model directly (recorded, not routed)
    url = server.base_url + (VERSIONED_PATH if "explicit" in server.name else INFER_PATH)
    sidecar = server.extra.get("sidecar")
    cpu0 = _procs.cpu_seconds(server.proc.pid)
    side0 = _procs.cpu_seconds(sidecar.pid) if sidecar else 0.0
    result = _wrk.run(url, script, connections=CONCURRENCY, threads=1, duration_s=duration)
    cpu = _procs.cpu_seconds(server.proc.pid) - cpu0
    side = _procs.cpu_seconds(sidecar.pid) - side0 if sidecar else 0.0
    return {
        **result.as_dict(),
        "shipper_sidecar_cpu_s": side,
        "requests_per_cpu_s_with_sidecar": result.requests / (cpu + side) if cpu > 0 else None,
        "server_cpu_s": cpu,
        "server_cpu_util": cpu / result.duration_s if result.duration_s else 0.0,
        "requests_per_server_cpu_s": result.requests / cpu if cpu > 0 else None,
        "loadavg": list(os.getloadavg()),
    }


def combine(scenario: str, rounds: list[dict], server: _procs.Server) -> dict:
    """The median round (by req/s) is the scenario's figure; every round is kept."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    median = ordered[len(ordered) // 2]
    cell = {
        "scenario": scenario,
        "concurrency": CONCURRENCY,
        "startup_s": server.extra["startup_s"],
        **median,
        "p99_ms_median_of_rounds": statistics.median(r["p99_ms"] for r in rounds),
        "p50_ms_median_of_rounds": statistics.median(r["p50_ms"] for r in rounds),
        "rps_of_rounds": [r["rps"] for r in rounds],
        "p99_ms_of_rounds": [r["p99_ms"] for r in rounds],
        "error_total": sum(r["error_total"] for r in rounds),
        "requests_all_rounds": sum(r["requests"] for r in rounds),
    }
    return cell


def count_ledger(cell: dict, config: dict, answered: int) -> None:
    ledger = config.get("ledger")
    if not ledger:
        return
    from fraudgate.ledger import open_ledger

    store = open_ledger(ledger["url"])
    try:
        cell["ledger_served"] = store.count_decisions(role="served")
        cell["ledger_mirror"] = store.count_decisions(role="mirror")
    finally:
        store.close()
    cell["ledger_answered_requests"] = answered


def paired_median_test(ratios: list[float], target: float) -> dict:
    """A distribution-free 95% interval for the median per-round ratio (order statistics), and
    the one-sided p-value of "the median ratio is at most ``target``" (a sign test)."""
    from scipy import stats

    if len(ratios) < 6:  # too few rounds for an interval to mean anything
        return {}
    test = stats.quantile_test(ratios, q=target, p=0.5, alternative="greater")
    interval = stats.quantile_test(ratios, q=target, p=0.5).confidence_interval(0.95)
    return {
        "throughput_ratio_paired_ci95": [float(interval.low), float(interval.high)],
        "throughput_ratio_paired_p_at_most_target": float(test.pvalue),
    }


def summarize(cells: dict[str, dict]) -> dict:
    plain = cells.get("plain")
    full = cells.get("routed+mirror+ledger")
    no_mirror = cells.get("routed+ledger")
    out: dict[str, object] = {}
    if plain and full:
        out["throughput_ratio"] = full["rps"] / plain["rps"]
        out["throughput_drop_pct"] = 100 * (1 - full["rps"] / plain["rps"])
        out["p99_delta_vs_plain_ms"] = full["p99_ms"] - plain["p99_ms"]
        out["throughput_target_met"] = out["throughput_ratio"] >= THROUGHPUT_TARGET
        # round by round (the scenarios of a round run back to back): steadier on a noisy machine
        paired = [f / p for f, p in zip(full["rps_of_rounds"], plain["rps_of_rounds"], strict=True)]
        out["throughput_ratio_paired_median"] = statistics.median(paired)
        out.update(paired_median_test(paired, THROUGHPUT_TARGET))
    if plain and no_mirror:
        out["routing_ledger_throughput_ratio"] = no_mirror["rps"] / plain["rps"]
    if full and no_mirror:
        out["mirror_p99_delta_ms"] = full["p99_ms"] - no_mirror["p99_ms"]
        out["mirror_p50_delta_ms"] = full["p50_ms"] - no_mirror["p50_ms"]
        out["mirror_p99_delta_median_ms"] = (
            full["p99_ms_median_of_rounds"] - no_mirror["p99_ms_median_of_rounds"]
        )
        out["mirror_target_met"] = out["mirror_p99_delta_median_ms"] <= MIRROR_P99_TARGET_MS
    if full and full.get("ship_rows_per_cpu_s"):
        out["shipper_rows_per_cpu_s"] = full["ship_rows_per_cpu_s"]
        out["shipper_rows_per_s"] = full["ship_rows_per_s"]
        # the shipper CPU that serving at the measured rate needs (served + mirror rows)
        out["shipper_cores_needed"] = 2 * full["rps"] / full["ship_rows_per_cpu_s"]
    for variant in ("sidecar", "one core", "commit"):
        cell = cells.get(f"routed+mirror+ledger ({variant})")
        if plain and cell:
            out[f"{variant.replace(' ', '_')}_throughput_ratio"] = cell["rps"] / plain["rps"]
    pg = cells.get("routed+mirror+ledger (postgresql, sidecar)")
    if plain and pg:
        out["postgresql_throughput_ratio"] = pg["rps"] / plain["rps"]
        out["postgresql_p99_delta_vs_plain_ms"] = pg["p99_ms"] - plain["p99_ms"]
    return out


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    table = Table(
        title=f"experiment overhead, wrk -c{CONCURRENCY}, server on CPU {_procs.SERVER_CPU}, "
        f"wrk on CPU {_procs.LOAD_CPU}, median of {report['settings']['rounds']} interleaved "
        f"{report['settings']['duration_s']:.0f}s rounds",
        title_justify="left",
    )
    for column in ("scenario", "req/s", "vs plain", "p50 ms", "p99 ms", "p99.9 ms", "errors"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    table.add_column("req/CPU-s", justify="right")
    table.add_column("shipper CPU", justify="right")
    table.add_column("ledger served/mirror", justify="right")
    plain = report["cells"].get("plain")
    for name, cell in report["cells"].items():
        ratio = f"{cell['rps'] / plain['rps']:.1%}" if plain else "-"
        ledger = "-"
        if "ledger_served" in cell:
            ledger = f"{cell['ledger_served']}/{cell['ledger_mirror']}"
        eff = cell.get("requests_per_server_cpu_s")
        table.add_row(
            name,
            f"{cell['rps']:.0f}",
            ratio,
            f"{cell['p50_ms']:.2f}",
            f"{cell['p99_ms']:.2f}",
            f"{cell['p999_ms']:.2f}",
            str(cell["error_total"]),
            f"{eff:.0f}" if eff else "-",
            f"{cell['shipper_sidecar_cpu_s'] / cell['duration_s']:.0%}"
            if cell.get("shipper_sidecar_cpu_s")
            else "-",
            ledger,
        )
    s = report["summary"]
    lines = []
    if "throughput_ratio" in s:
        verdict = "met" if s["throughput_target_met"] else "MISSED"
        lines.append(
            f"routing+mirror+ledger (SQLite): {s['throughput_drop_pct']:.1f}% fewer req/s than "
            f"plain (target <= 15%: {verdict}); median of the per-round ratios "
            f"{100 * s['throughput_ratio_paired_median']:.1f}% of plain"
        )
        if "throughput_ratio_paired_ci95" in s:
            low, high = s["throughput_ratio_paired_ci95"]
            lines.append(
                f"  95% interval of that median {100 * low:.1f}%..{100 * high:.1f}%; sign test of "
                f"median <= {THROUGHPUT_TARGET:.0%}: p = "
                f"{s['throughput_ratio_paired_p_at_most_target']:.2g}"
            )
    if "mirror_p99_delta_ms" in s:
        verdict = "met" if s["mirror_target_met"] else "MISSED"
        lines.append(
            f"mirror adds {s['mirror_p99_delta_ms']:+.2f} ms to the served p99, "
            f"{s['mirror_p99_delta_median_ms']:+.2f} ms by median-of-rounds p99 "
            f"(target <= 1 ms: {verdict})"
        )
    if "shipper_rows_per_cpu_s" in s:
        lines.append(
            f"shipper (after the rounds, SQLite): {s['shipper_rows_per_s']:,.0f} rows/s, "
            f"{s['shipper_rows_per_cpu_s']:,.0f} rows per CPU-second: serving routed+mirror "
            f"at the measured rate needs {s['shipper_cores_needed']:.2f} of a core beside it"
        )
    load = report["machine"]
    lines.append(f"load average at start {load['loadavg_at_start']}, end {load['loadavg_at_end']}")
    table.caption = "\n".join(lines)
    table.caption_justify = "left"
    console.print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="experiment (routing+mirror+ledger) overhead")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".fraudgate" / "demo")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per scenario")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "experiment.json")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument(
        "--postgres",
        default=PG_ADMIN_URL,
        help="maintenance-database URL where a scratch database is created for the run",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--payload",
        choices=sorted(PAYLOADS),
        default="transactions",
        help="transactions: real, varied rows (default); single: one row, a new card each time",
    )
    parser.add_argument(
        "--only",
        action="append",
        help="run only this scenario, or those whose name contains this (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _wrk.ensure_wrk()
    scratch = BENCH_DIR / ".scratch" / "experiment"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    os.environ.setdefault("XDG_CACHE_HOME", str(scratch / "cache"))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    loadavg_start = list(os.getloadavg())
    model = _model.prepare(args.workdir, scratch)
    uris = model_uris(model)
    script = scratch / "post.lua"
    if args.payload == "single":
        script.write_text(lua_script(_model.sample_row()))
    else:
        script.write_text(pool_script(*transactions(args.workdir, POOL_SIZE)))
    scenarios: list[tuple[str, str | None]] = [
        ("plain", None),
        ("explicit version+ledger", f"sqlite:///{scratch / 'ledger-explicit.db'}"),
        ("routed 100/0+ledger", f"sqlite:///{scratch / 'ledger-100.db'}"),
        ("routed+ledger", f"sqlite:///{scratch / 'ledger-nomirror.db'}"),
        ("routed+mirror+ledger", f"sqlite:///{scratch / 'ledger-mirror.db'}"),
        ("routed+mirror+ledger (sidecar)", f"sqlite:///{scratch / 'ledger-sidecar.db'}"),
        ("routed+mirror+ledger (one core)", f"sqlite:///{scratch / 'ledger-onecore.db'}"),
        ("routed+mirror+ledger (commit)", f"sqlite:///{scratch / 'ledger-commit.db'}"),
    ]
    if args.only:  # a part that names a scenario exactly selects it alone
        names = {name for name, _ in scenarios}
        scenarios = [
            s
            for s in scenarios
            if any(s[0] == part or (part not in names and part in s[0]) for part in args.only)
        ]
    wants_pg = not args.only or any(part in "postgresql" for part in args.only)
    pg = None if args.no_postgres or not wants_pg else create_pg_database(args.postgres)
    if pg is not None:
        scenarios.append(("routed+mirror+ledger (postgresql, sidecar)", pg[1]))
    cells: dict[str, dict] = {}
    servers: dict[str, _procs.Server] = {}
    rounds: dict[str, list[dict]] = {}
    answered: dict[str, int] = {}
    try:
        # every server up at once (idle ones cost nothing), then interleaved rounds, so that
        # drifting load from other work on the machine hits every scenario alike
        for name, ledger_url in scenarios:
            print(f"starting {name} ...", flush=True)
            config = config_dict(model.tracking_uri, uris, name, ledger_url)
            servers[name] = start_server(name, config, scratch, args)
        for name, server in servers.items():
            warm = run_cell(server, script, args.warmup)
            answered[name] = warm["requests"] - warm["error_total"]
        for i in range(args.rounds):
            for name, server in servers.items():
                # a shipper still busy with the previous cell's backlog would steal CPU from
                # this one (wrk's or the server's): start each cell on a quiet machine
                quiet_wait = _procs.wait_quiet()
                cell = run_cell(server, script, args.duration)
                cell["quiet_wait_s"] = quiet_wait
                answered[name] += cell["requests"] - cell["error_total"]
                rounds.setdefault(name, []).append(cell)
                print(
                    f"round {i + 1}/{args.rounds} {name}: {cell['rps']:.0f} req/s, "
                    f"p99 {cell['p99_ms']:.2f} ms, load {cell['loadavg'][0]:.2f}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            _procs.stop(server.proc, grace=30)  # SIGTERM: flushes queued mirror decisions
            if "sidecar" in server.extra:  # SIGTERM: ships what is left, then exits
                _procs.stop(server.extra["sidecar"], grace=60)
    try:
        for name, server in servers.items():
            cells[name] = combine(name, rounds[name], server)
            ledger = server.extra["config"].get("ledger") or {}
            deferred = (
                ledger.get("acknowledge") == "journal" and ledger.get("shipper") == "external"
            )
            if deferred and "sidecar" not in server.extra:
                print(f"shipping the journal of {name} ...", flush=True)
                cells[name].update(ship_afterwards(server, scratch))
            count_ledger(cells[name], server.extra["config"], answered[name])
    finally:
        if pg is not None:
            drop_pg_database(args.postgres, pg[0])
    report = {
        "benchmark": "experiment",
        "started_at": started,
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_available": _procs.cpus_available(),
            "pinned": len(_procs.cpus_available()) >= 2,
            "loadavg_at_start": loadavg_start,
            "loadavg_at_end": list(os.getloadavg()),
        },
        "settings": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "method": "all servers started, then interleaved rounds, each cell started once "
            "the machine is idle (shippers caught up); median round reported",
            "warmup_s": args.warmup,
            "concurrency": CONCURRENCY,
            "server_cpu": _procs.SERVER_CPU,
            "load_cpu": _procs.LOAD_CPU,
            "wrk": _wrk.wrk_version(),
            "model_source": model.source,
            "models": list(uris),
            "payload": PAYLOADS[args.payload],
        },
        "targets": {
            "throughput": "routing+mirror+ledger >= 85% of plain serving's req/s at c=32",
            "mirror_p99": "mirror adds <= 1 ms to the served p99 at c=32",
        },
        "cells": cells,
        "summary": summarize(cells),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"wrote {args.out}")
    errors = sum(cell["error_total"] for cell in cells.values())
    lost = [
        name
        for name, cell in cells.items()
        if "ledger_served" in cell and cell["ledger_served"] < cell["ledger_answered_requests"]
    ]
    if lost:
        print(f"ledger holds fewer served decisions than answered requests in: {lost}")
    return 1 if errors or lost else 0


if __name__ == "__main__":
    sys.exit(main())
