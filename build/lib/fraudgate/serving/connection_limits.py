"""The connection bounds both transports enforce, and the file-descriptor budget they need.

Why: without them one client could hold a 200 MB request head in memory, keep sockets open
forever, or take every file descriptor so no one else can connect. REST enforces them in
`fraudgate.serving.http_limits`; gRPC through grpc-core's channel arguments (`grpc_options`).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from fraudgate.config import ServerConfig

DEFAULT_MAX_CONNECTIONS = 1000  # per transport, when the file limit allows it
# descriptors kept for everything but client connections: listeners, journal, ledger, logs,
# the shipper's pipes, MLflow's files, gRPC's internal wake-up fds
FD_RESERVE = 256


class FileLimitError(RuntimeError):
    """``server.max_connections`` does not fit the process's file-descriptor limit."""


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    idle_timeout_s: float
    max_connections: int  # per transport
    max_concurrent_streams: int  # gRPC, per connection

    @classmethod
    def from_config(cls, server: ServerConfig, max_connections: int) -> ConnectionLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            header_timeout_s=server.header_timeout_s,
            idle_timeout_s=server.idle_timeout_s,
            max_connections=max_connections,
            max_concurrent_streams=server.max_concurrent_streams,
        )


def fit_file_limit(requested: int | None) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; return the per-transport connection cap.

    Both transports may each hold ``max_connections`` sockets, plus `FD_RESERVE` for the rest.
    ``requested`` None picks `DEFAULT_MAX_CONNECTIONS` or what the limit allows, if fewer; an
    explicit value that does not fit raises `FileLimitError` (better than a lock-out later).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. macOS caps it below the hard limit
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fits = (soft - FD_RESERVE) // 2
    if requested is None:
        if fits < 1:
            raise FileLimitError(
                f"server.max_connections: the file-descriptor limit ({soft}) leaves no room for "
                f"client connections next to the {FD_RESERVE} the server keeps; raise it "
                "(ulimit -n)"
            )
        return min(DEFAULT_MAX_CONNECTIONS, fits)
    if requested > fits:
        raise FileLimitError(
            f"server.max_connections: expected at most {fits} (2 transports x max_connections "
            f"+ {FD_RESERVE} must fit the file-descriptor limit {soft}), received {requested}; "
            "lower it or raise the limit (ulimit -n / LimitNOFILE)"
        )
    return requested


def grpc_options(limits: ConnectionLimits) -> list[tuple[str, int]]:
    """grpc-core channel arguments for the same bounds (see the README for what they cover)."""
    timeout_ms = max(1, round(limits.header_timeout_s * 1000))
    return [
        # metadata (HTTP/2 header list) bytes: hard and soft limit alike, so refusals are certain
        ("grpc.max_metadata_size", limits.max_header_bytes),
        ("grpc.absolute_max_metadata_size", limits.max_header_bytes),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        # a connection with no RPC for this long gets GOAWAY
        ("grpc.max_connection_idle_ms", max(1, round(limits.idle_timeout_s * 1000))),
        # a new connection must complete the HTTP/2 preface and SETTINGS within this
        ("grpc.server_handshake_timeout_ms", timeout_ms),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
    ]
