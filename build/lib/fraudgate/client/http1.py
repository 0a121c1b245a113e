"""A lean HTTP/1.1 keep-alive connection pool for high-rate POSTs of prepared bodies.

httpx costs several hundred microseconds of Python per request, which caps a one-core client far
below what the server answers. This pool does the minimum: a fixed set of keep-alive
connections (``asyncio.Protocol``), one request in flight per connection, the request head
written as bytes, the response head parsed for its status, headers and ``Content-Length``.
Plain ``http://`` only (no TLS, no chunked responses, no redirects); the general clients keep
httpx. Errors are the client's: `ConnectionFailed` for transport problems and time-outs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fraudgate.client.errors import ConnectionFailed

__all__ = ["Http1Pool", "RawResponse"]

_MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class RawResponse:
    """Status, lower-cased headers and body of one response."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request` may be awaited by one caller at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.closed = False
        self.keep_alive = True
        self.deadline = 0.0  # loop time by which the response must have arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(
                ConnectionFailed(f"the server closed the connection ({exc or 'EOF'})")
            )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self.waiter.set_exception(ConnectionFailed("response head too large"))
            return
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self.waiter.set_exception(ConnectionFailed(f"bad status line {lines[0]!r}"))
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            self.waiter.set_exception(ConnectionFailed("chunked responses are not supported"))
            return
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.keep_alive = headers.get("connection", "").lower() != "close"
        self.waiter.set_result(RawResponse(status, headers, body))


class Http1Pool:
    """Up to ``max_connections`` keep-alive connections to one ``http://host:port``."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 32,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"url: expected an http:// URL, received {url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.max_connections = max(1, max_connections)
        base = {
            "host": f"{self.host}:{self.port}",
            **{k.lower(): v for k, v in (headers or {}).items()},
        }
        self._base_head = "".join(f"{k}: {v}\r\n" for k, v in base.items())
        self._idle: list[_Connection] = []
        self._open = 0
        self._gate = asyncio.Semaphore(self.max_connections)
        self._busy: set[_Connection] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        """Fail requests past their deadline (one timer for the pool, not one per request)."""
        loop = asyncio.get_running_loop()
        step = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            for conn in list(self._busy):
                waiter = conn.waiter
                if waiter is not None and not waiter.done() and now > conn.deadline:
                    waiter.set_exception(TimeoutError())

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionFailed(f"http://{self.host}:{self.port}: {exc}") from None
        self._open += 1
        return conn

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send one request on an idle (or new) connection and return the whole response."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) if headers else ""
        head = (
            f"{method} {path} HTTP/1.1\r\n{self._base_head}{extra}"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        async with self._gate:
            if self._watchdog is None:
                self._watchdog = asyncio.get_running_loop().create_task(self._watch())
            conn = self._idle.pop() if self._idle else await self._connect()
            if conn.closed:
                self._open -= 1
                conn = await self._connect()
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            conn.waiter = waiter
            conn.deadline = loop.time() + self.timeout
            self._busy.add(conn)
            assert conn.transport is not None
            conn.transport.write(head + body if len(body) < 65_536 else head)
            if len(body) >= 65_536:
                conn.transport.write(body)
            try:
                response = await waiter
            except TimeoutError:
                self._drop(conn)
                raise ConnectionFailed(
                    f"{method} http://{self.host}:{self.port}{path}: timed out after "
                    f"{self.timeout}s"
                ) from None
            except ConnectionFailed as exc:
                self._drop(conn)
                raise ConnectionFailed(
                    f"{method} http://{self.host}:{self.port}{path}: {exc}"
                ) from None
            finally:
                self._busy.discard(conn)
            conn.waiter = None
            if conn.keep_alive and not conn.closed:
                self._idle.append(conn)
            else:
                self._drop(conn)
            return response

    def _drop(self, conn: _Connection) -> None:
        self._open -= 1
        if conn.transport is not None:
            conn.transport.close()

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._idle:
            self._drop(self._idle.pop())

    async def __aenter__(self) -> Http1Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
