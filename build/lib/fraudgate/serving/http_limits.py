"""uvicorn's httptools protocol with the bounds it lacks: request-head size and header count, a
header-read timeout, and a cap on open connections, each refused with a JSON ``{"error": ...}``.

uvicorn buffers a request head without limit and waits for it forever: one client could hold
hundreds of megabytes, or a thousand silent sockets every file descriptor. Here:

* head bytes are counted in `data_received` before httptools sees them, so at most
  ``max_header_bytes`` of a head are ever buffered; past it: 431, connection closed;
* more than ``max_headers`` headers: 431;
* a head (including the first request's, from the moment the connection opens) not complete
  within ``header_timeout_s``: 408 (or a plain close if the client sent nothing);
* keep-alive idleness is uvicorn's ``timeout_keep_alive`` (``idle_timeout_s``);
* past ``max_connections`` open connections a new one gets 503 at once.

A refused connection sends its answer, half-closes, and drops whatever else arrives for a moment
(so the client reads the answer instead of a reset), then closes. The hot path adds a few
attribute checks per request and one clock read; the head timer is armed once per connection
and re-armed only when it fires.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fraudgate.serving.connection_limits import ConnectionLimits

LINGER_S = 1.0  # how long a refused connection drains what the client still sends
MAX_LINGERING = 256  # refused connections draining at once; past it they close at once

_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def refusal(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response with a JSON error body that closes the connection."""
    body = orjson.dumps({"error": message})
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n",
    ]
    if status == 503:
        head.append(b"retry-after: 1\r\n")
    return b"".join(head) + b"\r\n" + body


class _Lingering:
    """How many refused connections are draining (one count per server)."""

    def __init__(self) -> None:
        self.count = 0


class _HeadRefused(Exception):
    """Raised from a parser callback; uvicorn turns it into `send_400_response`."""


def limited_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """A protocol class bound to `limits` (pass it to ``uvicorn.Config(http=...)``)."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"limits": limits, "lingering": _Lingering()},
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ConnectionLimits
    lingering: _Lingering

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between the end of a message (or the start) and its headers
        self._head_bytes = 0  # bytes received while the current head is open
        self._head_started: float | None = None  # loop time the current head began
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: bytes | None = None  # the answer, once the connection is refused
        self._pending_refusal: bytes | None = None  # decided inside a parser callback
        self._linger_timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            cap = self.limits.max_connections
            self._refuse(
                503,
                f"server: too many open connections; expected at most {cap} "
                f"(server.max_connections), received one more; retry later",
            )
            return
        super().connection_made(transport)
        self._head_started = self.loop.time()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
            self.lingering.count -= 1
        super().connection_lost(exc)

    # -- request heads (the hot path: a few checks per request) --------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # draining after a refusal: dropped, never buffered
        if not self._in_head:
            super().data_received(data)
            return
        if self._head_started is None:
            self._head_started = self.loop.time()
        received = self._head_bytes + len(data)
        self._head_bytes = received
        limit = self.limits.max_header_bytes
        if received <= limit:
            super().data_received(data)
            return
        # this chunk crosses the bound: feed what still fits; if the head goes on, refuse
        fits = len(data) - (received - limit)
        super().data_received(data[:fits])
        if self._refusal is not None:
            return
        if self._in_head:
            if not self.transport.is_closing():
                self._refuse(
                    431,
                    f"request head: expected at most {limit} bytes of request line and headers "
                    f"(server.max_header_bytes), received {received} bytes so far without its end",
                )
            return
        super().data_received(data[fits:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_started = None
        count = len(self.headers)
        if count > self.limits.max_headers:
            self._pending_refusal = refusal(
                431,
                f"request head: expected at most {self.limits.max_headers} headers "
                f"(server.max_headers), received {count}",
            )
            raise _HeadRefused  # httptools stops parsing; uvicorn calls send_400_response
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._pending_refusal is not None:  # a bound was passed, not a malformed request
            self._linger(self._pending_refusal)
            return
        super().send_400_response(msg)

    # -- the header-read timeout ---------------------------------------------------------------
    def _check_head(self) -> None:
        """Fires about every ``header_timeout_s``: refuses a head that took longer."""
        self._head_timer = None
        if self.transport.is_closing() or self._refusal is not None:
            return
        timeout = self.limits.header_timeout_s
        started = self._head_started
        now = self.loop.time()
        if started is not None and self._in_head and now - started >= timeout:
            if self._head_bytes == 0 and self.cycle is None:
                self.transport.close()  # never said anything: nothing to answer
                return
            self._refuse(
                408,
                f"request head: expected the complete request line and headers within "
                f"{timeout:g} s (server.header_timeout_s), received {self._head_bytes} bytes",
            )
            return
        due = timeout if started is None else max(started + timeout - now, 0.001)
        self._head_timer = self.loop.call_later(due, self._check_head)

    # -- refusals ------------------------------------------------------------------------------
    def _refuse(self, status: int, message: str) -> None:
        self._linger(refusal(status, message))

    def _linger(self, response: bytes) -> None:
        """Answer, half-close, drain what the client still sends for `LINGER_S`, then close."""
        if self._refusal is not None:
            return
        self._refusal = response
        transport = self.transport
        transport.write(response)
        if self.lingering.count >= MAX_LINGERING or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.lingering.count += 1
        self._linger_timer = self.loop.call_later(LINGER_S, self._end_linger)

    def _end_linger(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer = None
            self.lingering.count -= 1
        self.transport.close()
