"""The config's ``analysis:`` section: defaults, the seed's example file, errors by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudgate.analysis.cost import SEED_COST_MODEL, SEED_TRANSACTIONS_PER_DAY
from fraudgate.config import AnalysisConfig, ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed-costs.yaml"
MODELS = [{"name": "a", "uri": "models:/m@champion"}, {"name": "b", "uri": "models:/m@c"}]


def test_without_a_section_the_documented_defaults_apply() -> None:
    analysis = parse_config({"models": MODELS}).analysis
    assert analysis == AnalysisConfig()
    assert analysis.maturity_days == 90 and analysis.alpha == 0.05
    assert analysis.primary_metric == "recall" and analysis.guardrails.srm_p == 0.001


def test_the_seed_example_loads_with_the_seed_prices() -> None:
    config = load_config(EXAMPLE)
    analysis = config.analysis
    assert analysis.cost.cost_model() == SEED_COST_MODEL
    assert analysis.cost.transactions_per_day == SEED_TRANSACTIONS_PER_DAY
    assert (analysis.champion, analysis.challenger) == ("fraud-v1-baseline", "fraud-v2-candidate")
    policy = analysis.decision_policy()
    assert policy.max_p99_latency_ms == 50 and policy.max_days == 60
    assert config.experiment_spec is not None and config.experiment_spec.mirror is not None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"alpha": 0.9}, "analysis.alpha: expected a number between"),
        ({"primary_metric": "f1"}, "analysis.primary_metric: expected one of"),
        ({"champion": "zzz"}, "analysis.champion: expected one of the models[].name"),
        ({"champion": "a", "challenger": "a"}, "analysis.challenger: expected a model other"),
        ({"maturity": 3}, "analysis.maturity: unknown key"),
        ({"guardrails": {"srm_p": -1}}, "analysis.guardrails.srm_p: expected a number"),
        ({"guardrails": {"max_p99_latency_ms": "x"}}, "max_p99_latency_ms: expected a number"),
        ({"cost": {"loss_share": 2}}, "analysis.cost.loss_share: expected a number between"),
        ({"cost": {"per_fraud": 1}}, "analysis.cost.per_fraud: unknown key"),
        ({"max_frauds": 0}, "analysis.max_frauds: expected an integer >= 1"),
    ],
)
def test_errors_name_field_expected_and_received(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"models": MODELS, "analysis": section})
    assert message in str(caught.value)
    assert "received" in str(caught.value)


def test_null_disables_a_guardrail() -> None:
    data = {"models": MODELS, "analysis": {"guardrails": {"max_error_rate": None}}}
    assert parse_config(data).analysis.guardrails.max_error_rate is None
