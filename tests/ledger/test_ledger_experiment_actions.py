"""Acts on an experiment and rollout state, on both backends: an act and its weight change land
together, and a rollout's step moves only by compare-and-set (a stale controller moves nothing)."""

from __future__ import annotations

import pytest

from fraudgate.protocol.errors import InvalidInput

EXPERIMENT = "ab"


def test_an_act_records_its_weights_in_the_same_transaction(store):
    act = store.record_experiment_action(
        EXPERIMENT,
        "promote",
        "alice",
        "better recall",
        {"state": {"x": 1}},
        weights={"a": 0, "b": 100},
    )
    assert act.id > 0
    (read,) = store.experiment_actions(EXPERIMENT)
    assert (read.action, read.actor, read.reason, read.detail) == (
        "promote",
        "alice",
        "better recall",
        {"state": {"x": 1}},
    )
    (change,) = store.weight_history(EXPERIMENT)
    assert change.new == {"a": 0.0, "b": 100.0} and change.at == read.at
    assert change.actor == "alice (promote)"
    assert store.experiment_actions(EXPERIMENT, actions=["rollback"]) == []
    with pytest.raises(InvalidInput, match="reason"):
        store.record_experiment_action(EXPERIMENT, "rollback", "bob", "x" * 501, {})


def test_a_rollout_moves_by_compare_and_set(store):
    started = store.start_rollout(EXPERIMENT, "ctl", {"steps": [0, 50]}, {})
    assert (started.step, started.status) == (-1, "running")
    with pytest.raises(ValueError, match="still running"):
        store.start_rollout(EXPERIMENT, "other", {"steps": []}, {})
    step0 = store.advance_rollout(
        started,
        step=0,
        status="running",
        baseline={},
        action="rollout_step",
        reason="s0",
        detail={"weights": {"a": 100, "b": 0}},
    )
    assert step0 is not None and step0.step == 0
    # a second controller holding the record it read before: refused, nothing recorded
    stale = store.advance_rollout(
        started,
        step=0,
        status="running",
        baseline={},
        action="rollout_step",
        reason="again",
        detail={},
    )
    assert stale is None
    ready = store.advance_rollout(
        step0,
        step=0,
        status="running",
        baseline={"ready": True},
        action="rollout_live",
        reason="live",
        detail={},
    )
    assert ready is not None and ready.step_started_at == step0.step_started_at
    assert ready.baseline == {"ready": True}
    ended = store.advance_rollout(
        ready,
        step=0,
        status="rolled_back",
        baseline={},
        action="rollout_end",
        reason="bad",
        detail={},
    )
    assert ended is not None and ended.status == "rolled_back"
    assert store.running_rollout(EXPERIMENT) is None
    assert store.latest_rollout(EXPERIMENT).id == started.id
    kinds = [(a.action, a.detail.get("step")) for a in store.experiment_actions(EXPERIMENT)]
    assert kinds == [
        ("rollout_start", None),
        ("rollout_step", 0),
        ("rollout_live", 0),
        ("rollout_end", 0),
    ]
