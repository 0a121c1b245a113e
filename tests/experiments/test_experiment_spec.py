"""ExperimentSpec: parsing the YAML section, validation errors, round trip, weight changes."""

from __future__ import annotations

import copy

import pytest
import yaml

from fraudgate.experiments import (
    Candidate,
    ExperimentConfigError,
    ExperimentSpec,
    Mirror,
    RoutingConfig,
    split_versioned_name,
)

A = "fraud-v1-baseline"

DEMO_YAML = """
experiment:
  name: fraud-detection-ab-test
  default: fraud-v1-baseline
  candidates:
    - name: fraud-v1-baseline
      weight: 80
    - name: fraud-v2-candidate
      weight: 20
  mirror:
    percent: 100          # no name: the candidate that did not answer shadows the request
  routing:
    key: card_id
    source: parameter
  seed: 42
"""


def demo() -> dict:
    return yaml.safe_load(DEMO_YAML)["experiment"]


def test_demo_config_parses_with_defaults() -> None:
    spec = ExperimentSpec.from_config(demo())
    assert spec.name == "fraud-detection-ab-test"
    assert spec.default == "fraud-v1-baseline"
    assert spec.candidates == (
        Candidate("fraud-v1-baseline", 80),
        Candidate("fraud-v2-candidate", 20),
    )
    assert spec.mirror == Mirror(None, 100) and spec.mirror.shadows_other_arm
    assert spec.routing == RoutingConfig("card_id", "parameter", "x-routing-key")
    assert spec.effective_salt == "fraud-detection-ab-test"  # derived from the name
    assert spec.seed == 42
    assert spec.total_weight == 100


def test_minimal_seldon_style_config() -> None:
    spec = ExperimentSpec.from_config(
        {
            "name": "ab",
            "candidates": [{"name": "iris", "weight": 50}, {"name": "iris2", "weight": 50}],
            "mirror": {"name": "iris3", "percent": 10},
        }
    )
    assert spec.default is None
    assert spec.mirror == Mirror("iris3", 10)
    assert spec.model_names == ("iris", "iris2", "iris3")
    assert spec.routing == RoutingConfig()
    assert spec.seed is None


def test_round_trip_through_config() -> None:
    for section in (demo(), {**demo(), "salt": "s1", "mirror": None, "seed": None}):
        spec = ExperimentSpec.from_config(section)
        assert ExperimentSpec.from_config(spec.to_config()) == spec
        assert ExperimentSpec.from_config(yaml.safe_load(yaml.safe_dump(spec.to_config()))) == spec


def test_header_name_is_case_insensitive() -> None:
    spec = ExperimentSpec.from_config(
        {**demo(), "routing": {"source": "header", "header": "X-Card-Id"}}
    )
    assert spec.routing.header == "x-card-id" and spec.routing.source == "header"


def _with(path: tuple, value: object) -> dict:
    """The demo section with the field at ``path`` set to ``value`` (``...`` deletes it)."""
    section = copy.deepcopy(demo())
    node = section
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return section


BAD = [
    # (path to change, new value, field named in the error, words of the expectation)
    (("name",), ..., "experiment.name", "a model name: letters, digits"),
    # the shared model-name rule (fraudgate.protocol.limits.MODEL_NAME), the config's
    (("name",), "Fraud AB", "experiment.name", "a model name: letters, digits"),
    (("name",), "-fraud-ab", "experiment.name", "starting with a letter or digit"),
    (("name",), "f" * 129, "experiment.name", "at most 128"),
    (("name",), "fraud-ab_3", "experiment.name", "version"),
    (("name",), "fraud-v1-baseline", "experiment.name", "different from every model name"),
    (("candidates",), [], "experiment.candidates", "non-empty list"),
    (("candidates",), "fraud-v1-baseline", "experiment.candidates", "non-empty list"),
    (("candidates", 1, "weight"), -1, "experiment.candidates[1].weight", "between 0 and"),
    (("candidates", 1, "weight"), 2.5, "experiment.candidates[1].weight", "integer"),
    (("candidates", 1, "weight"), "20", "experiment.candidates[1].weight", "integer"),
    (("candidates", 1, "weight"), True, "experiment.candidates[1].weight", "integer"),
    (("candidates", 1, "weight"), 2**31, "experiment.candidates[1].weight", "2147483647"),
    (("candidates", 1, "weight"), ..., "experiment.candidates[1].weight", "integer"),
    (("candidates", 1, "name"), A, "experiment.candidates[1].name", "not already"),
    (("candidates", 1, "name"), "fraud-v2-candidate_1", "experiment.candidates[1].name", "version"),
    (("candidates", 1, "model"), "x", "experiment.candidates[1].model", "allowed: name, weight"),
    (("default",), "fraud-v3", "experiment.default", "one of the candidates"),
    (("mirror", "percent"), 101, "experiment.mirror.percent", "between 0 and 100"),
    (("mirror", "percent"), -5, "experiment.mirror.percent", "between 0 and 100"),
    (("mirror", "percent"), "100", "experiment.mirror.percent", "between 0 and 100"),
    (("mirror", "percent"), ..., "experiment.mirror.percent", "between 0 and 100"),
    (("mirror", "percentage"), 100, "experiment.mirror.percentage", "allowed: name, percent"),
    (("mirror", "name"), "fraud-v2-candidate", "experiment.mirror.name", "not a candidate"),
    (("mirror", "name"), "fraud-detection-ab-test", "experiment.mirror.name", "experiment name"),
    (("routing", "source"), "cookie", "experiment.routing.source", "'parameter' or 'header'"),
    (("routing", "key"), "", "experiment.routing.key", "non-empty"),
    (("routing", "header"), "x routing", "experiment.routing.header", "header name"),
    (("salt",), "s" * 65, "experiment.salt", "at most 64"),
    (("salt",), 7, "experiment.salt", "string"),
    (("seed",), -1, "experiment.seed", "non-negative"),
    (("seed",), "42", "experiment.seed", "non-negative"),
    (("weights",), {}, "experiment.weights", "allowed: name, default"),
]


@pytest.mark.parametrize(("path", "value", "field", "expected"), BAD)
def test_validation_errors_name_field_expected_and_received(
    path: tuple, value: object, field: str, expected: str
) -> None:
    with pytest.raises(ExperimentConfigError) as info:
        ExperimentSpec.from_config(_with(path, value))
    err = info.value
    assert err.field == field
    assert expected in err.expected
    message = str(err)
    assert message.startswith(f"{field}: expected ")
    assert "received " in message
    if value is not ...:
        assert repr(value)[:40] in message  # the received value is shown


def test_all_zero_weights_rejected() -> None:
    section = demo()
    for c in section["candidates"]:
        c["weight"] = 0
    with pytest.raises(ExperimentConfigError, match="at least one candidate with a positive"):
        ExperimentSpec.from_config(section)


def test_other_arm_shadow_needs_exactly_two_candidates() -> None:
    section = demo()
    section["candidates"].append({"name": "fraud-v3", "weight": 0})
    with pytest.raises(ExperimentConfigError) as info:
        ExperimentSpec.from_config(section)
    assert info.value.field == "experiment.mirror.name"
    assert "exactly two candidates, there are 3" in str(info.value)
    section["mirror"] = {"name": "fraud-shadow", "percent": 100}  # a named mirror is fine
    assert ExperimentSpec.from_config(section).mirror == Mirror("fraud-shadow", 100)


def test_not_a_mapping() -> None:
    with pytest.raises(ExperimentConfigError, match=r"^experiment: expected a mapping"):
        ExperimentSpec.from_config(["name"])  # type: ignore[arg-type]


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ExperimentConfigError, match="experiment.default"):
        ExperimentSpec("ab", (Candidate("a", 1),), default="b")


def test_with_weights() -> None:
    spec = ExperimentSpec.from_config(demo())
    new = spec.with_weights({"fraud-v2-candidate": 50, "fraud-v1-baseline": 50})
    assert new.weights == {"fraud-v1-baseline": 50, "fraud-v2-candidate": 50}
    assert new.candidate_names == spec.candidate_names  # order kept
    assert spec.weights == {"fraud-v1-baseline": 80, "fraud-v2-candidate": 20}  # unchanged
    for bad, words in [
        ({"fraud-v1-baseline": 100}, "missing ['fraud-v2-candidate']"),
        ({"fraud-v1-baseline": 50, "fraud-v2-candidate": 50, "x": 1}, "only for the candidates"),
        ({"fraud-v1-baseline": 0, "fraud-v2-candidate": 0}, "at least one positive"),
        ({"fraud-v1-baseline": -1, "fraud-v2-candidate": 5}, "weights.fraud-v1-baseline"),
        ({"fraud-v1-baseline": 0.5, "fraud-v2-candidate": 5}, "integer"),
    ]:
        with pytest.raises(ExperimentConfigError, match=words.replace("[", r"\[")):
            spec.with_weights(bad)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("fraud-v1-baseline_1", ("fraud-v1-baseline", "1")),
        ("fraud-v1-baseline_12", ("fraud-v1-baseline", "12")),
        ("fraud-v1-baseline", ("fraud-v1-baseline", None)),
        ("fraud_v1", ("fraud_v1", None)),  # not a DNS name before the suffix: not a version
        ("_1", ("_1", None)),
    ],
)
def test_split_versioned_name(requested: str, expected: tuple) -> None:
    assert split_versioned_name(requested) == expected


def test_names_follow_the_config_rule_underscores_and_capitals_included() -> None:
    """One model-name rule for the config and the experiment: a config that serves ``fraud_v1``
    can put it in an experiment (only a ``_<digits>`` suffix is refused: it names a version)."""
    section = {
        "name": "Fraud.AB_test",
        "default": "fraud_v1",
        "candidates": [{"name": "fraud_v1", "weight": 1}, {"name": "Fraud.V2", "weight": 1}],
    }
    spec = ExperimentSpec.from_config(section)
    assert spec.candidate_names == ("fraud_v1", "Fraud.V2")
    assert split_versioned_name("fraud_v1_2") == ("fraud_v1", "2")
