"""Event time on decisions, known time and source on labels: the journal, the store, the feedback
validation and the migration that adds them to an existing ledger."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from fraudgate.ledger import Decision, DecisionBatch, Label, LedgerStore, open_ledger
from fraudgate.ledger.feedback import validate_label_rows
from fraudgate.ledger.schema import MIGRATIONS, schema_version

T = 1_700_000_000.0


def _decision(i: int, event_time: float | None = None) -> Decision:
    return Decision(
        f"r{i}", f"t{i}", T + i, "exp", "m1", "served", "m1", "1", 0.5, 0.5, True, 1.0, 9.0, "k",
        event_time,
    )  # fmt: skip


def test_a_journal_line_without_event_time_reads_as_the_decision_time() -> None:
    line = DecisionBatch.of([_decision(0), _decision(1)]).to_json()
    assert "event_time" not in line  # the journal line is byte-identical to before
    batch = DecisionBatch.from_json(orjson.loads(orjson.dumps(line)))
    assert batch.event_time is None
    assert [d.event_time for d in batch.decisions()] == [None, None]


def test_a_batch_carries_event_times_through_the_journal_into_the_store(
    store: LedgerStore,
) -> None:
    batch = DecisionBatch.of([_decision(0, T - 3600), _decision(1), _decision(2, T - 60)])
    assert batch.event_time == (T - 3600, None, T - 60)
    read = DecisionBatch.from_json(orjson.loads(orjson.dumps(batch.to_json())))
    with store.decision_sink() as sink:
        sink.write([read])
    stored = {d.transaction_id: d.event_time for d in store.decisions_for(["t0", "t1", "t2"])}
    assert stored == {"t0": T - 3600, "t1": None, "t2": T - 60}  # None: the decision time
    with store._engine.connect() as conn:  # the column itself holds the decision time
        rows = dict(conn.execute(sa.text("SELECT transaction_id, event_time FROM decisions")).all())
    assert rows["t1"] == T + 1


def test_a_shared_event_time_column_applies_to_every_row(store: LedgerStore) -> None:
    batch = DecisionBatch.of([_decision(0), _decision(1)])
    batch.event_time = T - 10.0  # what the server sets from the request parameter
    with store.decision_sink() as sink:
        sink.write([batch])
    assert {d.event_time for d in store.decisions_for(["t0", "t1"])} == {T - 10.0}


def test_labels_keep_their_source_and_a_source_change_is_an_update(store: LedgerStore) -> None:
    store.upsert_labels([Label("t0", True, T, 5.0, "investigation")], actor="a")
    assert store.labels_for(["t0"])["t0"].source == "investigation"
    result = store.upsert_labels([Label("t0", True, T, 5.0, "chargeback")], actor="a")
    assert result.updated == 1
    assert store.labels_for(["t0"])["t0"].source == "chargeback"
    store.upsert_labels([Label("t1", False, T)], actor="a")
    assert store.labels_for(["t1"])["t1"].source == "manual"


def test_feedback_accepts_known_at_and_a_source_and_names_bad_ones() -> None:
    rows = [
        {"transaction_id": "a", "is_fraud": 1, "label_time": T},  # an existing client
        {"transaction_id": "b", "is_fraud": 1, "known_at": "2023-11-14T22:13:20Z"},
        {"transaction_id": "c", "is_fraud": 0, "known_at": T, "label_time": T,
         "source": "Chargeback"},
        {"transaction_id": "d", "is_fraud": 0, "known_at": T + 5, "label_time": T},
        {"transaction_id": "e", "is_fraud": 0, "label_time": T, "source": "rumour"},
    ]  # fmt: skip
    good, errors = validate_label_rows(rows)
    assert [(g.transaction_id, g.known_at, g.source) for g in good] == [
        ("a", T, "manual"),
        ("b", T, "manual"),
        ("c", T, "chargeback"),
    ]
    assert [(e.row, e.field) for e in errors] == [(4, "known_at"), (5, "source")]
    assert "investigation, chargeback, manual" in errors[1].expected
    assert errors[1].received == "rumour" and "the same time as label_time" in errors[0].expected


def test_a_label_record_refuses_an_unknown_source() -> None:
    with pytest.raises(ValueError, match="Label.source: expected one of"):
        Label("t", True, T, source="rumour")


def test_migration_6_gives_old_decisions_their_decision_time(ledger_url: str) -> None:
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:  # a ledger as fraudgate left it before migration 6
        schema_version.create(conn)
        for step in MIGRATIONS[:5]:
            step.apply(conn)
            conn.execute(
                sa.insert(schema_version).values(
                    version=step.version, description=step.description, applied_at=0.0
                )
            )
        conn.execute(
            sa.text(
                "INSERT INTO decisions (request_id, transaction_id, decided_at, experiment, arm,"
                " role, model_name, model_version, score, threshold, is_fraud_decision,"
                " latency_ms) VALUES ('r', 't', 123.0, 'exp', 'm', 'served', 'm', '1', 0.1,"
                " 0.5, false, 1.0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO labels (transaction_id, is_fraud, label_time, received_at,"
                " updated_at, actor) VALUES ('t', true, 200.0, 0, 0, 'x')"
            )
        )
    engine.dispose()
    with open_ledger(ledger_url) as store:
        assert store.schema_version() == MIGRATIONS[-1].version
        with store._engine.connect() as conn:
            assert conn.execute(sa.text("SELECT event_time FROM decisions")).scalar_one() == 123.0
        assert store.labels_for(["t"])["t"].source == "manual"
        counts = store.experiment_counts("exp", "m", "x", as_of=300.0, maturity_s=0.0)
        assert counts.arm("m").counts.fn == 1
