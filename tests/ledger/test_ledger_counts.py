"""The evaluation's counts come out of the database by GROUP BY, on SQLite and PostgreSQL, and
equal the same counts computed in Python from the rows, with the as-of and maturity rules."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from fraudgate.analysis.counts import (
    LATENCY_BUCKETS,
    ConfusionCounts,
    LatencyHistogram,
    PairedCounts,
    PairedTable,
    latency_bucket_edges,
)
from fraudgate.ledger import Decision, Label, LedgerStore, open_ledger
from fraudgate.ledger.counting import SEQUENTIAL, ExperimentQueries, Parallelism
from fraudgate.ledger.records import ArmCounts, DayCounts, ExperimentCounts
from fraudgate.ledger.schema import decisions

DAY = 86_400.0
T0 = 1_700_006_400.0  # a UTC midnight
AS_OF = T0 + 20 * DAY
MATURITY = 5 * DAY


def _rows(seed: int = 7) -> tuple[list[Decision], list[Label]]:
    """An 80/20 experiment with a 100% shadow, retries, late labels, another experiment and
    decisions after the as-of time; amounts and latencies exact in binary (sums compare ==)."""
    rng = random.Random(seed)
    edges = [latency_bucket_edges(i)[0] for i in range(1, LATENCY_BUCKETS)]
    out: list[Decision] = []
    labels: list[Label] = []
    for i in range(400):
        txn = f"t{i}"
        arm = "v1" if rng.random() < 0.8 else "v2"
        other = "v2" if arm == "v1" else "v1"
        event = T0 + rng.uniform(0, 24 * DAY)  # some after AS_OF
        decided = event + rng.choice([0.0, 1.0, 30.0])
        amount = None if rng.random() < 0.1 else float(rng.randint(1, 500)) / 4
        fraud = rng.random() < 0.15
        latency = rng.choice(edges) if rng.random() < 0.3 else rng.randint(1, 400) / 8
        experiment = "exp" if rng.random() < 0.95 else "other"
        retries = 2 if rng.random() < 0.05 else 1
        for model, role in ((arm, "served"), (other, "mirror")):
            p = 0.7 if fraud else 0.05
            if model == "v2":
                p = 0.85 if fraud else 0.07
            flagged = rng.random() < p
            for r in range(retries):
                out.append(
                    Decision(
                        f"r{i}-{r}",
                        txn,
                        decided + r,
                        experiment,
                        arm,
                        role,
                        model,
                        "1",
                        0.5,
                        0.5,
                        flagged if r == 0 else rng.random() < 0.5,
                        latency,
                        amount,
                        f"card{i % 97}",
                        None if rng.random() < 0.2 else event,
                    )  # fmt: skip
                )
        if rng.random() < 0.6:
            known = decided + rng.choice([1, 3, 10, 30]) * DAY * rng.random()
            label_amount = float(rng.randint(1, 100)) if rng.random() < 0.5 else None
            source = rng.choice(["investigation", "chargeback", "manual"])
            labels.append(Label(txn, fraud, known, label_amount, source))
    return out, labels


def _reference(rows: list[Decision], labels: list[Label], t: float, maturity: float):
    """The counts in Python, straight from the rules (the SQL's specification)."""
    known = {label.transaction_id: label for label in labels if label.label_time <= t}

    def event(r: Decision) -> float:
        return r.decided_at if r.event_time is None else r.event_time

    rows = [r for r in rows if r.experiment == "exp" and event(r) <= t]

    def state(txn: str, event_time: float) -> str:
        if txn in known:
            return "fraud" if known[txn].is_fraud else "legit"
        return "legit" if event_time + maturity <= t else "pending"

    def amount_of(amounts: list[float | None], txn: str) -> float:
        given = [a for a in amounts if a is not None]
        if given:
            return max(given)
        label = known.get(txn)
        return label.amount if label is not None and label.amount is not None else 0.0

    per_arm: dict[tuple[str, str], list[Decision]] = defaultdict(list)
    for r in rows:
        if r.role == "served":
            per_arm[(r.arm, r.transaction_id)].append(r)
    cells: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (arm, txn), group in per_arm.items():
        flagged = any(r.is_fraud_decision for r in group)
        ev = min(event(r) for r in group)
        amount = amount_of([r.amount for r in group], txn)
        s = state(txn, ev)
        name = {
            ("fraud", True): "tp", ("fraud", False): "fn",
            ("legit", True): "fp", ("legit", False): "tn",
        }.get((s, flagged))  # fmt: skip
        box = cells[(arm, int(ev // DAY))]
        if name is None:
            box["unlabelled"] += 1
            box["unlabelled_flagged"] += flagged
        else:
            box[name] += 1
            box[f"{name}_amount"] += amount
            box[f"{name}_amount_sq"] += amount * amount
    arms = {}
    for arm in sorted({arm for arm, _ in cells}):
        days = tuple(
            DayCounts(day, ConfusionCounts(**{k: type(getattr(ConfusionCounts(), k))(v)
                                              for k, v in box.items()}))
            for (a, day), box in sorted(cells.items())
            if a == arm
        )  # fmt: skip
        served = [r for r in rows if r.role == "served" and r.arm == arm]
        groups = [g for (a, _), g in per_arm.items() if a == arm]
        total = ConfusionCounts()
        for item in days:
            total = total + item.counts
        arms[arm] = ArmCounts(
            arm,
            total,
            len({r.routing_key_hash for r in served}),
            LatencyHistogram.from_values(r.latency_ms for r in served),
            days,
            min(min(event(r) for r in g) for g in groups),
            max(min(event(r) for r in g) for g in groups),
        )
    by_txn: dict[str, list[Decision]] = defaultdict(list)
    for r in rows:
        if r.model_name in ("v1", "v2"):
            by_txn[r.transaction_id].append(r)
    paired: dict[int, dict[str, list[tuple[bool, bool, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for txn, group in by_txn.items():
        a = [r for r in group if r.model_name == "v1"]
        b = [r for r in group if r.model_name == "v2"]
        if not a or not b:
            continue
        ev = min(event(r) for r in group)
        amount = amount_of([r.amount for r in group], txn)
        flags = (any(r.is_fraud_decision for r in a), any(r.is_fraud_decision for r in b))
        paired[int(ev // DAY)][state(txn, ev)].append((*flags, amount))
    paired_days = {}
    for day, states in paired.items():
        tables = {}
        for s in ("fraud", "legit", "pending"):
            items = states.get(s, [])
            tables[s] = PairedTable.from_flags(
                [x[0] for x in items], [x[1] for x in items], [x[2] for x in items]
            )
        paired_days[day] = PairedCounts(**tables)
    return arms, paired_days


def _insert(store: LedgerStore) -> tuple[list[Decision], list[Label]]:
    rows, labels = _rows()
    store.record_decisions(rows)
    store.upsert_labels(labels, actor="test")
    return rows, labels


@pytest.mark.parametrize(
    ("as_of", "maturity"), [(AS_OF, MATURITY), (AS_OF, 0.0), (T0 + 8 * DAY, 3 * DAY)]
)
def test_sql_counts_equal_the_python_counts(
    store: LedgerStore, as_of: float, maturity: float
) -> None:
    rows, labels = _insert(store)
    got = store.experiment_counts("exp", "v1", "v2", as_of=as_of, maturity_s=maturity)
    arms, paired_days = _reference(rows, labels, as_of, maturity)
    assert {arm.arm for arm in got.arms} == set(arms)
    for arm in got.arms:
        want = arms[arm.arm]
        assert replace(arm, latency=want.latency) == want
        assert arm.latency.buckets == want.latency.buckets
        assert arm.latency.max_ms == want.latency.max_ms
        assert arm.latency.sum_ms == pytest.approx(want.latency.sum_ms, rel=1e-12)  # sum order
    assert {p.day: p.counts for p in got.paired_by_day} == paired_days
    total = PairedCounts()
    for counts in paired_days.values():
        total = total + counts
    assert got.paired == total
    assert got.paired.pending.total > 0 or maturity == 0


def _edge_rows(mixed: bool) -> tuple[list[Decision], list[Label]]:
    """Cases one grouped pass over every decision of a transaction must keep apart: a
    transaction with only a mirror decision (paired: not both), served without a mirror, a
    third model's copy (not in the pair), NULL amounts, a label without decisions; ``mixed``:
    a retry served by the other arm (one count per arm: the per-(transaction, arm) grouping)."""

    def d(req: str, txn: str, at: float, arm: str, role: str, model: str, flag: bool,
          amount: float | None) -> Decision:  # fmt: skip
        return Decision(req, txn, at, "exp", arm, role, model, "1", 0.5, 0.5, flag, 2.0,
                        amount, f"card-{txn}")  # fmt: skip

    rows = [
        d("e1", "mirror-only", T0 + DAY, "v1", "mirror", "v2", True, 4.0),
        d("e2", "served-only", T0 + DAY, "v2", "served", "v2", True, None),
        d("e3", "third", T0 + 2 * DAY, "v1", "served", "v1", False, 8.0),
        d("e4", "third", T0 + 2 * DAY, "v1", "mirror", "v3", True, 16.0),
        d("e5", "no-amount", T0 + 3 * DAY, "v1", "served", "v1", True, None),
        d("e6", "no-amount", T0 + 3 * DAY, "v1", "mirror", "v2", False, None),
    ]
    if mixed:
        rows += [
            d("e7", "rerouted", T0 + 4 * DAY, "v1", "served", "v1", True, 2.0),
            d("e8", "rerouted", T0 + 4 * DAY + 60, "v2", "served", "v2", False, 6.0),
            d("e9", "rerouted", T0 + 4 * DAY, "v1", "mirror", "v2", False, 2.0),
        ]
    labels = [
        Label("served-only", True, T0 + 2 * DAY, 5.0, "investigation"),
        Label("no-amount", False, T0 + 4 * DAY, None, "manual"),
        Label("rerouted", True, T0 + 5 * DAY, 3.0, "chargeback"),
        Label("never-decided", True, T0 + DAY, 9.0, "manual"),
    ]
    return rows, labels


@pytest.mark.parametrize("mixed", [False, True])
def test_edge_transactions_count_as_the_python_counts(store: LedgerStore, mixed: bool) -> None:
    rows, labels = _rows()
    extra, extra_labels = _edge_rows(mixed)
    rows, labels = rows + extra, labels + extra_labels
    store.record_decisions(rows)
    store.upsert_labels(labels, actor="test")
    got = store.experiment_counts("exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY)
    arms, paired_days = _reference(rows, labels, AS_OF, MATURITY)
    assert {arm.arm for arm in got.arms} == set(arms)
    for arm in got.arms:
        assert replace(arm, latency=arms[arm.arm].latency) == arms[arm.arm]
        assert arm.latency.buckets == arms[arm.arm].latency.buckets
    assert {p.day: p.counts for p in got.paired_by_day} == paired_days


def test_a_null_arm_counts_as_the_empty_arm(store: LedgerStore) -> None:
    """Served decisions without an arm count under "" (each transaction once); decisions
    without a routing key are no randomisation unit."""
    rows = [
        Decision("n1", "t1", T0, "exp", None, "served", "v1", "1", 0.9, 0.5, True, 1.0, 10.0),
        Decision("n2", "t1", T0 + 1, "exp", None, "served", "v1", "1", 0.1, 0.5, False, 1.0),
        Decision("n3", "t2", T0, "exp", None, "served", "v1", "1", 0.1, 0.5, False, 1.0, 3.0, "k"),
        Decision("n4", "t3", T0, "exp", "v2", "served", "v2", "1", 0.1, 0.5, False, 1.0, 2.0),
    ]
    store.record_decisions(rows)
    store.upsert_labels([Label("t1", True, T0 + DAY, source="investigation")], actor="test")
    got = store.experiment_counts("exp", "v1", "v2", as_of=T0 + 2 * DAY, maturity_s=DAY)
    assert [arm.arm for arm in got.arms] == ["", "v2"]
    empty = got.arm("").counts
    assert (empty.tp, empty.tn, empty.tp_amount, empty.tn_amount) == (1, 1, 10.0, 3.0)
    assert got.arm("").latency.count == 3 and got.arm("v2").counts.tn == 1
    assert got.arm("").units == 1  # routing keys: NULL twice (not a unit) and "k"


def test_counts_of_two_windows_add_up_to_the_whole(store: LedgerStore) -> None:
    _insert(store)
    cut = T0 + 9 * DAY
    whole = store.experiment_counts("exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY)
    early = store.experiment_counts("exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY, until=cut)
    late = store.experiment_counts("exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY, since=cut)
    merged = early + late
    assert merged.paired == whole.paired and merged.paired_by_day == whole.paired_by_day
    for arm in whole.arms:
        got = merged.arm(arm.arm)
        assert got.counts == arm.counts and got.by_day == arm.by_day
        assert got.latency.buckets == arm.latency.buckets
        assert got.latency.sum_ms == pytest.approx(arm.latency.sum_ms, rel=1e-12)
        assert got.units >= arm.units  # a card seen in both windows counts in each


def test_a_label_known_after_the_as_of_time_does_not_count(store: LedgerStore) -> None:
    d = Decision("r", "t", T0, "exp", "v1", "served", "v1", "1", 0.9, 0.5, True, 1.0, 10.0, "k")
    store.record_decisions([d])
    store.upsert_labels([Label("t", True, T0 + 2 * DAY, source="investigation")], actor="test")
    before = store.experiment_counts("exp", "v1", "v2", as_of=T0 + DAY, maturity_s=30 * DAY)
    after = store.experiment_counts("exp", "v1", "v2", as_of=T0 + 3 * DAY, maturity_s=30 * DAY)
    assert before.arm("v1").counts.unlabelled_flagged == 1 and before.arm("v1").counts.tp == 0
    assert after.arm("v1").counts.tp == 1 and after.arm("v1").counts.tp_amount == 10.0
    matured = store.experiment_counts("exp", "v1", "v2", as_of=T0 + 31 * DAY, maturity_s=30 * DAY)
    assert matured.arm("v1").counts.tp == 1


def test_an_unlabelled_transaction_is_legitimate_only_once_matured(store: LedgerStore) -> None:
    d = Decision("r", "t", T0, "exp", "v1", "served", "v1", "1", 0.1, 0.5, False, 1.0, 5.0, "k")
    store.record_decisions([d])
    young = store.experiment_counts("exp", "v1", "v2", as_of=T0 + 29 * DAY, maturity_s=30 * DAY)
    old = store.experiment_counts("exp", "v1", "v2", as_of=T0 + 30 * DAY, maturity_s=30 * DAY)
    assert young.arm("v1").counts.unlabelled == 1 and young.arm("v1").counts.tn == 0
    assert old.arm("v1").counts.tn == 1 and old.arm("v1").counts.unlabelled == 0


def test_experiment_counts_of_different_as_of_times_do_not_add() -> None:
    a = ExperimentCounts("exp", "v1", "v2", 1.0, 0.0)
    b = ExperimentCounts("exp", "v1", "v2", 2.0, 0.0)
    with pytest.raises(ValueError, match="as_of"):
        a + b


def _null_arm_rows() -> list[Decision]:
    """Served decisions without an arm (the empty arm), one retried."""
    return [
        Decision("n1", "n-t1", T0, "exp", None, "served", "v1", "1", 0.9, 0.5, True, 1.0, 10.0),
        Decision("n2", "n-t1", T0 + 1, "exp", None, "served", "v1", "1", 0.1, 0.5, False, 1.0),
        Decision("n3", "n-t2", T0, "exp", None, "served", "v2", "1", 0.1, 0.5, False, 1.0, 3.0),
    ]


@pytest.mark.parametrize("mixed", [False, True])
def test_parallel_counts_equal_the_sequential_counts(tmp_path: Path, mixed: bool) -> None:
    """SQLite's grouped pass split into transaction-id ranges on two connections counts
    exactly as one connection: with 2 and 3 ranges, and with a cut at every transaction (so
    cuts fall on retried transactions' runs of decisions); ``mixed``: re-routed retries and
    NULL arms (the per-(transaction, arm) fallback, split as well)."""
    store = open_ledger(tmp_path / "ledger.db")
    try:
        rows, labels = _rows()
        extra, extra_labels = _edge_rows(mixed)
        rows, labels = rows + extra + (_null_arm_rows() if mixed else []), labels + extra_labels
        store.record_decisions(rows)
        store.upsert_labels(labels, actor="test")
        sequential = store.experiment_counts(
            "exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY, parallelism=SEQUENTIAL
        )
        assert sequential.arms and sequential.paired.fraud.total > 0
        assert ("" in {arm.arm for arm in sequential.arms}) == mixed
        d = decisions
        where = [d.c.experiment == "exp", d.c.event_time <= AS_OF]
        runs = Counter(
            r.transaction_id
            for r in rows
            if r.experiment == "exp"
            and (r.decided_at if r.event_time is None else r.event_time) <= AS_OF
        )
        two = Parallelism(workers=2, min_decisions=0, parts=2)
        got = store.experiment_counts(
            "exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY, parallelism=two
        )
        assert got == sequential
        # quantiles of decisions: one a decision cuts at every transaction
        for parts, ranges in ((2, 2), (3, 3), (runs.total(), len(runs))):
            parallelism = Parallelism(workers=2, min_decisions=0, parts=parts)
            with store._engine.connect() as conn:
                queries = ExperimentQueries(
                    conn, "sqlite", where, AS_OF, MATURITY,
                    connect=store._engine.connect, parallelism=parallelism,
                )  # fmt: skip
                assert queries.counts("v1", "v2") == (
                    sequential.arms,
                    sequential.paired,
                    sequential.paired_by_day,
                )
            assert len(queries.ranges) == ranges
        # the last split cut at every transaction: retried ones' runs of 3 or 4 decisions too
        cuts = {low for low, _ in queries.ranges if low is not None}
        assert cuts == set(runs) - {min(runs)}
        assert any(runs[cut] >= 3 for cut in cuts)
    finally:
        store.close()


def test_postgresql_splits_the_grouped_pass_only_under_the_cache_cut(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the statements spread over connections only with the count cache's cut
    (its ids all committed), and count exactly as one connection, first and read back."""
    ranges: list[int] = []
    counts = ExperimentQueries.counts

    def spy(self: ExperimentQueries, champion: str, challenger: str):  # type: ignore[no-untyped-def]
        result = counts(self, champion, challenger)
        ranges.append(len(self.ranges))
        return result

    monkeypatch.setattr(ExperimentQueries, "counts", spy)
    store = open_ledger(pg_schema_url)
    try:
        rows, labels = _rows()
        extra, extra_labels = _edge_rows(True)
        store.record_decisions(rows + extra + _null_arm_rows())
        store.upsert_labels(labels + extra_labels, actor="test")
        three = Parallelism(workers=2, min_decisions=0, parts=3)

        def count(parallelism: Parallelism, cache: bool) -> ExperimentCounts:
            return store.experiment_counts(
                "exp", "v1", "v2", as_of=AS_OF, maturity_s=MATURITY,
                parallelism=parallelism, cache=cache,
            )  # fmt: skip

        sequential = count(SEQUENTIAL, False)
        assert count(three, False) == sequential  # no cut: one connection
        first, back = {}, {}
        for parallelism in (SEQUENTIAL, three):
            store.clear_count_cache("exp")
            first[parallelism] = count(parallelism, True)  # the cut: days stored
            back[parallelism] = count(parallelism, True)  # and read back
        assert ranges == [1, 1, 1, 1, 3, 3]
        assert first[three] == first[SEQUENTIAL] == sequential
        assert back[three] == back[SEQUENTIAL]
        # read back, the latency sums add in another order (rounding only)
        for cached, direct in zip(back[three].arms, sequential.arms, strict=True):
            assert cached.latency.sum_ms == pytest.approx(direct.latency.sum_ms, rel=1e-12)
            assert replace(cached, latency=direct.latency) == direct
    finally:
        store.close()


def test_a_small_ledger_keeps_one_connection(tmp_path: Path) -> None:
    """Below ``min_decisions`` the statements run on the caller's connection (one range)."""
    store = open_ledger(tmp_path / "ledger.db")
    try:
        rows, _ = _rows()
        store.record_decisions(rows)
        d = decisions
        where = [d.c.experiment == "exp", d.c.event_time <= AS_OF]
        for minimum, ranges in ((len(rows) + 1, 1), (len(rows) // 2, 2)):
            parallelism = Parallelism(workers=2, min_decisions=minimum)
            with store._engine.connect() as conn:
                queries = ExperimentQueries(
                    conn, "sqlite", where, AS_OF, MATURITY,
                    connect=store._engine.connect, parallelism=parallelism,
                )  # fmt: skip
                queries.counts("v1", "v2")
            assert len(queries.ranges) == ranges
    finally:
        store.close()


@pytest.mark.parametrize(
    ("field", "value"), [("workers", 0), ("min_decisions", -1), ("parts", 1.5), ("workers", True)]
)
def test_parallelism_names_a_bad_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{field}: expected an integer >= .*received"):
        Parallelism(**{field: value})  # type: ignore[arg-type]
