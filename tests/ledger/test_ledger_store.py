"""LedgerStore on real SQLite and PostgreSQL: migrations, decisions, labels, counts, weights."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from fraudgate.ledger import (
    LATEST_VERSION,
    MIGRATIONS,
    ConfusionCounts,
    Decision,
    Label,
    LabelResult,
    SchemaTooNew,
    open_ledger,
)
from fraudgate.ledger import schema as ledger_schema


def decision(i: int, **overrides: object) -> Decision:
    fields: dict[str, object] = {
        "request_id": f"req-{i}",
        "transaction_id": f"tx-{i}",
        "decided_at": 1_700_000_000.0 + i,
        "experiment": "fraud-detection-ab-test",
        "arm": "fraud-v1-baseline",
        "role": "served",
        "model_name": "fraud-v1-baseline",
        "model_version": "1",
        "score": 0.25,
        "threshold": 0.5,
        "is_fraud_decision": False,
        "latency_ms": 1.5,
        "amount": 42.0,
        "routing_key_hash": "abc123",
    }
    fields.update(overrides)
    return Decision(**fields)  # type: ignore[arg-type]


# -- migrations ---------------------------------------------------------------------------------


def test_fresh_open_applies_all_migrations_and_reopen_applies_none(ledger_url: str) -> None:
    assert [m.version for m in MIGRATIONS] == sorted(m.version for m in MIGRATIONS)
    with open_ledger(ledger_url) as first:
        assert first.schema_version() == LATEST_VERSION
        first.record_decisions([decision(1)])
        indexes = {ix["name"] for ix in sa.inspect(first._engine).get_indexes("decisions")}
        assert {"ix_decisions_transaction_id", "ix_decisions_model_decided_at"} <= indexes
    with open_ledger(ledger_url) as again:
        assert again.migrate() == []  # idempotent
        assert again.schema_version() == LATEST_VERSION
        assert again.count_decisions() == 1  # data survives the re-open
        with again._engine.connect() as conn:
            versions = conn.execute(sa.select(ledger_schema.schema_version.c.version)).scalars()
            assert sorted(versions) == [m.version for m in MIGRATIONS]


def test_open_upgrades_an_older_schema_step_by_step(ledger_url: str) -> None:
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:  # a ledger left at version 1 by an older fraudgate
        ledger_schema.schema_version.create(conn)
        MIGRATIONS[0].apply(conn)
        conn.execute(
            sa.insert(ledger_schema.schema_version).values(
                version=1, description=MIGRATIONS[0].description, applied_at=time.time()
            )
        )
    assert "ix_decisions_transaction_id" not in {
        ix["name"] for ix in sa.inspect(engine).get_indexes("decisions")
    }
    engine.dispose()
    with open_ledger(ledger_url) as store:
        assert store.schema_version() == LATEST_VERSION
        indexes = {ix["name"] for ix in sa.inspect(store._engine).get_indexes("decisions")}
        assert "ix_decisions_transaction_id" in indexes


def test_schema_newer_than_code_is_refused(ledger_url: str) -> None:
    with open_ledger(ledger_url) as store, store._engine.begin() as conn:
        conn.execute(
            sa.insert(ledger_schema.schema_version).values(
                version=LATEST_VERSION + 1, description="from the future", applied_at=0.0
            )
        )
    with pytest.raises(SchemaTooNew, match="upgrade fraudgate"):
        open_ledger(ledger_url)


def test_concurrent_opens_by_separate_processes_migrate_once(ledger_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 3
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # Each process imports, says it is ready, waits for all the others, then opens at once.
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        from fraudgate.ledger import open_ledger
        barrier = pathlib.Path({str(barrier)!r})
        (barrier / sys.argv[1]).touch()
        while len(list(barrier.iterdir())) < {n}:
            time.sleep(0.002)
        store = open_ledger({ledger_url!r})
        print("ok", store.schema_version())
        store.close()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(i)], stdout=subprocess.PIPE, text=True)
        for i in range(n)
    ]
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * n, outputs
    assert all(out.strip() == f"ok {LATEST_VERSION}" for out in outputs), outputs
    with open_ledger(ledger_url) as store, store._engine.connect() as conn:
        versions = list(conn.execute(sa.select(ledger_schema.schema_version.c.version)).scalars())
    assert sorted(versions) == [m.version for m in MIGRATIONS]  # each step recorded once


# -- decisions ----------------------------------------------------------------------------------


def test_decisions_round_trip(store) -> None:  # type: ignore[no-untyped-def]
    served = decision(1)
    mirror = decision(
        1,
        role="mirror",
        model_name="fraud-v2-candidate",
        arm=None,
        experiment=None,
        decided_at=served.decided_at + 0.01,
        is_fraud_decision=True,
        amount=None,
        routing_key_hash=None,
    )
    other = decision(2)
    assert store.record_decisions([served, mirror, other]) == 3
    assert store.record_decisions([]) == 0
    assert store.count_decisions() == 3
    assert store.count_decisions(role="mirror") == 1
    assert store.decisions_for(["tx-1"]) == [served, mirror]
    assert store.decisions_for(["tx-1", "tx-2", "nope"]) == [served, mirror, other]
    assert store.decisions_for_requests(["req-2"]) == [other]
    assert store.decisions_for([]) == []


def test_decisions_for_many_ids_spans_chunks(store) -> None:  # type: ignore[no-untyped-def]
    store.record_decisions([decision(i) for i in range(1234)])
    found = store.decisions_for([f"tx-{i}" for i in range(0, 1234, 1)])
    assert len(found) == 1234
    assert [d.request_id for d in found] == [f"req-{i}" for i in range(1234)]


def test_invalid_role_is_rejected() -> None:
    with pytest.raises(ValueError, match="role"):
        decision(1, role="shadow")


# -- labels -------------------------------------------------------------------------------------


def test_labels_are_idempotent_audited_and_report_unknown_ids(store) -> None:  # type: ignore[no-untyped-def]
    store.record_decisions([decision(i) for i in range(3)])
    first = [
        Label("tx-0", True, 1_700_100_000.0, 42.0),
        Label("tx-1", False, 1_700_100_000.0),
        Label("tx-unknown", True, 1_700_100_001.0),
    ]
    assert store.upsert_labels(first, actor="bank-a", at=100.0) == LabelResult(
        inserted=3, updated=0, unchanged=0, unknown_transaction_ids=("tx-unknown",)
    )
    # Resending the same labels counts nothing twice and writes no audit.
    assert store.upsert_labels(first, actor="bank-a", at=101.0) == LabelResult(
        0, 0, 3, ("tx-unknown",)
    )
    assert store.label_history() == []
    assert store.count_labels() == 3

    # A changed label is an audited update; the old value is kept in the audit.
    changed = Label("tx-1", True, 1_700_200_000.0, 10.0)
    result = store.upsert_labels([changed, first[0]], actor="investigator", at=200.0)
    assert result == LabelResult(inserted=0, updated=1, unchanged=1, unknown_transaction_ids=())
    assert store.labels_for(["tx-1"]) == {"tx-1": changed}
    (change,) = store.label_history("tx-1")
    assert change.old == first[1] and change.new == changed
    assert change.actor == "investigator" and change.changed_at == 200.0

    # The decision arrives after its label (a slow replica): the stored label now joins.
    store.record_decisions([decision(99, transaction_id="tx-unknown", is_fraud_decision=True)])
    assert store.upsert_labels([first[2]], actor="bank-a") == LabelResult(0, 0, 1, ())
    served = {o.model_name: o.counts for o in store.labelled_outcomes()}
    assert served["fraud-v1-baseline"].tp == 1  # tx-unknown: flagged and fraud


def test_repeated_id_within_one_batch(store) -> None:  # type: ignore[no-untyped-def]
    a = Label("tx-a", False, 10.0)
    b = Label("tx-a", True, 11.0)
    result = store.upsert_labels([a, a, b], actor="x")
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert store.labels_for(["tx-a"]) == {"tx-a": b}
    (change,) = store.label_history("tx-a")
    assert (change.old, change.new) == (a, b)
    assert store.upsert_labels([b], actor="x") == LabelResult(0, 0, 1, ("tx-a",))


def test_the_label_audit_keeps_the_source(store) -> None:  # type: ignore[no-untyped-def]
    """An investigation overturned by a chargeback: the audit says which source said what, and
    a change of source alone is an audited change too."""
    alert = Label("tx-s", False, 10.0, 5.0, source="investigation")
    chargeback = Label("tx-s", True, 30.0, 5.0, source="chargeback")
    manual = Label("tx-s", True, 30.0, 5.0, source="manual")
    store.upsert_labels([alert], actor="desk")
    store.upsert_labels([chargeback], actor="bank")
    assert store.upsert_labels([manual], actor="analyst").updated == 1
    history = store.label_history("tx-s")
    assert [(c.old, c.new) for c in history] == [(alert, chargeback), (chargeback, manual)]
    assert [(c.old.source, c.new.source) for c in history] == [
        ("investigation", "chargeback"),
        ("chargeback", "manual"),
    ]


# -- confusion counts against a brute-force pandas computation ----------------------------------


def _brute_force(
    dec: pd.DataFrame, lab: pd.DataFrame, experiment=None, since=None, until=None
) -> dict[tuple[str, str, str], ConfusionCounts]:  # type: ignore[no-untyped-def]
    frame = dec
    if experiment is not None:
        frame = frame[frame.experiment == experiment]
    if since is not None:
        frame = frame[frame.decided_at >= since]
    if until is not None:
        frame = frame[frame.decided_at < until]
    frame = frame.sort_values("decided_at", kind="stable").drop_duplicates(
        ["model_name", "model_version", "role", "transaction_id"], keep="first"
    )
    joined = frame.merge(lab, on="transaction_id", how="left")
    out = {}
    for key, group in joined.groupby(["model_name", "model_version", "role"]):
        labelled = group[group.is_fraud.notna()]
        unlabelled = group[group.is_fraud.isna()]
        fraud = labelled.is_fraud.astype(bool)
        flagged = labelled.is_fraud_decision
        amount = labelled.amount.fillna(labelled.amount_label).fillna(0.0)
        cells = {
            "tp": fraud & flagged,
            "fp": ~fraud & flagged,
            "fn": fraud & ~flagged,
            "tn": ~fraud & ~flagged,
        }
        out[key] = ConfusionCounts(
            **{name: int(mask.sum()) for name, mask in cells.items()},
            **{f"{name}_amount": float(amount[mask].sum()) for name, mask in cells.items()},
            unlabelled=len(unlabelled),
            unlabelled_flagged=int(unlabelled.is_fraud_decision.sum()),
        )
    return out


def test_labelled_outcomes_match_brute_force(store) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    models = [("fraud-v1-baseline", "1"), ("fraud-v2-candidate", "3")]
    rows: list[Decision] = []
    t = 1_700_000_000.0
    for i in range(700):
        served = rng.random() < 0.8
        experiment = rng.choice(["fraud-detection-ab-test", "fraud-detection-ab-test", "other"])
        amount = None if rng.random() < 0.2 else round(rng.uniform(1, 500), 2)
        for model_index, (name, version) in enumerate(models):
            role = "served" if (model_index == 0) == served else "mirror"
            for _retry in range(2 if rng.random() < 0.05 else 1):  # client retries
                t += rng.uniform(0.001, 1.0)
                rows.append(
                    decision(
                        i,
                        request_id=f"req-{len(rows)}",
                        decided_at=t,
                        experiment=experiment,
                        arm=name if role == "served" else None,
                        role=role,
                        model_name=name,
                        model_version=version,
                        score=rng.random(),
                        is_fraud_decision=rng.random() < 0.3,
                        amount=amount,
                    )
                )
    labels = [
        Label(
            f"tx-{i}",
            rng.random() < 0.25,
            t + i,
            None if rng.random() < 0.5 else round(rng.uniform(1, 500), 2),
        )
        for i in range(700)
        if rng.random() < 0.7
    ]
    labels += [Label("tx-orphan", True, t, 5.0)]  # a label without decision changes nothing
    store.record_decisions(rows)
    store.upsert_labels(labels, actor="test")

    dec = pd.DataFrame([{f: getattr(d, f) for f in Decision.__slots__} for d in rows])
    lab = pd.DataFrame(
        {
            "transaction_id": [x.transaction_id for x in labels],
            "is_fraud": [x.is_fraud for x in labels],
            "amount_label": [x.amount for x in labels],
        }
    )
    middle = sorted(d.decided_at for d in rows)[len(rows) // 2]
    cases = [
        {},
        {"experiment": "fraud-detection-ab-test"},
        {"since": middle},
        {"until": middle},
        {"experiment": "other", "since": rows[100].decided_at, "until": middle},
        {"experiment": "absent"},
    ]
    for case in cases:
        expected = _brute_force(dec, lab, **case)
        got = {
            (o.model_name, o.model_version, o.role): o.counts
            for o in store.labelled_outcomes(**case)
        }
        assert got.keys() == expected.keys(), case
        for key in expected:
            g, e = got[key], expected[key]
            assert (g.tp, g.fp, g.fn, g.tn, g.unlabelled, g.unlabelled_flagged) == (
                e.tp,
                e.fp,
                e.fn,
                e.tn,
                e.unlabelled,
                e.unlabelled_flagged,
            ), (case, key)
            for field in ("tp_amount", "fp_amount", "fn_amount", "tn_amount"):
                assert getattr(g, field) == pytest.approx(getattr(e, field)), (case, key, field)
    total = sum((o.counts for o in store.labelled_outcomes()), ConfusionCounts())
    assert total.total == len(
        dec.drop_duplicates(["model_name", "model_version", "role", "transaction_id"])
    )


def test_confusion_counts_add() -> None:
    a = ConfusionCounts(tp=1, fp=2, fn=3, tn=4, unlabelled=5, unlabelled_flagged=1, tp_amount=1.5)
    b = ConfusionCounts(tp=10, tn=1, tp_amount=2.0)
    s = a + b
    assert (s.tp, s.fp, s.fn, s.tn, s.unlabelled, s.tp_amount) == (11, 2, 3, 5, 5, 3.5)
    assert s.labelled == 21 and s.total == 26


# -- experiment weight audit --------------------------------------------------------------------


def test_weight_changes_are_recorded_in_order(store) -> None:  # type: ignore[no-untyped-def]
    store.record_weight_change(
        "exp", {"fraud-v1-baseline": 80, "fraud-v2-candidate": 20}, "ops", 1.0
    )
    store.record_weight_change(
        "exp", {"fraud-v1-baseline": 50, "fraud-v2-candidate": 50}, "ana", 2.0
    )
    store.record_weight_change("other", {"a": 1}, "ops", 1.5)
    history = store.weight_history("exp")
    assert [(w.actor, w.at, w.new["fraud-v2-candidate"]) for w in history] == [
        ("ops", 1.0, 20.0),
        ("ana", 2.0, 50.0),
    ]
    assert store.weight_history("nope") == []
    with pytest.raises(ValueError, match="weights"):
        store.record_weight_change("exp", {"a": -1}, "ops")


def test_a_weight_change_carries_the_weights_before_it(store) -> None:  # type: ignore[no-untyped-def]
    first = store.record_weight_change("exp", {"a": 80, "b": 20}, "ops", 1.0)
    second = store.record_weight_change("exp", {"a": 50, "b": 50}, "ana", 2.0)
    early = store.record_weight_change("exp", {"a": 90, "b": 10}, "late-clock", 0.5)
    assert (first.old, first.new, first.generation) == ({}, {"a": 80.0, "b": 20.0}, None)
    assert second.old == {"a": 80, "b": 20} and early.old == {}  # by time, as in the history
    history = store.weight_history("exp")
    assert [(c.actor, c.old, c.new) for c in history] == [
        ("late-clock", {}, {"a": 90, "b": 10}),
        ("ops", {"a": 90, "b": 10}, {"a": 80, "b": 20}),
        ("ana", {"a": 80, "b": 20}, {"a": 50, "b": 50}),
    ]
    assert history[-1] == second
    view = second.to_json()
    assert view == {"at": "1970-01-01T00:00:02Z", "actor": "ana", "old": {"a": 80, "b": 20},
                    "new": {"a": 50, "b": 50}}  # fmt: skip
    assert all(type(w) is int for w in view["new"].values())  # whole floats shown as ints


@pytest.mark.parametrize(
    ("suffix", "kwargs", "expected"),
    [("", {}, 1), ("?synchronous=FULL", {}, 2), ("", {"sqlite_synchronous": "full"}, 2)],
)
def test_sqlite_durability_level(tmp_path, suffix, kwargs, expected) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'l.db'}{suffix}"
    with open_ledger(url, **kwargs) as store, store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == expected  # 1=NORMAL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        open_ledger(tmp_path / "x.db", sqlite_synchronous="SOMETIMES")
