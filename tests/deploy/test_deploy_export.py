"""`fraudgate export prometheus|grafana`: the PrometheusRule against the real CRD schema, the
``monitoring:`` section's validation and defaults, and the dashboard's structure; every panel
query is parsed by Prometheus' own parser (`promtool check rules` on them as recording rules).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from k8s_validation import shared_validator
from typer.testing import CliRunner

from fraudgate.cli.export import DASHBOARD_FILE, PROMETHEUS_RULE_FILE, RULES_FILE, export_app
from fraudgate.config import ConfigError, demo_config_dict, parse_config, write_default_config
from fraudgate.deploy import promql
from fraudgate.deploy.grafana import RATE, dashboard, panels
from fraudgate.deploy.prometheus import alert_rules, prometheus_rule, rules_file

V2 = "fraud-v2-candidate"


def config_with(tmp_path: Path, monitoring=None, **sections):
    data = demo_config_dict("sqlite:///unused.db", tmp_path, token="t" * 16)
    data.update(sections)
    if monitoring is not None:
        data["monitoring"] = monitoring
    return parse_config(data, path=tmp_path / "fraudgate.yaml")


@pytest.fixture(scope="module")
def validator():
    return shared_validator()


def test_prometheus_rule_is_valid_against_the_crd_and_holds_the_rules_file(tmp_path, validator):
    config = config_with(
        tmp_path,
        {"rule": {"name": "fraud-alerts", "namespace": "fraud", "labels": {"release": "prom"}}},
    )
    manifest = prometheus_rule(config)
    assert validator.errors(manifest) == []
    assert manifest["metadata"] == {
        "name": "fraud-alerts",
        "namespace": "fraud",
        "labels": {"app.kubernetes.io/name": "fraudgate", "release": "prom"},
    }
    assert manifest["spec"] == rules_file(config)
    (group,) = manifest["spec"]["groups"]
    assert [r["alert"] for r in group["rules"]] == [r.name for r in alert_rules(config)]
    # the validator is not vacuous: a misspelt field and a bad duration are refused
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["groups"][0]["rules"][0]["for_"] = "5m"
    broken["spec"]["groups"][0]["rules"][1]["for"] = "5 minutes"
    found = validator.errors(broken)
    assert any("for_" in e for e in found) and any("5 minutes" in e for e in found), found


def test_monitoring_off_exports_no_alert_on_a_gauge_it_does_not_produce(tmp_path):
    from fraudgate.serving.monitoring import MONITOR_METRICS

    on = alert_rules(config_with(tmp_path))
    off = alert_rules(config_with(tmp_path, {"enabled": False}))
    dropped = {r.name for r in on} - {r.name for r in off}
    assert dropped == {r.name for r in on if r.metrics & MONITOR_METRICS}
    assert {"FraudgateRecallBelowFloor", "FraudgateDriftPSIHigh"} <= dropped
    assert "FraudgateLatencyP99High" in {r.name for r in off}
    assert not any(r.metrics & MONITOR_METRICS for r in off)


def test_thresholds_come_from_the_config(tmp_path):
    defaults = {r.name: r for r in alert_rules(config_with(tmp_path))}
    assert "< 0.7)" in defaults["FraudgateRecallBelowFloor"].expr  # the seed's recall floor
    assert defaults["FraudgateRecallBelowFloor"].for_ == "30m"
    assert "> 0.25" in defaults["FraudgateLatencyP99High"].expr  # 250 ms by default
    assert "> 15" in defaults["FraudgateShipperLagHigh"].expr  # half of ledger.max_lag_s (30)
    assert f'model="{V2}"' in defaults["FraudgateChallengerPrecisionBelowFloor"].expr
    assert "< 0.05)" in defaults["FraudgateChallengerPrecisionBelowFloor"].expr

    demo = demo_config_dict("sqlite:///unused.db", tmp_path, token="t" * 16)
    demo["ledger"]["max_lag_s"] = 8
    demo["analysis"]["guardrails"].update(
        max_p99_latency_ms=80, max_error_rate=0.002, precision_floor=0.3
    )
    demo["monitoring"] = {
        "alerts": {"recall": {"floor": 0.9, "for": "1h"}, "traffic_split": {"window": "2m"}}
    }
    custom = {r.name: r for r in alert_rules(parse_config(demo, path=tmp_path / "f.yaml"))}
    assert "< 0.9)" in custom["FraudgateRecallBelowFloor"].expr
    assert custom["FraudgateRecallBelowFloor"].for_ == "1h"
    assert "> 0.08" in custom["FraudgateLatencyP99High"].expr  # analysis.guardrails
    assert ") > 0.002 and" in custom["FraudgateErrorRateHigh"].expr
    assert "< 0.3)" in custom["FraudgateChallengerPrecisionBelowFloor"].expr
    assert "> 4" in custom["FraudgateShipperLagHigh"].expr
    assert "[2m]" in custom["FraudgateTrafficSplitDeviation"].expr
    # an explicit monitoring value wins over analysis.guardrails
    demo["monitoring"]["alerts"]["latency"] = {"p99_ms": 500}
    explicit = {r.name: r for r in alert_rules(parse_config(demo, path=tmp_path / "f.yaml"))}
    assert "> 0.5" in explicit["FraudgateLatencyP99High"].expr


@pytest.mark.parametrize(
    ("monitoring", "message"),
    [
        ([1], "monitoring: expected a mapping, received [1] (list)"),
        ({"alert": {}}, "monitoring.alert: unknown key; expected one of ['traffic_window_s',"),
        (
            {"alerts": {"recall": {"floor": 1.5}}},
            "monitoring.alerts.recall.floor: expected a number between 0.0 and 1.0, received 1.5",
        ),
        (
            {"alerts": {"recall": {"floor": "high"}}},
            "monitoring.alerts.recall.floor: expected a number, received 'high' (str)",
        ),
        (
            {"alerts": {"latency": {"for": "ten minutes"}}},
            "monitoring.alerts.latency.for: expected a Prometheus duration such as 30s, 5m or "
            "1h30m, received 'ten minutes' (str)",
        ),
        (
            {"alerts": {"errors": {"window": "0s"}}},
            "monitoring.alerts.errors.window: expected a window of at least 1s",
        ),
        (
            {"alerts": {"traffic_split": {"min_requests": 0}}},
            "monitoring.alerts.traffic_split.min_requests: expected an integer >= 1, received 0",
        ),
        (
            {"alerts": {"drift": {"psi": 0.2}}},
            "monitoring.alerts.drift.psi: unknown key; expected one of ['for'], received 'psi'",
        ),
        (
            {"rule": {"name": "Fraud_Alerts"}},
            "monitoring.rule.name: expected a Kubernetes name",
        ),
        (
            {"rule": {"labels": {"bad key": "x"}}},
            "monitoring.rule.labels: expected label names",
        ),
    ],
)
def test_bad_monitoring_values_name_field_expected_and_received(tmp_path, monitoring, message):
    with pytest.raises(ConfigError) as caught:
        config_with(tmp_path, monitoring)
    assert str(caught.value).startswith(message), str(caught.value)


def test_export_commands_write_the_files(tmp_path):
    config = write_default_config(
        tmp_path / "fraudgate.yaml", "sqlite:///unused.db", token="t" * 16
    )
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(export_app, ["prometheus", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    plain = yaml.safe_load((out / RULES_FILE).read_text())
    crd = yaml.safe_load((out / PROMETHEUS_RULE_FILE).read_text())
    assert crd["kind"] == "PrometheusRule" and crd["spec"] == plain
    for rule in plain["groups"][0]["rules"]:
        assert rule["alert"] in result.output
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: `make test` installs it"
    check = subprocess.run(
        [promtool, "check", "rules", str(out / RULES_FILE)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    result = runner.invoke(export_app, ["grafana", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    board = json.loads((out / DASHBOARD_FILE).read_text())
    assert board["title"] == "fraudgate: fraud-detection-ab-test"

    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(config.read_text())
    data["monitoring"] = {"alerts": {"shipper_lag": {"seconds": -1}}}
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(export_app, ["prometheus", "--config", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "monitoring.alerts.shipper_lag.seconds: expected a number between" in result.output


def test_dashboard_is_a_well_formed_grafana_model(tmp_path):
    config = config_with(tmp_path, {"alerts": {"recall": {"floor": 0.75}}})
    board = dashboard(config)
    assert board["id"] is None and board["uid"] == "fraudgate-fraud-detection-ab-test"
    assert len(board["uid"]) <= 40 and board["schemaVersion"] >= 36
    (variable,) = board["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    titles = []
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):  # no two panels overlap
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
        if panel["type"] == "row":
            continue
        titles.append(panel["title"])
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        assert all(t["expr"] and t["datasource"] == panel["datasource"] for t in panel["targets"])
    # what the issue asks the dashboard to show
    for wanted in (
        "Traffic split",
        "Latency percentiles",
        "Precision and recall by arm",
        "Label coverage",
        "estimated vs realised",
        "stability index",
        "Decisions per second",
        "Shipper lag",
    ):
        assert any(wanted in title for title in titles), wanted
    (recall,) = [p for p in board["panels"] if p["title"].startswith("Precision and recall")]
    steps = recall["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 0.75  # the alert's floor, drawn as a line
    assert json.loads(json.dumps(board)) == board  # plain JSON


def test_every_query_parses_in_prometheus(tmp_path):
    """Panel and alert expressions as recording rules: promtool parses each one."""
    config = config_with(tmp_path)
    exprs = [t.expr.replace(RATE, "5m") for p in panels(config) for t in p.targets]
    exprs += [r.expr for r in alert_rules(config)]
    rules = {
        "groups": [
            {
                "name": "parse",
                "rules": [
                    {"record": f"fraudgate:parse_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "parse.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: `make test` installs it"
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in check.stdout
    assert all(promql.metric_names(e) for e in exprs)  # each reads a fraudgate metric
