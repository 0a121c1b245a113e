"""The closed days' cached counts (`fraudgate.ledger.day_cache`) equal a full recount, call
after call, while decisions keep arriving: new days, late decisions of old days, a retry that
makes an old transaction span two days, labels, other as-of times, maturities and windows."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_ledger_counts import AS_OF, DAY, MATURITY, T0, _edge_rows, _rows

from fraudgate.ledger import Decision, Label, LedgerStore, open_ledger
from fraudgate.ledger.day_cache import DayBounds, DayCache, decision_ids, signature
from fraudgate.ledger.schema import count_cache, count_cache_marks
from fraudgate.ledger.store import DECISIONS_CUT_LOCK

# (as_of, maturity, since, until): the calls made after every arrival, sharing the entries
CALLS = (
    (AS_OF, MATURITY, None, None),
    (T0 + 30 * DAY, MATURITY, None, None),  # every day wholly matured
    (AS_OF + 0.5 * DAY, 3 * DAY, None, None),
    (AS_OF, MATURITY, T0 + 3 * DAY, T0 + 15.5 * DAY),
)
EDGES = {"v1": [0.2, 0.5, 0.8], "v2": [0.1, 0.3, 0.5, 0.7]}


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            leaf
            for f in dataclasses.fields(value)
            for leaf in _leaves(getattr(value, f.name), f"{path}.{f.name}")
        ]
    if isinstance(value, tuple | list):
        if len(value) and all(isinstance(v, int | float) for v in value):
            return [(path, tuple(value))]
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


def _same(got: Any, want: Any) -> None:
    """Equal, counts exactly; float sums up to their rounding (the cached days' partial sums
    add in another order than one SQL sum)."""
    got_leaves, want_leaves = _leaves(got), _leaves(want)
    assert [p for p, _ in got_leaves] == [p for p, _ in want_leaves]
    for (path, a), (_, b) in zip(got_leaves, want_leaves, strict=True):
        if isinstance(b, float):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (path, a, b)
        else:
            assert a == b, (path, a, b)


def _cached_days(store: LedgerStore) -> int:
    with store._engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(count_cache)).scalar_one())


def _check(store: LedgerStore) -> None:
    for as_of, maturity, since, until in CALLS:
        window = {"as_of": as_of, "maturity_s": maturity, "since": since, "until": until}
        want = store.experiment_counts("exp", "v1", "v2", cache=False, **window)
        _same(store.experiment_counts("exp", "v1", "v2", cache=True, **window), want)
        # again: now read back from the cache
        _same(store.experiment_counts("exp", "v1", "v2", cache=True, **window), want)
        want_m = store.monitoring_counts("exp", as_of=as_of, edges=EDGES, cache=False)
        for _ in range(2):
            _same(store.monitoring_counts("exp", as_of=as_of, edges=EDGES, cache=True), want_m)


def _decision(req: str, txn: str, event: float, arm: str, role: str, model: str, flag: bool,
              amount: float | None = 4.0) -> Decision:  # fmt: skip
    return Decision(req, txn, event, "exp", arm, role, model, "1", 0.75, 0.5, flag, 3.0,
                    amount, f"card-{txn}", event)  # fmt: skip


# PostgreSQL with the re-routed retries only (the fuller case; each backend run takes seconds);
# ``chunk``: the SQLite units table filled a few decision ids per write transaction
@pytest.mark.parametrize(
    ("ledger_url", "mixed", "chunk"),
    [("sqlite", False, None), ("sqlite", True, 37), ("postgresql", True, None)],
    indirect=["ledger_url"],
)
def test_cached_counts_equal_a_full_recount_as_decisions_arrive(
    ledger_url: str, mixed: bool, chunk: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunk is not None:
        monkeypatch.setattr("fraudgate.ledger.day_cache._UNITS_CHUNK", chunk)
    store = open_ledger(ledger_url)
    try:
        rows, labels = _rows()
        extra, extra_labels = _edge_rows(mixed)
        rows = sorted(rows + extra, key=lambda r: r.decided_at)
        first = [r for r in rows if r.decided_at < T0 + 12 * DAY]
        # a transaction whose retry falls on the next day: neither day may be stored alone
        first += [
            _decision("span-1", "spanning", T0 + 6 * DAY + 9, "v1", "served", "v1", False),
            _decision("span-2", "spanning", T0 + 7 * DAY + 9, "v1", "served", "v1", True),
        ]
        store.record_decisions(first)
        store.upsert_labels(labels[: len(labels) // 2], actor="test")
        _check(store)
        assert _cached_days(store) > 0
        # the rest: new days, and labels (read live, never cached)
        store.record_decisions(rows[len(first) :])
        store.upsert_labels(labels[len(labels) // 2 :] + extra_labels, actor="test")
        _check(store)
        # a retry, flagged, re-routed, on a later day, of a transaction of a cached day: the
        # transaction now spans two days and its old day's entry must go
        old = next(r for r in first if r.role == "served" and not r.is_fraud_decision)
        late = _decision("late-retry", old.transaction_id, T0 + 16 * DAY, "v2", "served", "v2",
                         True)  # fmt: skip
        store.record_decisions([late])
        _check(store)
        # late decisions of old days (new transactions with old event times), one on the
        # spanning transaction's second day
        store.record_decisions(
            [
                _decision("late-1", "late-txn", T0 + 2 * DAY + 7, "v1", "served", "v1", True),
                _decision("late-2", "late-txn", T0 + 2 * DAY + 7, "v1", "mirror", "v2", False),
                _decision("late-3", "late-txn-2", T0 + 7 * DAY + 60, "v2", "served", "v2", True),
                # a key seen before, now earlier (its first time moves); no key at all
                replace(old, request_id="late-4", transaction_id="late-txn-3",
                        event_time=T0 + 1 * DAY),
                replace(old, request_id="late-5", transaction_id="late-txn-4",
                        routing_key_hash=None),
            ]
        )  # fmt: skip
        store.upsert_labels([Label("late-txn", True, T0 + 3 * DAY, None, "manual")], actor="t")
        _check(store)
        # dropped (fraudgate report --recount): nothing kept, the same counts, stored anew
        assert store.clear_count_cache("exp") > 0 and _cached_days(store) == 0
        _check(store)
        assert _cached_days(store) > 0
    finally:
        store.close()


KEY = signature("experiment_counts", champion="v1", challenger="v2")
BOUNDS = DayBounds(T0 + 30 * DAY, None, None, MATURITY)


def _open_cache(store: LedgerStore) -> DayCache:
    """The experiment counts' cache as a call opens it now (at the current cut)."""
    with store._engine.connect() as conn:
        ids = decision_ids(conn, store.backend)
        cache = DayCache.open(conn, store.backend, "exp", KEY, BOUNDS, ids, min_decisions=0)
    assert cache is not None
    return cache


def test_a_call_does_not_store_over_a_newer_mark(tmp_path: Path) -> None:
    """Two calls at once: the one whose cut is older finds the mark moved and writes nothing,
    and a call whose cut is older than the mark reads no entry."""
    store = open_ledger(tmp_path / "ledger.db")
    try:
        rows, _ = _rows()
        store.record_decisions(rows[:400])
        stale = _open_cache(store)
        assert not stale.days
        store.record_decisions(rows[400:])
        store.experiment_counts("exp", "v1", "v2", as_of=BOUNDS.as_of, maturity_s=MATURITY,
                                cache=True)  # fmt: skip
        stored = _cached_days(store)
        assert stored > 0
        assert not stale.save(store._count_cache_write, {0: {"totals": [], "latency": []}})
        assert _cached_days(store) == stored
        with store._engine.connect() as conn:
            mark = conn.execute(
                sa.select(count_cache_marks.c.through_id).where(
                    count_cache_marks.c.signature == KEY
                )
            ).scalar_one()
        assert mark > stale.through_id
        again = _open_cache(store)
        assert again.through_id == mark and again.days
    finally:
        store.close()


@pytest.mark.parametrize(
    ("day_offset", "as_of", "maturity", "expected"),
    [
        (3, 10 * DAY, None, 0),  # wholly before T
        (9, 10 * DAY, None, None),  # ends at T: the margin keeps it out
        (3, 10 * DAY, 5 * DAY, 1),  # wholly matured
        (5, 10 * DAY, 5 * DAY, None),  # cut by the maturity
        (8, 10 * DAY, 2.5 * DAY, 0),  # wholly not matured
    ],
)
def test_a_day_is_cached_only_wholly_on_one_side(
    day_offset: int, as_of: float, maturity: float | None, expected: int | None
) -> None:
    day = int(T0 // DAY) + day_offset
    assert DayBounds(T0 + as_of, None, None, maturity).matured(day) == expected


def test_window_edges_keep_a_day_out() -> None:
    day = int(T0 // DAY) + 3
    bounds = DayBounds(T0 + 20 * DAY, T0 + 3 * DAY, T0 + 4 * DAY)
    assert bounds.matured(day) is None  # since and until on the day's edges
    assert DayBounds(T0 + 20 * DAY, T0 + 2 * DAY, T0 + 5 * DAY).matured(day) == 0


def test_postgresql_writers_hold_the_cut_lock_shared(pg_schema_url: str) -> None:
    """While a decision insert is in flight on PostgreSQL, the cut waits for it: no id below
    the cut can commit after it was read."""
    store = open_ledger(pg_schema_url)
    try:
        rows, _ = _rows()
        store.record_decisions(rows[:10])
        with store._engine.connect() as conn:  # an insert in flight, holding the lock shared
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({DECISIONS_CUT_LOCK})")
            cut: list[tuple[int | None, int | None]] = []

            def read_cut() -> None:
                cut.append(store._cut())

            reader = threading.Thread(target=read_cut)
            reader.start()
            reader.join(0.5)
            assert reader.is_alive() and not cut  # the cut waits for the insert
            conn.rollback()
        reader.join(10)
        assert cut and cut[0][1] is not None
    finally:
        store.close()


@pytest.mark.parametrize("ledger_url", ["sqlite", "postgresql"], indirect=True)
def test_two_calls_saving_at_once_store_once_and_neither_fails(ledger_url: str) -> None:
    """A report and a server's roll-up that opened the cache at the same cut save at once: the
    second waits for the first, finds the mark moved and writes nothing (on PostgreSQL, without
    the count cache's lock, both would see no mark and the second would fail on the first's
    keys)."""
    store = open_ledger(ledger_url)
    try:
        rows, _ = _rows()
        store.record_decisions(rows[:50])
        first, second = _open_cache(store), _open_cache(store)  # the same cut, no mark yet
        entry = {7: {"totals": [], "latency": []}}
        inside, saved = threading.Event(), []

        @contextmanager
        def slow_write() -> Iterator[sa.Connection]:
            with store._count_cache_write() as conn:
                yield conn  # the first call's rows are written, not yet committed
                inside.set()
                time.sleep(0.5)

        writer = threading.Thread(target=lambda: saved.append(first.save(slow_write, entry)))
        writer.start()
        assert inside.wait(10)
        assert not second.save(store._count_cache_write, entry)
        writer.join(10)
        assert saved == [True] and _cached_days(store) == 1
    finally:
        store.close()
