"""Reading the ledger from a test: a journaled decision reaches the store once it is shipped."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from fraudgate.ledger import Decision, LedgerStore, open_ledger


def decisions_when_shipped(
    ledger_url: str,
    query: Callable[[LedgerStore], list[Decision]],
    expected: int,
    timeout_s: float = 30.0,
) -> list[Decision]:
    """``query(store)`` once it returns ``expected`` decisions (or, after ``timeout_s``, what
    it returns then: the caller's assertion reports what is missing)."""
    store = open_ledger(ledger_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            decisions = query(store)
            if len(decisions) >= expected or time.monotonic() > deadline:
                return decisions
            time.sleep(0.1)
    finally:
        store.close()


def for_requests(request_ids: Collection[str]) -> Callable[[LedgerStore], list[Decision]]:
    return lambda store: store.decisions_for_requests(request_ids)


def for_transactions(transaction_ids: Collection[str]) -> Callable[[LedgerStore], list[Decision]]:
    return lambda store: store.decisions_for(transaction_ids)
