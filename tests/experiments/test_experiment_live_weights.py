"""Live weight changes: validated, atomic, effective for the very next request, under load."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from scipy.stats import binomtest

from fraudgate.experiments import (
    ExperimentConfigError,
    ExperimentSpec,
    ExperimentState,
    RoutingTable,
)

A, B = "fraud-v1-baseline", "fraud-v2-candidate"


def make_state(a: int, b: int, **extra: object) -> ExperimentState:
    return ExperimentState.from_config(
        {
            "name": "fraud-detection-ab-test",
            "default": A,
            "candidates": [{"name": A, "weight": a}, {"name": B, "weight": b}],
            **extra,
        }
    )


def test_set_weights_takes_effect_for_the_next_request_and_is_recorded() -> None:
    state = make_state(100, 0)
    assert state.route("card-1").model == A
    before = time.time()
    change = state.set_weights({A: 0, B: 100}, actor="alice")
    assert state.route("card-1").model == B  # the very next request
    assert state.route("card-1").generation == 1 == change.generation == state.generation
    assert change.actor == "alice" and change.experiment == "fraud-detection-ab-test"
    assert change.old == {A: 100, B: 0} and change.new == {A: 0, B: 100}
    assert before <= change.at <= time.time()  # UTC epoch seconds
    assert state.spec.weights == {A: 0, B: 100}
    second = state.set_weights({A: 50, B: 50}, actor="ramp-bot")
    assert state.history == (change, second)
    assert second.old == change.new and second.generation == 2


def test_a_change_is_the_one_weight_change_record_and_round_trips_its_view() -> None:
    from fraudgate.ledger import WeightChange as LedgerWeightChange
    from fraudgate.weights import WeightChange

    state = make_state(80, 20)
    change = state.set_weights({A: 0, B: 100}, actor="alice")
    assert type(change) is WeightChange is LedgerWeightChange
    view = change.to_json()
    assert view["at"].endswith("Z") and view["generation"] == 1
    assert (view["old"], view["new"]) == ({A: 80, B: 20}, {A: 0, B: 100})
    assert "generation" not in change.to_json(with_generation=False)
    back = WeightChange.from_json(view, change.experiment)
    assert back.at == pytest.approx(change.at, abs=1e-6)  # the view keeps microseconds
    assert replace(back, at=change.at) == change
    with pytest.raises(ValueError, match="at: expected an ISO-8601 time"):
        WeightChange.from_json({**view, "at": "yesterday"}, change.experiment)
    with pytest.raises(ValueError, match="new: expected an object"):
        WeightChange.from_json({**view, "new": [1, 2]}, change.experiment)


@pytest.mark.parametrize(
    ("weights", "actor", "field"),
    [
        ({A: 50}, "alice", "weights"),
        ({A: 50, B: 50, "fraud-v3": 1}, "alice", "weights"),
        ({A: -1, B: 50}, "alice", f"weights.{A}"),
        ({A: 1.0, B: 50}, "alice", f"weights.{A}"),
        ({A: True, B: 50}, "alice", f"weights.{A}"),
        ({A: 0, B: 0}, "alice", "weights"),
        ({A: 50, B: 50}, "", "actor"),
        ({A: 50, B: 50}, None, "actor"),
    ],
)
def test_invalid_change_is_rejected_and_changes_nothing(
    weights: dict, actor: object, field: str
) -> None:
    state = make_state(80, 20)
    with pytest.raises(ExperimentConfigError) as info:
        state.set_weights(weights, actor=actor)  # type: ignore[arg-type]
    assert info.value.field == field
    assert state.generation == 0 and state.history == ()
    assert state.spec.weights == {A: 80, B: 20}


def test_weight_change_keeps_salt_seed_mirror_and_routing() -> None:
    state = make_state(80, 20, mirror={"percent": 100}, salt="s", seed=3)
    state.set_weights({A: 20, B: 80}, actor="alice")
    spec = state.spec
    assert (spec.salt, spec.seed, spec.mirror.percent) == ("s", 3, 100)
    d = state.route("card-1")
    assert {d.model, d.mirror} == {A, B}


def test_weight_changes_under_concurrent_routing() -> None:
    """Threads route keyed and keyless requests while weights change 100/0 -> 0/100 -> 30/70.

    Every decision is checked against the table of the generation it reports (a half-updated
    table would route some key differently from a clean one), no request that started after a
    change returned may use an older table, and after the last change the observed split
    follows the new weights.
    """
    state = make_state(100, 0)
    published = [0]  # generation whose set_weights() has returned; written by the main thread
    stop = threading.Event()
    records: list[list[tuple[int, str | None, object]]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        n, out = 0, records[i]
        while not stop.is_set():
            seen = published[0]  # read before the request starts
            key = None if n % 5 == 4 else f"t{i}-card-{n}"
            out.append((seen, key, state.route(key)))
            n += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()

    def wait_for(count: int, generation: int) -> None:
        deadline = time.monotonic() + 20
        while sum(1 for r in records for s, _, _ in r if s >= generation) < count:
            assert time.monotonic() < deadline, "workers made no progress"
            time.sleep(0.01)

    try:
        wait_for(2_000, 0)
        published[0] = state.set_weights({A: 0, B: 100}, actor="alice").generation
        wait_for(2_000, 1)
        published[0] = state.set_weights({A: 30, B: 70}, actor="bob").generation
        wait_for(12_000, 2)
    finally:
        stop.set()
        for t in threads:
            t.join()

    specs = {0: make_state(100, 0).spec}
    specs[1] = specs[0].with_weights({A: 0, B: 100})
    specs[2] = specs[0].with_weights({A: 30, B: 70})
    tables = {g: RoutingTable.from_spec(s, g) for g, s in specs.items()}

    final_n = final_b = 0
    for seen, key, d in (rec for r in records for rec in r):
        assert d.generation >= seen, "a request started after a change used an older table"
        if d.generation < 2:  # 100/0 and 0/100 leave no room for doubt
            assert d.model == (A if d.generation == 0 else B)
        if key is not None:
            assert d == tables[d.generation].route_key(key)  # consistent with one whole table
        if seen == 2:
            final_n += 1
            final_b += d.model == B
    assert final_n >= 12_000
    assert binomtest(final_b, final_n, 0.7).pvalue > 0.001
    assert [c.actor for c in state.history] == ["alice", "bob"]


def test_concurrent_writers_serialise() -> None:
    state = make_state(50, 50)
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        for j in range(50):
            state.set_weights({A: i, B: j + 1}, actor=f"w{i}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = state.history
    assert [c.generation for c in history] == list(range(1, 401))
    for prev, cur in zip(history, history[1:], strict=False):
        assert cur.old == prev.new  # no lost update: each change saw its predecessor
    assert state.spec.weights == history[-1].new
    assert isinstance(state.spec, ExperimentSpec)
