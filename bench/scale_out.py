"""Scale-out on one machine: three `fraudgate serve` replicas behind nginx, one PostgreSQL ledger.

    .venv/bin/python bench/scale_out.py [--requests 5000] [--cards 500] [--concurrency 32]
                                        [--poll-s 0.5] [--workdir .fraudgate/demo]

One config (the demo's models from an MLflow registry, its 80/20 experiment with the 100% shadow
mirror, ``ledger.shipper: external``, ``weights_poll_s`` short) is copied into three replica
directories (each its own journal), one ``fraudgate ledger ship`` per replica journal, nginx in
front (bench/_cluster.py), a PostgreSQL database created for the run and dropped after. Then:

1. the same keyed requests (``--requests``, cards ``card-<i % --cards>`` as routing keys) to
   replica 0 alone and through nginx: throughput of each, same client and request count;
2. which replica answered each request (nginx's ``X-Fraudgate-Upstream``): the split;
3. every card gets one arm whichever replica answers it;
4. a live weight change (80/20 -> 50/50) through replica 1's admin REST endpoint, and the time
   until each replica serves the new weights (each polls the ledger every ``--poll-s``);
5. traffic through nginx while replica 2 is SIGKILLed a third of the way in; its shipper keeps
   running and drains the dead replica's journal; then the replica is restarted and gets traffic
   again. Acknowledged (HTTP 200) requests against the ledger's served decisions, before and
   after the kill: none may be missing or doubled;
6. `fraudgate report --config` over the shared ledger: its served units add up over the
   replicas.

Prints a table and writes bench/results/scale_out.json. Exit code 1 if a check fails.
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
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import _cluster  # noqa: E402
import _model  # noqa: E402

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NEW_WEIGHTS = {"fraud-v1-baseline": 50, "fraud-v2-candidate": 50}


@dataclass(frozen=True)
class Settings:
    requests: int
    cards: int
    concurrency: int
    poll_s: float
    rounds: int = 3  # interleaved throughput rounds (one replica, nginx); the median is reported
    restart: bool = True  # restart the killed replica and check that it gets traffic again
    replicas: int = 3


@dataclass
class Phase:
    """One traffic phase: where it went, what came back."""

    name: str
    target: str
    requests: int
    seconds: float
    rps: float
    client_cpu_util: float  # the load generator's CPU share of the phase (1.0: it was the limit)
    statuses: dict[str, int]
    by_replica: dict[str, int]
    by_arm: dict[str, int]


def config_text(
    tracking_uri: str,
    uris: tuple[str, str],
    ledger_url: str,
    poll_s: float,
    mirror_percent: int = 100,
) -> str:
    """The demo's models and experiment (its shadow mirror at ``mirror_percent``), an external
    shipper, a short weights poll, a token."""
    import yaml

    from fraudgate.config import default_config_dict, demo_experiment_dict

    config = default_config_dict(tracking_uri)
    config["models"][0]["uri"], config["models"][1]["uri"] = uris
    config["experiment"] = demo_experiment_dict()
    config["experiment"]["mirror"]["percent"] = mirror_percent
    config["ledger"] = {
        "url": ledger_url,
        "weights_poll_s": poll_s,
        "acknowledge": "journal",
        "shipper": "external",
        "journal_dir": "ledger-journal",  # relative: each replica's directory has its own
    }
    config["auth"] = {"token": "scale-out-" + uuid.uuid4().hex}
    return yaml.safe_dump(config, sort_keys=False)


def token_of(text: str) -> str:
    import yaml

    return str(yaml.safe_load(text)["auth"]["token"])


def _phase(cluster: _cluster.Cluster, name: str, target: str, traffic: _cluster.Traffic) -> Phase:
    return Phase(
        name=name,
        target=target,
        requests=len(traffic.answers),
        seconds=traffic.seconds,
        rps=traffic.rps,
        client_cpu_util=traffic.client_cpu_s / traffic.seconds if traffic.seconds else 0.0,
        statuses=traffic.statuses(),
        by_replica=_cluster.split_by_replica(cluster, traffic.answers),
        by_arm=_cluster.split_by_arm(traffic.answers),
    )


def measure(
    cluster: _cluster.Cluster,
    ledger_url: str,
    token: str,
    experiment: str,
    settings: Settings,
    scratch: Path,
) -> dict:
    """The whole scenario (see the module docstring); returns its figures as a dict of records."""
    n, cards, c = settings.requests, settings.cards, settings.concurrency
    nginx = cluster.nginx.url
    phases: list[Phase] = []
    t0 = time.monotonic()

    def note(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", flush=True)

    def send(name: str, url: str, requests: list, **options) -> _cluster.Traffic:
        traffic = _cluster.run_traffic(url, requests, concurrency=c, **options)
        target = "nginx" if url == nginx else url
        phases.append(_phase(cluster, name, target, traffic))
        note(f"{name}: {len(traffic.answers)} requests in {traffic.seconds:.2f}s")
        return traffic

    warm = send("warm-up", nginx, _cluster.keyed_requests("warm", min(n, 300), cards, seed=1))
    # Throughput: one replica alone, then nginx over all, in interleaved rounds, each started
    # once the shippers have caught up (their backlog must not take the next round's CPU).
    _cluster.check_ledger(ledger_url, warm.answers)
    before_change = list(warm.answers)
    single_rps, spread_rps = [], []
    for r in range(settings.rounds):
        for name, url, prefix in (
            (f"one replica #{r + 1}", cluster.replicas[0].url, f"one{r}"),
            (f"nginx #{r + 1}", nginx, f"lb{r}"),
        ):
            traffic = send(name, url, _cluster.keyed_requests(prefix, n, cards, seed=10 + r))
            (single_rps if url != nginx else spread_rps).append(traffic.rps)
            before_change += traffic.answers
            _cluster.check_ledger(ledger_url, traffic.answers)
    arms_before = _cluster.check_arms(cluster, before_change, direct=0)

    propagation = _cluster.propagate_weights(
        cluster, token, experiment, NEW_WEIGHTS, on=1, poll_s=settings.poll_s
    )
    note(f"weights propagated: {propagation.seconds}")
    after = send("nginx, new weights", nginx, _cluster.keyed_requests("new", n // 2, cards, 3))
    before_kill = _cluster.check_ledger(ledger_url, [*before_change, *after.answers])

    kill_at = max(1, n // 3)
    killed: dict[str, float] = {}

    def kill_once(answered: int) -> None:
        if answered >= kill_at and not killed:
            killed["at_answer"] = answered
            killed["at"] = time.monotonic()
            cluster.kill(2)

    kill = send(
        "nginx, replica 2 SIGKILLed",
        nginx,
        _cluster.keyed_requests("kill", n, cards, seed=4),
        on_answer=kill_once,
    )
    kill_phase = phases[-1]
    after_kill = _cluster.check_ledger(ledger_url, kill.answers, timeout=120.0)
    restart_s = None
    back_answers: list[_cluster.Answer] = []
    if settings.restart:
        restart_s = cluster.restart(2)
        back = send(
            "nginx, replica 2 restarted",
            nginx,
            _cluster.keyed_requests("back", max(n // 5, 100), cards, seed=5),
        )
        back_answers = back.answers
    new_weights = [*after.answers, *kill.answers, *back_answers]
    arms_after = _cluster.check_arms(cluster, new_weights)
    everything = [*before_change, *new_weights]
    total = _cluster.check_ledger(ledger_url, everything, timeout=120.0)

    from fraudgate.ledger import open_ledger

    store = open_ledger(ledger_url)
    try:
        served_rows = store.count_decisions(role="served")
        mirror_rows = store.count_decisions(role="mirror")
    finally:
        store.close()
    note("ledger checked")
    report = _cluster.run_report(cluster, scratch / "report.json")
    note("fraudgate report done")
    return {
        "phases": [asdict(p) for p in phases],
        "throughput": {
            "one_replica_rps": statistics.median(single_rps),
            "nginx_three_replicas_rps": statistics.median(spread_rps),
            "ratio": statistics.median(spread_rps) / statistics.median(single_rps),
            "one_replica_rps_of_rounds": single_rps,
            "nginx_rps_of_rounds": spread_rps,
            "requests_per_round": n,
            "concurrency": c,
        },
        "arms_before_change": asdict(arms_before),
        "arms_after_change": asdict(arms_after),
        "propagation": {**asdict(propagation), "max_s": propagation.max_s},
        "ledger_before_kill": asdict(before_kill),
        "kill": {
            "replica": 2,
            "after_answers": killed.get("at_answer"),
            "statuses": kill_phase.statuses,
            "ledger": asdict(after_kill),
            "restart_ready_s": restart_s,
            "answered_after_restart": phases[-1].by_replica.get("2", 0) if restart_s else None,
        },
        "ledger_total": asdict(total),
        "ledger_rows": {"served": served_rows, "mirror": mirror_rows},
        "report": {**asdict(report), "total_transactions": report.total_transactions},
    }


def failures(result: dict, settings: Settings) -> list[str]:
    """What the run must show; each entry names the check that failed."""
    out = []
    for key in ("arms_before_change", "arms_after_change"):
        if result[key]["cards_with_two_arms"]:
            out.append(f"{key}: {result[key]['cards_with_two_arms']} cards got two arms")
    max_s = result["propagation"]["max_s"]
    if max_s is None or max_s > settings.poll_s + 1.0:
        out.append(f"weights reached every replica in {max_s} s (poll {settings.poll_s} s)")
    for key, check in (
        ("before kill", result["ledger_before_kill"]),
        ("after kill", result["kill"]["ledger"]),
        ("total", result["ledger_total"]),
    ):
        if check["missing"] or check["duplicated"] or check["wrong_model"]:
            out.append(f"ledger {key}: {check}")
    statuses = {
        k
        for p in result["phases"]
        for k in p["statuses"]
        if p["name"] != "nginx, replica 2 SIGKILLed"
    }
    if statuses - {"200"}:
        out.append(f"errors outside the kill: {statuses - {'200'}}")
    if settings.restart and not result["kill"]["answered_after_restart"]:
        out.append("the restarted replica got no traffic")
    served = result["ledger_rows"]["served"]
    if result["report"]["exit_code"] or result["report"]["total_transactions"] != served:
        out.append(f"report: {result['report']} vs {served} served decisions in the ledger")
    return out


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    table = Table(
        title="scale-out: 3 replicas behind nginx, one PostgreSQL ledger", title_justify="left"
    )
    columns = ("phase", "target", "requests", "req/s", "client CPU", "statuses", "per replica")
    for column in (*columns, "per arm"):
        table.add_column(column, justify="left" if column in ("phase", "target") else "right")
    for p in result["phases"]:
        table.add_row(
            p["name"],
            p["target"],
            str(p["requests"]),
            f"{p['rps']:.0f}",
            f"{p['client_cpu_util']:.0%}",
            " ".join(f"{k}:{v}" for k, v in p["statuses"].items()),
            " ".join(f"{k}:{v}" for k, v in p["by_replica"].items()),
            " ".join(f"{k.split('-')[1]}:{v}" for k, v in p["by_arm"].items()),  # v1, v2
        )
    t, prop, kill = result["throughput"], result["propagation"], result["kill"]
    lines = [
        f"throughput (median of {len(t['nginx_rps_of_rounds'])} rounds of {t['requests_per_round']}"
        f" requests, c={t['concurrency']}): one replica {t['one_replica_rps']:.0f} req/s, nginx "
        f"over 3 {t['nginx_three_replicas_rps']:.0f} req/s (x{t['ratio']:.2f})",
        f"one arm per card: {result['arms_before_change']} / after the change "
        f"{result['arms_after_change']}",
        f"weight change on replica {prop['changed_on']}: seen by replicas after "
        + ", ".join("-" if s is None else f"{s:.2f}s" for s in prop["seconds"])
        + f" (poll {prop['poll_s']} s)",
    ]
    for key, check in (
        ("before the kill", result["ledger_before_kill"]),
        ("the kill phase", kill["ledger"]),
        ("all", result["ledger_total"]),
    ):
        lines.append(
            f"ledger, {key}: {check['acknowledged']} acknowledged, {check['recorded']} recorded, "
            f"{check['missing']} missing, {check['duplicated']} doubled, "
            f"{check['unacknowledged_recorded']} unacknowledged but recorded "
            f"(shipped within {check['wait_s']:.1f}s)"
        )
    if kill["restart_ready_s"] is not None:
        lines.append(
            f"kill after {kill['after_answers']} answers; restarted ready in "
            f"{kill['restart_ready_s']:.1f}s, then answered {kill['answered_after_restart']}"
        )
    report, rows = result["report"], result["ledger_rows"]
    lines.append(
        f"fraudgate report over the shared ledger: {report['total_transactions']} transactions "
        f"{report['transactions']} from {report['units']} cards (ledger: {rows['served']} served,"
        f" {rows['mirror']} mirror rows), decision {report['decision']}"
    )
    table.caption = "\n".join(lines)
    table.caption_justify = "left"
    console.print(table)


def prepare_models(
    workdir: Path | None, scratch: Path, trees: int
) -> tuple[str, tuple[str, str], str]:
    """(tracking URI, champion and challenger URIs, source): the work dir's registered pair, or
    two stand-ins trained into ``scratch``."""
    from fraudgate.registry import Registry

    if workdir is not None and (workdir / "mlflow.db").exists():
        uri = f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
        if {"champion", "challenger"} <= set(Registry(uri).aliases()):
            return (
                uri,
                ("models:/fraud-detection@champion", "models:/fraud-detection@challenger"),
                "workdir",
            )
    target = scratch / "registry"
    first = _model.train_stand_in(target, n_trees=trees, seed=7)
    second = _model.train_stand_in(target, n_trees=trees, seed=8)
    uri = f"sqlite:///{(target / 'mlflow.db').resolve()}"
    return (
        uri,
        (f"models:/fraud-detection/{first}", f"models:/fraud-detection/{second}"),
        "stand-in",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="three replicas behind nginx, one PG ledger")
    parser.add_argument("--requests", type=int, default=5000, help="requests per phase")
    parser.add_argument("--cards", type=int, default=500, help="distinct cards (routing keys)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--poll-s", type=float, default=0.5, help="ledger.weights_poll_s")
    parser.add_argument("--trees", type=int, default=100, help="stand-in models' trees")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".fraudgate" / "demo")
    parser.add_argument("--postgres", default=PG_ADMIN_URL, help="maintenance-database URL")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "scale_out.json")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    for name in ("requests", "cards", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected at least 1, received {getattr(args, name)}")
    if not 0 < args.poll_s <= 60:
        parser.error(f"--poll-s: expected a number in (0, 60], received {args.poll_s}")
    return args


def main(argv: list[str] | None = None) -> int:
    from experiment import create_pg_database, drop_pg_database

    from fraudgate.config import DEMO_EXPERIMENT

    args = parse_args(argv)
    settings = Settings(args.requests, args.cards, args.concurrency, args.poll_s, args.rounds)
    scratch = BENCH_DIR / ".scratch" / "scale_out"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = {"XDG_CACHE_HOME": str(scratch / "cache")}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    loadavg = list(os.getloadavg())
    tracking_uri, uris, source = prepare_models(args.workdir, scratch, args.trees)
    pg = create_pg_database(args.postgres)
    if pg is None:
        return 1
    cluster = None
    try:
        text = config_text(tracking_uri, uris, pg[1], args.poll_s)
        cluster = _cluster.start_cluster(
            text, scratch / "cluster", env=env, startup_timeout=args.startup_timeout
        )
        result = measure(cluster, pg[1], token_of(text), DEMO_EXPERIMENT, settings, scratch)
    finally:
        if cluster is not None:
            cluster.stop()
        drop_pg_database(args.postgres, pg[0])
    report = {
        "benchmark": "scale_out",
        "started_at": started,
        "machine": {
            "cpu_count": os.cpu_count(),
            "loadavg_at_start": loadavg,
            "loadavg_at_end": list(os.getloadavg()),
        },
        "settings": {**asdict(settings), "models": list(uris), "model_source": source},
        **result,
    }
    failed = failures(result, settings)
    report["failures"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {args.out}")
    for line in failed:
        print(f"FAILED: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
