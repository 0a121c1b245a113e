"""What a request tells the ledger: its id, the transaction id and amount of each row, and when
the transactions happened.

A request's ``id`` names it in the ledger (bounded like every id, see `fraudgate.protocol.limits`);
without one the server generates an ordered id (`new_request_id`). Its parameters may name the
rows' ledger values: ``transaction_id`` / ``amount`` for a one-row request, ``transaction_ids`` /
``amounts`` (lists of one per row; over gRPC, whose parameters hold scalars, a JSON array string)
for several. Without them a one-row request is recorded under its request id with no amount, and
row ``i`` of a larger one under ``<id>:<i>``. ``event_time`` (epoch seconds) is when the
request's transactions happened; without it the decision time stands in. Bad values raise
`InvalidInput` naming the field, before anything is scored or recorded.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import orjson

from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.limits import MAX_ID_CHARS, check_id

# Parameters that name ledger values; without any, a one-row request is recorded under its
# request id with no amount, at the decision time.
ROW_PARAMETERS = frozenset({"transaction_ids", "transaction_id", "amounts", "amount", "event_time"})

# Request ids the server generates are ordered (like UUIDv7): 12 hex digits of the process's
# start time in Unix milliseconds, 10 of a per-process random nonce, then a per-process counter
# in 10 decimal digits (from 10**9; cheaper to format than hex) -- 32 hex digits, unique across
# processes and restarts. Ordered keys append at the right edge of the ledger's transaction_id
# index (a request without a transaction id is recorded under its request id); random ones
# (uuid4) touch a random B-tree page per row, several times the insert cost. After 9e9 requests
# the counter grows an 11th digit: the ids stay unique, only no longer ordered.
_REQUEST_PREFIX = f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"
_request_counter = itertools.count(10**9)


def new_request_id() -> str:
    return _REQUEST_PREFIX + str(next(_request_counter))


def ledger_fields(
    parameters: Mapping[str, Any], request_id: str, n: int
) -> tuple[Any, Any, float | None]:
    """(transaction id(s), amount(s), event time) of a request of ``n`` rows: a str and one
    amount for a one-row request (the common case, with nothing to parse), else lists of one per
    row; the event time (None: the decision time) is the request's, for every row."""
    if n == 1 and ROW_PARAMETERS.isdisjoint(parameters):
        return request_id, None, None
    transactions = transaction_ids(parameters, request_id, n)
    many = amounts(parameters, n)
    event = event_time(parameters)
    if n == 1:
        return transactions[0], many[0], event
    return transactions, many, event


def event_time(parameters: Mapping[str, Any]) -> float | None:
    """The request parameter ``event_time``: epoch seconds when the transactions happened."""
    value = parameters.get("event_time")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInput(
            "parameters.event_time: expected epoch seconds (a finite number >= 0), "
            f"received {_preview(value)}"
        )
    return float(value)


def transaction_ids(parameters: Mapping[str, Any], request_id: str, n: int) -> list[str]:
    """The transaction id of each of the ``n`` rows (see the module docstring)."""
    ids = _list_parameter(parameters, "transaction_ids")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) != n:
            raise InvalidInput(
                f"parameters.transaction_ids: expected a list of {n} strings (one per row), "
                f"received {_preview(ids)}"
            )
        out = []
        for i, value in enumerate(ids):
            out.append(check_id(value, f"parameters.transaction_ids[{i}]"))
        return out
    single = parameters.get("transaction_id")
    if single is not None:
        if n != 1:
            raise InvalidInput(
                f"parameters.transaction_id: names one transaction but the request has {n} rows; "
                "expected parameters.transaction_ids (a list of one id per row)"
            )
        return [check_id(single, "parameters.transaction_id")]
    if n == 1:
        return [request_id]
    longest = len(request_id) + 1 + len(str(n - 1))
    if longest > MAX_ID_CHARS:  # the rows' ids must fit the ledger like any other id
        raise InvalidInput(
            f"id: the {n} rows of a request without parameters.transaction_ids are recorded as "
            f"'<id>:<row>', at most {MAX_ID_CHARS} characters; expected an id of at most "
            f"{MAX_ID_CHARS - longest + len(request_id)} characters, received "
            f"{len(request_id)} (or send parameters.transaction_ids)"
        )
    return [f"{request_id}:{row}" for row in range(n)]


def amounts(parameters: Mapping[str, Any], n: int) -> list[float | None]:
    """The amount of each of the ``n`` rows (None: not given)."""
    many = _list_parameter(parameters, "amounts")
    if many is not None:
        if not isinstance(many, list) or len(many) != n:
            raise InvalidInput(
                f"parameters.amounts: expected a list of {n} numbers (one per row), "
                f"received {_preview(many)}"
            )
        return [_amount(v, f"parameters.amounts[{i}]") for i, v in enumerate(many)]
    one = parameters.get("amount")
    if one is None:
        return [None] * n
    if n != 1:
        raise InvalidInput(
            f"parameters.amount: one amount for {n} rows; expected parameters.amounts "
            "(a list of one amount per row)"
        )
    return [_amount(one, "parameters.amount")]


def _list_parameter(parameters: Mapping[str, Any], name: str) -> Any:
    """A list parameter; gRPC parameters hold only scalars, so a JSON array string is one too."""
    value = parameters.get(name)
    if isinstance(value, str) and value.startswith("["):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(value)
    return value


def _amount(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where}: expected a finite number, received {_preview(value)}")
    return float(value)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
