"""The ``rollout:`` section: defaults, bare weights, and errors naming field, expected, received;
and the replicas' counters the error-rate guardrail reads."""

from __future__ import annotations

import pytest

from fraudgate.config import ConfigError, RolloutStep, parse_config
from fraudgate.rollout.signals import ServingCounters, parse_counters

BASE = {"models": [{"name": "a", "uri": "models:/fraud-detection@champion"}]}


def test_defaults_and_bare_weights():
    assert [s.weight for s in parse_config(BASE).rollout.steps] == [0, 5, 20, 50, 100]
    rollout = parse_config(
        {
            **BASE,
            "rollout": {"steps": [0, {"weight": 50, "min_duration_s": 2}], "promote": "at_end"},
        }
    ).rollout
    assert rollout.steps[1] == RolloutStep(50, 2.0, 1000) and rollout.promote == "at_end"
    assert rollout.to_json()["steps"][0] == {
        "weight": 0,
        "min_duration_s": 600.0,
        "min_sample": 1000,
    }


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"steps": [5, 5]}, r"rollout.steps\[1\].weight: expected more than the step before \(5\)"),
        ({"steps": [{"weight": 101}]}, r"rollout.steps\[0\].weight: expected an integer between"),
        ({"steps": []}, "rollout.steps: expected a list of 1 to 20 steps, received"),
        ({"steps": [{"min_sample": 3}]}, r"rollout.steps\[0\].weight: expected an integer"),
        ({"check_interval_s": 0}, "rollout.check_interval_s: expected a number between"),
        ({"promote": "later"}, r"rollout.promote: expected one of \['on_primary', 'at_end'\]"),
        ({"servers": ["ftp://x"]}, r"rollout.servers\[0\]: expected an http:// or https:// URL"),
        ({"step": []}, "rollout.step: unknown key"),
    ],
)
def test_errors_name_field_expected_and_received(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, "rollout": section})


METRICS = """# HELP fraudgate_inference_requests_total Requests.
# TYPE fraudgate_inference_requests_total counter
fraudgate_inference_requests_total{model="v2",protocol="rest",version="1"} 90.0
fraudgate_inference_requests_total{model="v2",protocol="grpc",version="1"} 10.0
# HELP fraudgate_inference_failures_total Failures.
# TYPE fraudgate_inference_failures_total counter
fraudgate_inference_failures_total{code="503",model="v2",protocol="rest",version="1"} 4.0
fraudgate_inference_failures_total{code="400",model="v2",protocol="rest",version="1"} 7.0
"""


def test_error_counters_count_server_failures_since_the_baseline():
    requests, failures = parse_counters(METRICS)
    assert requests == {"v2": 100.0} and failures == {"v2": 4.0}  # a 400 is the caller's
    now = ServingCounters({"a": requests, "b": {"v2": 5.0}}, {"a": failures, "b": {}})
    baseline = ServingCounters({"a": {"v2": 60.0}, "b": {"v2": 50.0}}, {"a": {"v2": 1.0}})
    # replica b restarted since the baseline (its counter went down): counted from 0
    assert now.since(baseline, "v2") == (40.0 + 5.0, 3.0)
    assert ServingCounters.from_json(now.to_json()) == now
