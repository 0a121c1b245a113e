"""``POST /feedback``: late fraud labels into the ledger, answered with a small summary.

The answer counts the labels inserted, updated and unchanged, and lists at most
``FEEDBACK_LISTED`` of the unknown transaction ids and of the rejected fields (plus their counts),
so it stays small whatever the batch. Batches are bounded by ``ledger.feedback_max_labels`` and
validated off the event loop when large: a big batch never stalls inference. With the journal,
the labels wait (bounded) until the shipper has moved what this server acknowledged so far, so
decisions it answered are not reported "unknown".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from fraudgate.protocol.errors import InvalidInput, PayloadTooLarge, Unavailable
from fraudgate.protocol.limits import check_actor

FEEDBACK_ACTOR = "feedback-api"
FEEDBACK_LISTED = 100  # unknown ids and rejected fields listed in a feedback answer (+ counts)
_INLINE_LABELS = 64  # feedback batches above this are validated off the event-loop thread


class FeedbackHandler:
    """Validates and stores label batches; ``store`` None: no ledger (503)."""

    def __init__(self, store: Any, journal: Any, max_labels: int) -> None:
        self.store = store  # fraudgate.ledger.LedgerStore | None
        self.journal = journal  # fraudgate.ledger.journal.Journal | None
        self.max_labels = max_labels
        self.received: dict[str, int] = {}  # labels stored, per source (the metrics)

    async def feedback(self, body: Mapping[str, Any]) -> dict[str, Any]:
        store = self._ledger()
        from fraudgate.ledger import validate_label_rows

        rows = body.get("labels")
        if not isinstance(rows, list):
            raise InvalidInput(
                "labels: expected a list of {transaction_id, is_fraud, label_time, amount?}, "
                f"received {type(rows).__name__ if rows is not None else 'nothing'}"
            )
        if len(rows) > self.max_labels:
            raise PayloadTooLarge(
                f"labels: expected at most {self.max_labels} labels per request "
                f"(ledger.feedback_max_labels), received {len(rows)}; send them in batches"
            )
        actor = check_actor(body.get("actor", FEEDBACK_ACTOR))
        if len(rows) > _INLINE_LABELS:
            labels, errors = await asyncio.to_thread(validate_label_rows, rows)
        else:
            labels, errors = validate_label_rows(rows)
        inserted = updated = unchanged = 0
        unknown: tuple[str, ...] = ()
        if labels:
            await self._wait_shipped()  # so decisions this server acknowledged are not "unknown"
            try:
                result = await asyncio.to_thread(store.upsert_labels, labels, actor)
            except InvalidInput:
                raise
            except Exception as exc:
                raise Unavailable(f"the labels could not be stored in the ledger: {exc}") from exc
            inserted, updated, unchanged = result.inserted, result.updated, result.unchanged
            received = self.received  # keys: the validated sources (bounded)
            for label in labels:
                received[label.source] = received.get(label.source, 0) + 1
            unknown = result.unknown_transaction_ids
        return {
            "inserted": inserted,
            "updated": updated,
            "unchanged": unchanged,
            "unknown_count": len(unknown),
            "unknown_transaction_ids": list(unknown[:FEEDBACK_LISTED]),
            "rejected_count": len(errors),
            "rejected": [error.to_dict() for error in errors[:FEEDBACK_LISTED]],
        }

    async def _wait_shipped(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until the shipper has moved what this process journaled so far."""
        journal, store = self.journal, self.store
        if journal is None or store is None:
            return
        segment, size = journal.position()
        path = journal.root / segment
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and path.exists():
            offsets = await asyncio.to_thread(store.journal_offsets, segment)
            if offsets.get(segment, 0) >= size:
                return
            await asyncio.sleep(0.02)

    def _ledger(self) -> Any:
        if self.store is None:
            raise Unavailable(
                "no decision ledger is configured; add a `ledger:` section to the config"
            )
        return self.store
