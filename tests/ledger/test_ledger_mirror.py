"""Mirror copies journaled by a server and scored by the shipper, against a real MLflow registry
and real SQLite / PostgreSQL stores: the scores are the model's, the copies carry the served
decision's ids, and a copy that cannot be scored never holds back the served decisions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fraudgate.ledger import Decision, DecisionBatch, LedgerStore, MirrorModel
from fraudgate.ledger.journal import Journal, JournalShipper
from fraudgate.ledger.mirror import mirror_entry, model_spec


def _served(n: int, prefix: str = "") -> list[Decision]:
    return [
        Decision(
            f"{prefix}req{i}",
            f"{prefix}tx{i}",
            1.7e9 + i,
            "exp",
            "fraud-v1-baseline",
            "served",
            "fraud-v1-baseline",
            "1",
            0.1,
            0.5,
            False,
            0.2,
            10.0 + i,
            f"key{i}",
        )
        for i in range(n)  # fmt: skip
    ]


def _spec(trained_registry, runtime: str = "native", uri: str | None = None) -> MirrorModel:
    """The spec a server writes for its deployed challenger (serving version 3)."""
    deployed = SimpleNamespace(
        name="fraud-v2-candidate",
        version="3",
        runtime_name=runtime,
        threshold=0.3,
        model=SimpleNamespace(
            uri="models:/fraud-detection@challenger", registered_name="fraud-detection", version="2"
        ),
    )
    spec = model_spec(deployed, trained_registry.tracking_uri)
    if uri is not None:
        spec = replace(spec, uri=uri)
    return spec


@pytest.mark.parametrize("rows", [None, [0, 2, 3]], ids=["every-row", "some-rows"])
def test_shipper_scores_the_journaled_copies_with_the_mirror_model(
    store: LedgerStore, tmp_path: Path, trained_registry, rows
):
    x = trained_registry.sample[:5]
    batch = DecisionBatch.of(_served(5))
    copied = list(range(5)) if rows is None else rows
    batch.mirror = [mirror_entry(_spec(trained_registry), rows, x[copied])]
    journal = Journal(tmp_path / "journal", store.ledger_id())
    journal.append([batch])
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        assert shipper.ship_once() == 5 + len(copied)
        assert shipper.ship_once() == 0  # once
    finally:
        shipper.close()
        journal.close()
    mirror = sorted(
        (d for d in store.decisions_for([f"tx{i}" for i in range(5)]) if d.role == "mirror"),
        key=lambda d: d.request_id,
    )
    expected = trained_registry.challenger.predict(x[copied])
    assert [d.request_id for d in mirror] == [f"req{i}" for i in copied]
    for d, i, score in zip(mirror, copied, expected, strict=True):
        assert (d.transaction_id, d.amount, d.routing_key_hash) == (f"tx{i}", 10.0 + i, f"key{i}")
        assert (d.experiment, d.arm) == ("exp", "fraud-v1-baseline")  # the served request's arm
        assert (d.model_name, d.model_version, d.threshold) == ("fraud-v2-candidate", "3", 0.3)
        assert d.score == pytest.approx(score, abs=1e-6)
        assert d.is_fraud_decision == (np.float32(score) >= np.float32(0.3))
        assert d.latency_ms > 0


def test_a_copy_that_cannot_be_scored_never_holds_back_the_served_decisions(
    store: LedgerStore, tmp_path: Path, trained_registry
):
    x = trained_registry.sample[:4]
    journal = Journal(tmp_path / "journal", store.ledger_id())
    broken = DecisionBatch.of(_served(4))
    broken.mirror = [mirror_entry(_spec(trained_registry, uri="models:/no-such-model/7"), None, x)]
    truncated = DecisionBatch.of(_served(4, prefix="b"))
    entry = mirror_entry(_spec(trained_registry), None, x)
    entry.x = entry.x[:40]  # fewer feature rows than copies
    truncated.mirror = [entry]
    journal.append([broken])
    journal.append([truncated])
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        assert shipper.ship_once() == 8  # the served decisions, nothing else
        assert shipper.mirror.failed == 8 and shipper.bad_lines == 0
    finally:
        shipper.close()
        journal.close()
    assert store.count_decisions(role="served") == 8
    assert store.count_decisions(role="mirror") == 0
