"""The promotion rules as data: what promote and rollback leave, which aliases move, and what a
disagreement between the registry, the servers and the ledger says."""

from __future__ import annotations

import pytest

from fraudgate.config import parse_config
from fraudgate.promotion import (
    PromotionConflict,
    ServingState,
    alias_moves,
    check_agreement,
    initial_state,
    plan,
    startup_models,
)

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"


def _config(uri1: str = "models:/fraud-detection@champion"):
    return parse_config(
        {
            "models": [
                {"name": V1, "uri": uri1},
                {"name": V2, "uri": "models:/fraud-detection@challenger"},
            ],
            "experiment": {
                "name": "ab",
                "default": V1,
                "candidates": [{"name": V1, "weight": 80}, {"name": V2, "weight": 20}],
            },
        }
    )


def _initial() -> ServingState:
    config = _config()
    return initial_state(config.experiment_spec, config.analysis, {V1: "1", V2: "2"})


def test_promote_then_rollback_is_a_round_trip():
    before = _initial()
    assert before.aliases == {"champion": "1", "challenger": "2"}
    promoted = plan("promote", before, None)
    assert (promoted.champion, promoted.weights, promoted.promoted) == (V2, {V2: 100, V1: 0}, True)
    assert promoted.aliases == {"champion": "2", "previous": "1"}
    assert alias_moves(before, promoted) == {"champion": "2", "previous": "1", "challenger": None}
    with pytest.raises(PromotionConflict, match="already the champion"):
        plan("promote", promoted, None)
    back = plan("rollback", promoted, None)
    assert (back.champion, back.weights, back.aliases) == (V1, {V1: 100, V2: 0}, before.aliases)
    assert alias_moves(promoted, back) == {"champion": "1", "challenger": "2", "previous": None}
    # a rollback during a ramp: traffic only, the aliases stay
    ramp = plan("rollback", before, None)
    assert ramp.weights == {V1: 100, V2: 0} and alias_moves(before, ramp) == {}
    assert ServingState.from_json(promoted.to_json()) == promoted


def test_disagreements_name_what_differs_and_what_to_do():
    state = _initial()
    check_agreement(state, {V1: "1", V2: "2"}, {"champion": "1", "challenger": "2"}, None)
    with pytest.raises(PromotionConflict, match=r"serves MLflow version 3.*reload it"):
        check_agreement(state, {V1: "1", V2: "3"}, {"champion": "1", "challenger": "2"}, None)
    with pytest.raises(PromotionConflict, match=r"@challenger .* is version 5.*point @challenger"):
        check_agreement(state, {V1: "1", V2: "2"}, {"champion": "1", "challenger": "5"}, None)


def test_a_restart_pins_names_to_the_versions_the_last_act_left():
    promoted = plan("promote", _initial(), None)
    models = startup_models(_config(), promoted, {"champion": "2", "previous": "1"}, None)
    assert [m.uri for m in models] == ["models:/fraud-detection/1", "models:/fraud-detection/2"]
    with pytest.raises(PromotionConflict, match="serve the wrong model"):
        startup_models(_config(), promoted, {"champion": "1", "challenger": "2"}, None)
    with pytest.raises(PromotionConflict, match=r"models\[fraud-v1-baseline\]\.uri"):
        startup_models(
            _config("models:/other/7"), promoted, {"champion": "2", "previous": "1"}, None
        )
