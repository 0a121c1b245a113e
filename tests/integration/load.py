"""A small async load generator for the integration tests (httpx, N concurrent workers)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

FEATURES = [0.1 * i for i in range(30)]


def payload(
    request_id: str | None = None,
    card_id: str | int | None = None,
    row: list[float] | None = None,
    **parameters: object,
) -> bytes:
    params: dict[str, object] = {"content_type": "np", **parameters}
    if card_id is not None:
        params["card_id"] = card_id
    body: dict[str, object] = {
        "inputs": [
            {
                "name": "fraud_features",
                "shape": [1, 30],
                "datatype": "FP32",
                "data": row if row is not None else FEATURES,
            }
        ],
        "parameters": params,
    }
    if request_id is not None:
        body["id"] = request_id
    return orjson.dumps(body)


@dataclass
class Result:
    request_id: str
    key: str | None
    status: int
    model: str | None = None
    route: str | None = None
    body: dict = field(default_factory=dict)
    sent_at: float = 0.0
    done_at: float = 0.0


class _Connection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams (httpx is ~20x slower here)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            self.writer.write(head + body)
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise
        return status, headers, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def send_many(
    url: str,
    requests: Iterable[tuple[str, str | None, bytes]],
    *,
    model: str = "fraud-v1-baseline",
    concurrency: int = 32,
    stop: asyncio.Event | None = None,
    results: list[Result] | None = None,
) -> list[Result]:
    """POST each (request_id, key, body) to ``/v2/models/{model}/infer``; failures -> status 0.

    A request counts as answered (status 200) only once its whole response body has arrived.
    ``results``: a list to append to as answers arrive (so a caller can watch them).
    """
    source: Iterator[tuple[str, str | None, bytes]] = iter(requests)
    results = [] if results is None else results
    path = f"/v2/models/{model}/infer"
    host, _, port = url.removeprefix("http://").partition(":")

    async def worker() -> None:
        conn = _Connection(host, int(port))
        try:
            for request_id, key, body in source:
                if stop is not None and stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    status, headers, content = await conn.post(path, body)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    results.append(Result(request_id, key, 0, sent_at=sent))
                    await asyncio.sleep(0.01)
                    continue
                result = Result(request_id, key, status, sent_at=sent, done_at=time.monotonic())
                if status == 200:
                    data = orjson.loads(content)
                    result.model = data["model_name"]
                    result.route = headers.get("x-seldon-route")
                    result.body = data
                elif content:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        result.body = orjson.loads(content)  # {"error": ...}
                results.append(result)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def keyed(prefix: str, n: int, start: int = 0) -> list[tuple[str, str, bytes]]:
    """n requests with distinct card ids ``card-{i}`` and request ids ``{prefix}-{i}``."""
    return [
        (f"{prefix}-{i}", f"card-{i}", payload(f"{prefix}-{i}", f"card-{i}"))
        for i in range(start, start + n)
    ]


def endless(prefix: str) -> Iterator[tuple[str, str, bytes]]:
    """Keyed requests ``{prefix}-{i}`` (cards ``{prefix}-card-{i % 5000}``) until stopped."""
    i = 0
    while True:
        request_id, key = f"{prefix}-{i}", f"{prefix}-card-{i % 5000}"
        yield request_id, key, payload(request_id, key)
        i += 1


async def load_then_kill(
    targets: list[tuple[str, str]],
    kill: Callable[[], None],
    *,
    kill_after_s: float = 1.5,
    then_s: float = 0.5,
    concurrency: int = 32,
) -> list[Result]:
    """Load every (url, prefix) target, call ``kill()`` mid-load, keep going ``then_s``, stop."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(send_many(url, endless(prefix), concurrency=concurrency, stop=stop))
        for url, prefix in targets
    ]
    await asyncio.sleep(kill_after_s)
    kill()
    await asyncio.sleep(then_s)
    stop.set()
    results: list[Result] = []
    for task in tasks:
        results.extend(await task)
    return results


def assert_acknowledged_are_recorded(
    results: list[Result], ledger_url: str, timeout_s: float = 60.0
) -> int:
    """Every request that got a 200 has its served decision in the ledger; returns how many.

    With the journal (the default) a decision reaches the store when the shipper has moved it:
    wait for that, up to ``timeout_s``; what is still missing then was lost.
    """
    from fraudgate.ledger import open_ledger

    ok = {r.request_id: r.model for r in results if r.status == 200}
    assert ok, "no request succeeded"
    store = open_ledger(ledger_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            served = {
                d.request_id: d.model_name
                for d in store.decisions_for_requests(ok)
                if d.role == "served"
            }
            if len(served) >= len(ok) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        store.close()
    missing = sorted(set(ok) - set(served))
    assert not missing, f"{len(missing)} acknowledged requests not in the ledger: {missing[:10]}"
    assert served == ok  # and recorded as answered by the model that answered
    return len(ok)


def served_exactly_once(results: list[Result], ledger_url: str, timeout_s: float = 120.0) -> int:
    """Every 200 has exactly one served decision in the ledger (waiting up to ``timeout_s`` for
    the shipper); returns how many were acknowledged."""
    from collections import Counter

    from fraudgate.ledger import open_ledger

    ok = {r.request_id for r in results if r.status == 200}
    assert ok, "no request succeeded"
    store = open_ledger(ledger_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            counts = Counter(
                d.request_id for d in store.decisions_for_requests(ok) if d.role == "served"
            )
            if len(counts) >= len(ok) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        store.close()
    missing = sorted(ok - set(counts))
    assert not missing, f"{len(missing)} of {len(ok)} acknowledged not in the ledger: {missing[:5]}"
    twice = sorted(request_id for request_id, n in counts.items() if n > 1)
    assert not twice, f"{len(twice)} acknowledged decisions recorded more than once: {twice[:5]}"
    return len(ok)
