"""Decision batches: the journal line format stays byte for byte what older servers wrote (and
what existing journals and the quarantine hold), and a malformed line is refused by field."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from fraudgate.ledger import Decision, DecisionBatch, MirrorEntry, MirrorModel
from fraudgate.ledger.mirror import mirror_entry
from fraudgate.ledger.store import _value_rows

# Written by the dict-based batches before DecisionBatch was a class (same inputs as below).
JOURNAL_LINE = (
    b'[{"n":2,"request_id":["r0","r1"],"transaction_id":["t0","t1"],"decided_at":[1500000000.0,'
    b'1500000001.0],"experiment":["exp","exp"],"arm":["m1","m1"],"role":["served","served"],'
    b'"model_name":["m1","m1"],"model_version":["1","1"],"score":[0.25,0.25],"threshold":[0.5,'
    b'0.5],"is_fraud_decision":[false,false],"latency_ms":[0.1,0.1],"amount":[2.5,2.5],'
    b'"routing_key_hash":["k","k"],"mirror":[{"model":{"name":"m2","version":"3","uri":'
    b'"models:/x/2","tracking_uri":"file:///t","runtime":"native","threshold":0.3},"rows":[1],'
    b'"n_features":2,"x":"AACAPwAAAEA="}]},{"n":1,"request_id":["r0"],"transaction_id":["t0"],'
    b'"decided_at":[1500000000.0],"experiment":null,"arm":null,"role":"mirror","model_name":'
    b'["m1"],"model_version":["1"],"score":[0.25],"threshold":[0.5],"is_fraud_decision":[false],'
    b'"latency_ms":[0.1],"amount":[2.5],"routing_key_hash":["k"]}]\n'
)
SPEC = MirrorModel("m2", "3", "models:/x/2", "file:///t", "native", 0.3)
OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY


def _decisions(n: int) -> list[Decision]:
    return [
        Decision(
            f"r{i}",
            f"t{i}",
            1.5e9 + i,
            "exp",
            "m1",
            "served",
            "m1",
            "1",
            0.25,
            0.5,
            False,
            0.1,
            2.5,
            "k",
        )
        for i in range(n)  # fmt: skip
    ]


def _batches() -> list[DecisionBatch]:
    served = DecisionBatch.of(_decisions(2))
    served.mirror = [mirror_entry(SPEC, [1], np.array([[1.0, 2.0]]))]
    mirror = DecisionBatch.of(_decisions(1))
    mirror.experiment = mirror.arm = None  # shared by every row
    mirror.role = "mirror"
    return [served, mirror]


def test_the_journal_line_is_unchanged_and_reads_back() -> None:
    batches = _batches()
    assert orjson.dumps([b.to_json() for b in batches], option=OPTIONS) == JOURNAL_LINE
    read = [DecisionBatch.from_json(item) for item in orjson.loads(JOURNAL_LINE)]
    assert read[0].decisions() == _decisions(2)
    assert read[0].mirror == [MirrorEntry(SPEC, [1], 2, "AACAPwAAAEA=")]
    assert read[0].mirror_copies() == 1 and read[1].mirror_copies() == 0
    assert [d.role for d in read[1].decisions()] == ["mirror"]
    assert read[1].decisions()[0].experiment is None


def test_a_batch_without_mirror_copies_has_no_mirror_key() -> None:
    data = DecisionBatch.of(_decisions(1)).to_json()
    assert "mirror" not in data and data["n"] == 1
    assert DecisionBatch.of([]).decisions() == []


def test_value_rows_repeat_shared_values_and_name_a_short_column() -> None:
    batch = DecisionBatch.of(_decisions(3))
    batch.model_name = "shared"
    rows = _value_rows([batch])
    assert len(rows) == 3 and {row[6] for row in rows} == {"shared"}
    batch.score = [0.1, 0.2]
    with pytest.raises(ValueError, match=r"batch\.score: expected 3 values, received 2"):
        _value_rows([batch])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("n"), r"batch\.n: expected a row count, received None"),
        (lambda d: d.update(n=True), r"batch\.n: expected a row count"),
        (lambda d: d.update(n=-1), r"batch\.n: expected a row count"),
        (lambda d: d.pop("latency_ms"), r"batch\.latency_ms: missing"),
        (lambda d: d.update(score=[0.1]), r"batch\.score: expected 2 values, received 1"),
    ],
)
def test_a_malformed_batch_is_refused_naming_the_field(mutate, message) -> None:
    data = orjson.loads(JOURNAL_LINE)[0]
    mutate(data)
    with pytest.raises(ValueError, match=message):
        DecisionBatch.from_json(data)
    with pytest.raises(ValueError, match=r"batch\.n"):
        DecisionBatch.from_json(["not", "a", "batch"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.update(rows="all"), r"mirror\.rows: expected null or row indices"),
        (lambda e: e.update(n_features=0), r"mirror\.n_features: expected an int >= 1"),
        (lambda e: e.pop("x"), r"mirror\.x: expected a base64 string"),
        (lambda e: e["model"].pop("uri"), r"mirror\.model\.uri: expected a string"),
        (lambda e: e["model"].update(threshold="0.3"), r"mirror\.model\.threshold"),
    ],
)
def test_a_malformed_mirror_entry_is_dropped_and_reported_not_the_batch(mutate, message) -> None:
    data = orjson.loads(JOURNAL_LINE)[0]
    mutate(data["mirror"][0])
    with pytest.raises(ValueError, match=message):
        DecisionBatch.from_json(data)
    reported: list[str] = []
    batch = DecisionBatch.from_json(data, lambda entry, error: reported.append(str(error)))
    assert batch.n == 2 and list(batch.mirror) == [] and len(reported) == 1
