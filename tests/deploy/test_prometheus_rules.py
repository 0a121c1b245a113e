"""The exported alerting rules, checked by Prometheus' own `promtool check rules` and unit-tested
with `promtool test rules`: every alert has a case where it fires (with its exact labels and
annotations, the value computed here independently) and one where it does not.

The cases are built from the config's thresholds, and run for two configs (the demo's defaults
and one with other thresholds, windows and ``for``), so the rules follow the config. A mutation
check shows the cases can fail: rules exported with another recall floor fail them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudgate.config import FraudgateConfig, demo_config_dict, duration_seconds, parse_config
from fraudgate.deploy.prometheus import alert_rules, rules_file
from fraudgate.serving.metrics import LATENCY_BUCKETS

EXPERIMENT = "fraud-detection-ab-test"
V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
STEP_S = 60  # the input series' interval and the evaluation interval
CUSTOM = {
    "psi_alert": 0.15,
    "alerts": {
        "recall": {"floor": 0.8, "min_labelled_frauds": 10, "for": "10m"},
        "challenger_precision": {"floor": 0.2, "min_labelled_frauds": 5, "for": "15m"},
        "traffic_split": {"tolerance": 0.02, "min_requests": 200, "window": "5m", "for": "3m"},
        "latency": {"p99_ms": 40, "window": "3m", "for": "2m"},
        "errors": {"max_rate": 0.05, "min_requests": 20, "window": "2m", "for": "1m"},
        "drift": {"for": "20m"},
        "ledger_write_failures": {"window": "2m", "for": "1m"},
        "shipper_lag": {"seconds": 5, "for": "30s"},
        "label_coverage": {"floor": 0.3, "stall": "2h", "for": "10m"},
        "fallback_runtime": {"for": "1m"},
    },
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `make test` installs it (Debian package prometheus)")
    return path


def demo_config(tmp_path: Path, monitoring: dict[str, Any] | None = None) -> FraudgateConfig:
    data = demo_config_dict("sqlite:///unused.db", tmp_path, token="t" * 16)
    if monitoring is not None:
        data["monitoring"] = monitoring
    return parse_config(data, path=tmp_path / "fraudgate.yaml")


# -- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    """Input series (selector -> promtool values), how long the rule needs (its window plus
    ``for``), and the alerts expected at the end: (labels, value) each."""

    alert: str
    name: str
    series: dict[str, str]
    span_s: float
    expected: list[tuple[dict[str, str], float]] = field(default_factory=list)

    @property
    def eval_s(self) -> int:
        return int(self.span_s) + 10 * STEP_S

    def points(self) -> int:
        return self.eval_s // STEP_S + 5


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _arm(model: str, **extra: str) -> str:
    return _labels(experiment=EXPERIMENT, model=model, **extra)


def _gauge(value: float, n: int) -> str:
    return f"{value!r}x{n}"


def _counter(per_step: float, n: int) -> str:
    return f"0+{per_step!r}x{n}"


def cases(config: FraudgateConfig) -> list[Case]:
    a = config.monitoring.alerts
    out: list[Case] = []
    n = 0  # set per case below: points in the series

    def case(alert: str, name: str, span: float, build: Any) -> None:
        c = Case(alert, name, {}, span)
        nonlocal n
        n = c.points()
        c.series, c.expected = build()
        out.append(c)

    def fs(text: str) -> float:
        return duration_seconds(text)

    # recall: below the floor with enough labelled frauds; below it with too few; above it
    r = a.recall
    span = fs(r.for_)

    def recall(value: float, frauds: int) -> Any:
        def build() -> Any:
            series = {
                f"fraudgate_model_recall{{{_arm(V1, instance='a')}}}": _gauge(value, n),
                f"fraudgate_model_recall{{{_arm(V1, instance='b')}}}": _gauge(value, n),
                f"fraudgate_model_recall{{{_arm(V2, instance='a')}}}": _gauge(0.99, n),
                f"fraudgate_model_labelled_frauds{{{_arm(V1, instance='a')}}}": _gauge(frauds, n),
                f"fraudgate_model_labelled_frauds{{{_arm(V2, instance='a')}}}": _gauge(frauds, n),
            }
            fires = value < r.floor and frauds >= r.min_labelled_frauds
            return series, [({"experiment": EXPERIMENT, "model": V1}, value)] if fires else []

        return build

    case("FraudgateRecallBelowFloor", "fires", span, recall(r.floor - 0.05, r.min_labelled_frauds))
    case("FraudgateRecallBelowFloor", "too few frauds", span, recall(r.floor - 0.05, 1))
    case("FraudgateRecallBelowFloor", "above the floor", span, recall(r.floor + 0.01, 500))

    # the challenger's precision (the champion's is not judged against this floor)
    p = a.challenger_precision
    floor = p.floor or 0.0

    def precision(model: str, value: float) -> Any:
        def build() -> Any:
            series = {
                f"fraudgate_model_precision{{{_arm(model)}}}": _gauge(value, n),
                f"fraudgate_model_labelled_frauds{{{_arm(model)}}}": _gauge(
                    p.min_labelled_frauds, n
                ),
            }
            fires = model == V2 and value < floor
            return series, [({"experiment": EXPERIMENT, "model": V2}, value)] if fires else []

        return build

    span = fs(p.for_)
    low = floor / 2
    case("FraudgateChallengerPrecisionBelowFloor", "fires", span, precision(V2, low))
    case("FraudgateChallengerPrecisionBelowFloor", "champion", span, precision(V1, low))
    case("FraudgateChallengerPrecisionBelowFloor", "above", span, precision(V2, floor + 0.01))

    # traffic split: two replicas, weights 80/20 reported by both; served per step per replica
    s = a.traffic_split
    window_steps = fs(s.window) / STEP_S

    def split(share_v2: float, per_step: float) -> Any:
        def build() -> Any:
            series: dict[str, str] = {}
            for instance in ("a", "b"):
                for model, weight in ((V1, 80), (V2, 20)):
                    series[f"fraudgate_experiment_weight{{{_arm(model, instance=instance)}}}"] = (
                        _gauge(weight, n)
                    )
                v2 = per_step * share_v2
                series[f"fraudgate_experiment_served_total{{{_arm(V1, instance=instance)}}}"] = (
                    _counter(per_step - v2, n)
                )
                series[f"fraudgate_experiment_served_total{{{_arm(V2, instance=instance)}}}"] = (
                    _counter(v2, n)
                )
            deviation = abs(share_v2 - 0.2)
            served = 2 * per_step * window_steps
            fires = deviation > s.tolerance and served >= s.min_requests
            expected = (
                [
                    ({"experiment": EXPERIMENT, "model": V1}, deviation),
                    ({"experiment": EXPERIMENT, "model": V2}, deviation),
                ]
                if fires
                else []
            )
            return series, expected

        return build

    span = fs(s.window) + fs(s.for_)
    busy = float(s.min_requests)  # per step and replica: the window holds plenty
    skewed = 0.2 + s.tolerance + 0.03
    case("FraudgateTrafficSplitDeviation", "fires", span, split(skewed, busy))
    case("FraudgateTrafficSplitDeviation", "as weighted", span, split(0.2, busy))
    quiet = s.min_requests / (4 * window_steps)  # half the minimum in the window
    case("FraudgateTrafficSplitDeviation", "too little traffic", span, split(skewed, quiet))

    # p99 latency: a share of requests in a slow bucket, the rest fast
    lat = a.latency
    threshold_s = (lat.p99_ms or 0.0) / 1000.0
    bounds = list(LATENCY_BUCKETS)
    slow = next(i for i, b in enumerate(bounds) if i > 0 and bounds[i - 1] >= 2 * threshold_s)

    def latency(slow_share: float) -> Any:
        def build() -> Any:
            per_step = 100.0
            series: dict[str, str] = {}
            fast = 0  # the first bucket: far below any threshold
            for i, bound in enumerate([*bounds, float("inf")]):
                le = "+Inf" if bound == float("inf") else repr(bound)
                cumulative = per_step * (1 - slow_share) if i >= fast else 0.0
                if i >= slow:
                    cumulative = per_step
                labels = _labels(model=V1, version="1", protocol="rest", le=le)
                series[f"fraudgate_inference_request_duration_seconds_bucket{{{labels}}}"] = (
                    _counter(cumulative, n)
                )
            # Prometheus' interpolation within the bucket holding the 99th percentile
            rank, below = 0.99 * per_step, per_step * (1 - slow_share)
            if rank <= below:
                p99 = bounds[fast] * rank / below
            else:
                lower, upper = bounds[slow - 1], bounds[slow]
                p99 = lower + (upper - lower) * (rank - below) / (per_step * slow_share)
            fires = p99 > threshold_s
            return series, [({"model": V1}, p99)] if fires else []

        return build

    span = fs(lat.window) + fs(lat.for_)
    case("FraudgateLatencyP99High", "fires", span, latency(0.1))
    case("FraudgateLatencyP99High", "fast", span, latency(0.005))

    # server errors: 5xx per request above the limit; 4xx (the caller's) never count
    e = a.errors
    limit = e.max_rate or 0.0
    window_steps_e = fs(e.window) / STEP_S

    def errors(per_step: float, rate_5xx: float, rate_4xx: float) -> Any:
        def build() -> Any:
            base = _labels(model=V1, version="1", protocol="rest")
            series = {
                f"fraudgate_inference_requests_total{{{base}}}": _counter(per_step, n),
                f'fraudgate_inference_failures_total{{{base},code="503"}}': _counter(
                    per_step * rate_5xx, n
                ),
                f'fraudgate_inference_failures_total{{{base},code="400"}}': _counter(
                    per_step * rate_4xx, n
                ),
            }
            fires = rate_5xx > limit and per_step * window_steps_e >= e.min_requests
            return series, [({"model": V1}, rate_5xx)] if fires else []

        return build

    span = fs(e.window) + fs(e.for_)
    busy_e = float(e.min_requests)
    bad = min(1.0, limit * 2 + 0.03)
    case("FraudgateErrorRateHigh", "fires", span, errors(busy_e, bad, 0.0))
    case("FraudgateErrorRateHigh", "bad requests only", span, errors(busy_e, 0.0, 0.5))
    case(
        "FraudgateErrorRateHigh",
        "too few requests",
        span,
        errors(e.min_requests / (4 * window_steps_e), bad, 0.0),
    )

    # drift: one feature over the PSI threshold
    d, psi = a.drift, config.monitoring.psi_alert

    def drift(value: float) -> Any:
        def build() -> Any:
            series = {
                f'fraudgate_drift_psi{{model="{V1}",feature="amount"}}': _gauge(value, n),
                f'fraudgate_drift_psi{{model="{V1}",feature="hour"}}': _gauge(0.01, n),
            }
            fires = value > psi
            return series, [({"model": V1, "feature": "amount"}, value)] if fires else []

        return build

    case("FraudgateDriftPSIHigh", "fires", fs(d.for_), drift(psi + 0.5))
    case("FraudgateDriftPSIHigh", "stable", fs(d.for_), drift(psi / 2))

    # ledger write failures: any in the window (the value: failures in the window)
    w = a.ledger_write_failures

    def writes(per_step: float) -> Any:
        def build() -> Any:
            labels = _labels(instance="a", job="fraudgate")
            series = {f"fraudgate_ledger_write_failures_total{{{labels}}}": _counter(per_step, n)}
            value = per_step * fs(w.window) / STEP_S
            fires = per_step > 0
            return series, [({"instance": "a", "job": "fraudgate"}, value)] if fires else []

        return build

    span = fs(w.window) + fs(w.for_)
    case("FraudgateLedgerWriteFailures", "fires", span, writes(1.0))
    case("FraudgateLedgerWriteFailures", "none", span, writes(0.0))

    # shipper lag
    lag = a.shipper_lag
    lag_s = lag.seconds or 0.0

    def shipper(value: float) -> Any:
        def build() -> Any:
            labels = _labels(instance="a", job="fraudgate")
            series = {f"fraudgate_ledger_journal_lag_seconds{{{labels}}}": _gauge(value, n)}
            fires = value > lag_s
            return series, [({"instance": "a", "job": "fraudgate"}, value)] if fires else []

        return build

    case("FraudgateShipperLagHigh", "fires", fs(lag.for_), shipper(lag_s * 3))
    case("FraudgateShipperLagHigh", "keeping up", fs(lag.for_), shipper(lag_s / 3))

    # label coverage: low and no label for the stall window; low but labels still arriving
    c = a.label_coverage

    def coverage(labels_per_step: float) -> Any:
        value = c.floor / 2

        def build() -> Any:
            series = {
                f"fraudgate_label_coverage_ratio{{{_arm(V1)}}}": _gauge(value, n),
                f"fraudgate_label_pending_decisions{{{_arm(V1)}}}": _gauge(1000, n),
                'fraudgate_labels_received_total{source="chargeback"}': _counter(
                    labels_per_step, n
                ),
            }
            fires = labels_per_step == 0
            return series, [({"experiment": EXPERIMENT, "model": V1}, value)] if fires else []

        return build

    span = fs(c.stall) + fs(c.for_)
    case("FraudgateLabelCoverageStalled", "fires", span, coverage(0.0))
    case("FraudgateLabelCoverageStalled", "labels arriving", span, coverage(1.0))

    # the fallback runtime
    f = a.fallback_runtime

    def fallback(value: float) -> Any:
        def build() -> Any:
            series = {
                f'fraudgate_model_runtime_fallback{{model="{V2}",version="3"}}': _gauge(value, n)
            }
            return series, [({"model": V2, "version": "3"}, value)] if value > 0 else []

        return build

    case("FraudgateModelOnFallbackRuntime", "fires", fs(f.for_), fallback(1.0))
    case("FraudgateModelOnFallbackRuntime", "configured runtime", fs(f.for_), fallback(0.0))
    return out


# -- the promtool test file ----------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{ (\$labels\.(\w+)|printf \"%\.3f\" \$value) \}\}")


def render(text: str, labels: dict[str, str], value: float) -> str:
    """The annotation as Prometheus renders it (the two template forms the rules use)."""

    def one(match: re.Match[str]) -> str:
        return labels[match.group(2)] if match.group(2) else f"{value:.3f}"

    rendered = _TEMPLATE.sub(one, text)
    assert "{{" not in rendered, f"a template form this test does not render: {text}"
    return rendered


def promtool_tests(config: FraudgateConfig, rules_path: str) -> dict[str, Any]:
    rules = {r.name: r for r in alert_rules(config)}
    tests = []
    for c in cases(config):
        rule = rules[c.alert]
        exp_alerts = []
        for labels, value in c.expected:
            exp_alerts.append(
                {
                    "exp_labels": {**labels, "severity": rule.severity},
                    "exp_annotations": {
                        "summary": render(rule.summary, labels, value),
                        "description": render(rule.description, labels, value),
                    },
                }
            )
        n = c.points()
        tests.append(
            {
                "name": f"{c.alert}: {c.name}",
                "interval": f"{STEP_S}s",
                "input_series": [
                    {"series": s, "values": values.replace("{n}", str(n))}
                    for s, values in c.series.items()
                ],
                "alert_rule_test": [
                    {"eval_time": f"{c.eval_s}s", "alertname": c.alert, "exp_alerts": exp_alerts}
                ],
            }
        )
    return {"rule_files": [rules_path], "evaluation_interval": f"{STEP_S}s", "tests": tests}


def write_rules(config: FraudgateConfig, directory: Path) -> Path:
    path = directory / "fraudgate.rules.yaml"
    path.write_text(yaml.safe_dump(rules_file(config), sort_keys=False))
    return path


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("monitoring", [None, CUSTOM], ids=["defaults", "custom"])
def test_every_alert_fires_and_stays_quiet_under_promtool(tmp_path, monitoring):
    config = demo_config(tmp_path, monitoring)
    names = [r.name for r in alert_rules(config)]
    assert len(names) == len(set(names)) == 10
    all_cases = cases(config)
    for name in names:  # every alert: at least one firing case and one quiet case
        assert any(c.alert == name and c.expected for c in all_cases), name
        assert any(c.alert == name and not c.expected for c in all_cases), name
    assert {c.alert for c in all_cases} == set(names)

    rules = write_rules(config, tmp_path)
    check = run_promtool("check", "rules", rules.name, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(names)} rules found" in check.stdout
    tests = tmp_path / "fraudgate.tests.yaml"
    tests.write_text(yaml.safe_dump(promtool_tests(config, rules.name), sort_keys=False))
    result = run_promtool("test", "rules", tests.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_cases_fail_against_rules_with_another_threshold(tmp_path):
    """A mutation check: the default cases against rules exported with recall floor 0.5 (the
    'fires' case no longer fires) and p99 10s; promtool names exactly those alerts."""
    config = demo_config(tmp_path)
    other = demo_config(
        tmp_path, {"alerts": {"recall": {"floor": 0.5}, "latency": {"p99_ms": 1e4}}}
    )
    write_rules(other, tmp_path)
    tests = tmp_path / "fraudgate.tests.yaml"
    tests.write_text(yaml.safe_dump(promtool_tests(config, "fraudgate.rules.yaml")))
    result = run_promtool("test", "rules", tests.name, cwd=tmp_path)
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+),", result.stdout + result.stderr))
    assert failed == {"FraudgateRecallBelowFloor", "FraudgateLatencyP99High"}, result.stdout
