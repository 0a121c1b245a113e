"""The decision ledger: every scored request on record, later joined with the truth.

```python
store = open_ledger("sqlite:////work/.fraudgate/ledger.db")   # or postgresql+psycopg://...
journal = Journal(journal_dir, store.ledger_id())   # fraudgate.ledger.journal (the default)
journal.append([rows_batch(rows)])     # durable against a kill on return -> then send the 200
JournalShipper(store, journal_dir).ship_once()      # what `fraudgate ledger ship` runs
writer = DecisionWriter(store)         # acknowledge: commit
await writer.submit(decision)          # resolves once committed -> then send the 200
await writer.submit_rows([row])        # the same for plain tuples (DECISION_FIELDS order)
writer.record_mirror(shadow_decision)  # fire-and-forget, flushed on close
labels, errors = validate_label_rows(payload["labels"])
result = store.upsert_labels(labels, actor="feedback-api")
outcomes = store.labelled_outcomes(experiment="fraud-detection-ab-test")  # counts, not rows
```
"""

from fraudgate.ledger.feedback import LabelFileError, parse_labels_file, validate_label_rows
from fraudgate.ledger.records import (
    DECISION_FIELDS,
    AdminAction,
    ConfusionCounts,
    Decision,
    DecisionBatch,
    DecisionRow,
    Label,
    LabelChange,
    LabelResult,
    ModelOutcome,
    RowError,
    WeightChange,
    batch_rows,
    decision_row,
    rows_batch,
)
from fraudgate.ledger.schema import LATEST_VERSION, MIGRATIONS, SchemaTooNew
from fraudgate.ledger.store import LedgerStore, default_ledger_url, normalize_url, open_ledger
from fraudgate.ledger.writer import DecisionWriter, LedgerWriteError, WriterClosed, WriterStats

__all__ = [
    "DECISION_FIELDS",
    "LATEST_VERSION",
    "MIGRATIONS",
    "AdminAction",
    "ConfusionCounts",
    "Decision",
    "DecisionBatch",
    "DecisionRow",
    "DecisionWriter",
    "Label",
    "LabelChange",
    "LabelFileError",
    "LabelResult",
    "LedgerStore",
    "LedgerWriteError",
    "ModelOutcome",
    "RowError",
    "SchemaTooNew",
    "WeightChange",
    "WriterClosed",
    "WriterStats",
    "batch_rows",
    "decision_row",
    "default_ledger_url",
    "normalize_url",
    "open_ledger",
    "parse_labels_file",
    "rows_batch",
    "validate_label_rows",
]
