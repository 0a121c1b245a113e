"""The decision ledger: every scored request on record, later joined with the truth.

```python
store = open_ledger("sqlite:////work/.fraudgate/ledger.db")   # or postgresql+psycopg://...
journal = Journal(journal_dir, store.ledger_id())   # fraudgate.ledger.journal (the default)
journal.append([DecisionBatch.of(decisions)])  # durable against a kill on return -> send the 200
JournalShipper(store, journal_dir).ship_once()      # what `fraudgate ledger ship` runs
writer = DecisionWriter(store)         # acknowledge: commit
await writer.submit(decision)          # resolves once committed -> then send the 200
await writer.submit_batches([batch])   # the same for DecisionBatch columns (the server's)
writer.record_mirror(shadow_decision)  # fire-and-forget, flushed on close
labels, errors = validate_label_rows(payload["labels"])
result = store.upsert_labels(labels, actor="feedback-api")
outcomes = store.labelled_outcomes(experiment="fraud-detection-ab-test")  # counts, not rows
counts = store.experiment_counts("ab", "v1", "v2", as_of=t, maturity_s=30 * 86400)  # evaluation
```

The names below are imported on first use (PEP 562), so importing `fraudgate.ledger.records`
(what the server needs to build a batch) loads neither SQLAlchemy nor a database driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudgate.ledger.feedback import LabelFileError, parse_labels_file, validate_label_rows
    from fraudgate.ledger.records import (
        DECISION_FIELDS,
        AdminAction,
        ArmCounts,
        ConfusionCounts,
        DayCounts,
        Decision,
        DecisionBatch,
        ExperimentAction,
        ExperimentCounts,
        Label,
        LabelChange,
        LabelResult,
        MirrorEntry,
        MirrorModel,
        ModelOutcome,
        PairedDay,
        RolloutRecord,
        RowError,
        WeightChange,
    )
    from fraudgate.ledger.schema import LATEST_VERSION, MIGRATIONS, SchemaTooNew
    from fraudgate.ledger.store import (
        LedgerStore,
        default_ledger_url,
        normalize_url,
        open_ledger,
    )
    from fraudgate.ledger.writer import (
        DecisionWriter,
        LedgerWriteError,
        WriterClosed,
        WriterStats,
    )

_MODULES = {
    "feedback": ("LabelFileError", "parse_labels_file", "validate_label_rows"),
    "records": (
        "DECISION_FIELDS",
        "AdminAction",
        "ArmCounts",
        "ConfusionCounts",
        "DayCounts",
        "Decision",
        "DecisionBatch",
        "ExperimentAction",
        "ExperimentCounts",
        "Label",
        "LabelChange",
        "LabelResult",
        "MirrorEntry",
        "MirrorModel",
        "ModelOutcome",
        "PairedDay",
        "RolloutRecord",
        "RowError",
        "WeightChange",
    ),
    "schema": ("LATEST_VERSION", "MIGRATIONS", "SchemaTooNew"),
    "store": ("LedgerStore", "default_ledger_url", "normalize_url", "open_ledger"),
    "writer": ("DecisionWriter", "LedgerWriteError", "WriterClosed", "WriterStats"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "AdminAction",
    "ArmCounts",
    "ConfusionCounts",
    "DECISION_FIELDS",
    "DayCounts",
    "Decision",
    "DecisionBatch",
    "DecisionWriter",
    "ExperimentAction",
    "ExperimentCounts",
    "LATEST_VERSION",
    "Label",
    "LabelChange",
    "LabelFileError",
    "LabelResult",
    "LedgerStore",
    "LedgerWriteError",
    "MIGRATIONS",
    "MirrorEntry",
    "MirrorModel",
    "ModelOutcome",
    "PairedDay",
    "RolloutRecord",
    "RowError",
    "SchemaTooNew",
    "WeightChange",
    "WriterClosed",
    "WriterStats",
    "default_ledger_url",
    "normalize_url",
    "open_ledger",
    "parse_labels_file",
    "validate_label_rows",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
