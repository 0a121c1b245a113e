"""The real Prometheus server (Debian package ``prometheus``) scraping a real `fraudgate serve`
under replayed traffic, queried through its HTTP API: the metric names the exported rules and the
dashboard read exist, their labels are the ones the expressions group by, every expression
evaluates, the numbers match what the replay saw, and an alert really fires.

Prometheus listens on 127.0.0.1 only, keeps its data in the test's temporary directory, scrapes
and evaluates every second, and is killed at the end. The alert provoked is the traffic split
(``for: 2s``): requests that all carry one card id go to one arm, a sample ratio mismatch.
Bad requests (4xx) are sent too: the error-rate alert (5xx only) stays quiet.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from experiment_config import EXPERIMENT, TOKEN, V1, V2, write_config
from load import payload, send_many

from fraudgate.config import load_config
from fraudgate.data.simulator import SimulationConfig, simulate
from fraudgate.deploy import promql
from fraudgate.deploy.grafana import RATE, panels
from fraudgate.deploy.prometheus import alert_rules, rules_file
from fraudgate.replay import ReplaySettings, run_replay
from fraudgate.server_process import free_port

pytestmark = pytest.mark.slow

REPLAYED = 600
SPLIT_ALERT = "FraudgateTrafficSplitDeviation"
MONITORING = {  # short windows: the test's Prometheus scrapes and evaluates every second
    "refresh_s": 0.5,
    "ledger_refresh_s": 1.0,
    "traffic_window_s": 10.0,
    "alerts": {
        "traffic_split": {"tolerance": 0.1, "min_requests": 50, "window": "10s", "for": "2s"},
        "errors": {"min_requests": 10, "window": "10s", "for": "1s"},
        "latency": {"window": "10s"},
        "ledger_write_failures": {"window": "10s"},
    },
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr)["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only this process
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def start_prometheus(root: Path, target: str, rules: Path) -> Prometheus:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: `make test` installs it (Debian package prometheus)")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "fraudgate", "static_configs": [{"targets": [target]}]}],
    }
    config_path = root / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = root / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prometheus = Prometheus(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200:
                return prometheus
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    prometheus.stop()
    pytest.fail(f"prometheus not ready after 30 s:\n{log_path.read_text()[-3000:]}")


def wait_for(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


@dataclass
class Stack:
    config_path: Path
    server_url: str
    prometheus: Prometheus
    replay: dict[str, Any]


@pytest.fixture(scope="module")
def stack(trained_registry, module_launch, tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("prometheus-scrape")
    config_path = write_config(root / "fraudgate.yaml", trained_registry.tracking_uri)
    data = yaml.safe_load(config_path.read_text())
    data["monitoring"] = MONITORING
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(config_path)
    rules = root / "fraudgate.rules.yaml"
    rules.write_text(yaml.safe_dump(rules_file(config), sort_keys=False))
    clock = [time.monotonic()]

    def lap(what: str) -> None:
        clock.append(time.monotonic())
        print(f"{what}: {clock[-1] - clock[-2]:.1f} s")

    server = module_launch(config_path)
    lap("fraudgate serve ready")
    prometheus = start_prometheus(root, f"127.0.0.1:{server.http_port}", rules)
    try:
        # its scrape manager applies new targets after a few seconds: traffic before the first
        # scrape would be one step in no window
        wait_for(lambda: prometheus.query('up{job="fraudgate"} == 1'), 30, "the first scrape")
        lap("prometheus ready and scraping")
        workdir = root / "replay"
        simulate(SimulationConfig(days=30, transactions_per_day=400, emerging_day=16)).write(
            workdir / "data"
        )
        lap("simulation")
        summary = run_replay(
            ReplaySettings(
                url=server.url,
                transactions=REPLAYED,
                rate=200.0,  # three seconds of traffic: several scrapes see it
                concurrency=8,
                token=TOKEN,
                workdir=workdir,
                label_batch=100,
            ),
            show_progress=False,
        )
        assert summary["ok"] == REPLAYED, summary["error_examples"]
        lap(f"replay (scoring {summary['elapsed_s']:.1f} s, {summary['labels']['sent']} labels)")
        stack = Stack(config_path, server.url, prometheus, summary)
        _scraped_after(stack, time.time())  # every test reads counters that include all traffic
        yield stack
    finally:
        prometheus.stop()


def _scraped_after(stack: Stack, since: float) -> None:
    """Wait until Prometheus holds a scrape of the server taken after ``since`` (epoch s)."""
    # timestamp() of a selector is its sample's time; of an expression (`up == 1`) it would be
    # the evaluation's time, always after ``since``
    up = 'up{job="fraudgate"}'
    wait_for(
        lambda: stack.prometheus.query(f"timestamp({up}) > {since} and {up} == 1"),
        20,
        "a scrape after the traffic",
    )


def _exposed_names(url: str) -> set[str]:
    names = set()
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def _read_names(config) -> dict[str, set[str]]:
    """Metric name -> the rules and panels that read it."""
    readers: dict[str, set[str]] = {}
    for rule in alert_rules(config):
        for name in rule.metrics:
            readers.setdefault(name, set()).add(f"alert {rule.name}")
    for panel in panels(config):
        for target in panel.targets:
            for name in promql.metric_names(target.expr):
                readers.setdefault(name, set()).add(f"panel {panel.title!r}")
    return readers


def test_labels_and_values_match_what_the_replay_saw(stack):
    p = stack.prometheus
    served = p.query(f"sum by (experiment, model) ({promql.SERVED})")
    by_model = {s["metric"]["model"]: float(s["value"][1]) for s in served}
    assert {s["metric"]["experiment"] for s in served} == {EXPERIMENT}
    assert by_model == {model: float(n) for model, n in stack.replay["split"].items()}, (
        by_model,
        stack.replay["split"],
    )
    weights = p.query(promql.weight_share())
    assert {s["metric"]["model"]: float(s["value"][1]) for s in weights} == {V1: 0.8, V2: 0.2}
    requests = p.query(f"sum by (model, version, protocol) ({promql.REQUESTS})")
    assert {tuple(sorted(s["metric"])) for s in requests} == {("model", "protocol", "version")}
    by_protocol = {
        (s["metric"]["model"], s["metric"]["protocol"]): float(s["value"][1]) for s in requests
    }
    # one request per replayed transaction, all REST; the shadow scores in the shipper process
    assert sum(v for (_, protocol), v in by_protocol.items() if protocol == "rest") == REPLAYED
    assert sum(v for (_, protocol), v in by_protocol.items() if protocol == "grpc") == 0
    decisions = p.query("sum by (model) (fraudgate_decisions_total)")
    assert {s["metric"]["model"]: float(s["value"][1]) for s in decisions} == by_model

    # the alerts' expressions on the real series, during the replay: one value per arm / model,
    # labelled as the alerts' annotations expect
    start = datetime.fromisoformat(stack.replay["started_at"]).timestamp()
    during = f"{start + stack.replay['elapsed_s'] + 10:.3f}"

    def at(expr: str) -> list[dict[str, Any]]:
        return p.get("/api/v1/query", query=expr, time=during)["result"]

    deviation = {
        s["metric"]["model"]: float(s["value"][1]) for s in at(promql.share_deviation("20s"))
    }
    assert set(deviation) == {V1, V2} and abs(sum(deviation.values())) < 1e-9, deviation
    assert all(
        set(s["metric"]) == {"experiment", "model"} for s in at(promql.share_deviation("20s"))
    )
    p99 = {
        s["metric"]["model"]: float(s["value"][1]) for s in at(promql.latency_quantile(0.99, "20s"))
    }
    assert set(p99) == {V1, V2} and all(0 < v < 2.5 for v in p99.values()), p99
    for gauge in ("fraudgate_model_recall", "fraudgate_label_coverage_ratio"):
        arms = p.query(promql.per_arm(gauge))
        assert {s["metric"]["model"] for s in arms} == {V1, V2}, (gauge, arms)
        assert all(set(s["metric"]) == {"experiment", "model"} for s in arms)


def test_every_rule_loads_and_every_expression_evaluates(stack):
    config = load_config(stack.config_path)
    (group,) = stack.prometheus.get("/api/v1/rules")["groups"]
    loaded = {r["name"]: r for r in group["rules"]}
    assert set(loaded) == {r.name for r in alert_rules(config)}
    wait_for(
        lambda: all(
            r.get("lastEvaluation", "").startswith("2")
            for r in stack.prometheus.get("/api/v1/rules")["groups"][0]["rules"]
        ),
        10,
        "every rule evaluated once",
    )
    for rule in stack.prometheus.get("/api/v1/rules")["groups"][0]["rules"]:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    for panel in panels(config):
        for target in panel.targets:
            stack.prometheus.query(target.expr.replace(RATE, "10s"))  # status success or fail
    # the dashboard's split panel over the replay's scoring: each arm's share, adding up to 1
    start = datetime.fromisoformat(stack.replay["started_at"]).timestamp()
    scored = start + stack.replay["elapsed_s"]
    shares = stack.prometheus.get(
        "/api/v1/query", query=promql.observed_share("20s"), time=f"{scored + 10:.3f}"
    )["result"]
    values = {s["metric"]["model"]: float(s["value"][1]) for s in shares}
    assert set(values) == {V1, V2} and abs(sum(values.values()) - 1) < 1e-9, values


def _alert_state(stack: Stack, name: str) -> list[dict[str, Any]]:
    return [
        a
        for a in stack.prometheus.get("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == name
    ]


def test_bad_requests_are_counted_but_do_not_fire_the_error_rate_alert(stack):
    bad = payload("bad", "card-x").replace(b'"shape":[1,30]', b'"shape":[1,29]')
    results = asyncio.run(
        send_many(stack.server_url, [(f"bad-{i}", None, bad) for i in range(60)], concurrency=4)
    )
    assert {r.status for r in results} == {400}
    since = time.time()
    _scraped_after(stack, since)
    counted = wait_for(
        lambda: stack.prometheus.query('sum(fraudgate_inference_failures_total{code="400"}) >= 60'),
        10,
        "the 60 400s in Prometheus",
    )
    assert float(counted[0]["value"][1]) >= 60
    time.sleep(2.5)  # the rule (for: 1s) has evaluated over the 4xx burst
    assert _alert_state(stack, "FraudgateErrorRateHigh") == []


def test_a_hot_card_fires_the_traffic_split_alert(stack):
    """Every request carries the same card id, so one arm answers them all: within seconds the
    split alert is pending, then firing, for both arms, with the deviation as its value."""
    hot = [(f"hot-{i}", "hot-card", payload(f"hot-{i}", "hot-card")) for i in range(4000)]
    started = time.monotonic()
    fired: list[dict[str, Any]] = []
    sent = 0
    while time.monotonic() - started < 60 and sent < len(hot):
        results = asyncio.run(send_many(stack.server_url, hot[sent : sent + 200], concurrency=8))
        assert all(r.status == 200 for r in results)
        arms = {r.model for r in results}
        assert len(arms) == 1  # sticky: one card, one arm
        sent += 200
        fired = [a for a in _alert_state(stack, SPLIT_ALERT) if a["state"] == "firing"]
        if len(fired) == 2:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    assert len(fired) == 2, (_alert_state(stack, SPLIT_ALERT), sent, elapsed)
    (hot_arm,) = arms
    weight_share = {V1: 0.8, V2: 0.2}
    for alert in fired:
        assert alert["labels"]["experiment"] == EXPERIMENT
        assert alert["labels"]["severity"] == "warning"
        assert alert["labels"]["model"] in (V1, V2)
        value = float(alert["value"])
        assert 0.1 < value <= 1 - weight_share[hot_arm] + 1e-9, alert
        assert alert["annotations"]["description"].startswith(
            f"The served share of {alert['labels']['model']} differs from its weight's share by"
        )
    print(f"split alert firing after {elapsed:.1f} s and {sent} hot-card requests")


def test_every_metric_the_rules_and_panels_read_exists(stack):
    """On the server's /metrics and in Prometheus' own index of what it scraped (last: the
    failures counter has samples once a request failed, as the bad requests above did)."""
    _scraped_after(stack, time.time())
    readers = _read_names(load_config(stack.config_path))
    exposed = _exposed_names(stack.server_url)
    scraped = set(stack.prometheus.get("/api/v1/label/__name__/values"))
    missing = {name: sorted(by) for name, by in readers.items() if name not in exposed}
    assert missing == {}, f"read by rules/panels but not on /metrics: {missing}"
    assert set(readers) <= scraped, sorted(set(readers) - scraped)
