"""Hostile connections against a real server with small bounds (issue 11, findings 6, 7, 10b, 10c).

One server for the module, configured with small bounds so nothing waits long: request heads of
at most 4 KiB and 20 headers, 1 s to send a request head, 1 s of keep-alive idleness, at most 50
connections per transport. Every check talks to it over raw sockets (REST) or grpcio.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
import yaml
from processes import rss_kib

from fraudgate.config import write_default_config
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

MAX_HEADER_BYTES = 4096
MAX_HEADERS = 20
HEADER_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 50
V1 = "fraud-v1-baseline"


@pytest.fixture(scope="module")
def bounded(trained_registry, module_launch, tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded")
    path = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
    data = yaml.safe_load(path.read_text())
    data["server"].update(
        max_header_bytes=MAX_HEADER_BYTES,
        max_headers=MAX_HEADERS,
        header_timeout_s=HEADER_TIMEOUT_S,
        idle_timeout_s=IDLE_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
    )
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return module_launch(path)


def _connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout`)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _closed_within(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes `sock` (reading and dropping what it sends), or None."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return time.monotonic() - start
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - start


def _live(url: str) -> float:
    start = time.monotonic()
    response = httpx.get(f"{url}/v2/health/live", timeout=10)
    assert response.status_code == 200, response.text
    return time.monotonic() - start


class _Prober(threading.Thread):
    """Another client, asking /v2/health/live over and over while a hostile one runs."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.stop = url, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.latencies.append(_live(self.url))
            time.sleep(0.02)


# -- REST: request heads -----------------------------------------------------------------------


def test_a_200_mb_header_is_refused_with_431_quickly_and_memory_stays_bounded(bounded):
    before = rss_kib(bounded.proc.pid)
    prober = _Prober(bounded.url)
    prober.start()
    sock = _connect(bounded.http_port)
    start = time.monotonic()
    sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
    chunk, sent, answered = b"a" * (1 << 20), 0, False
    try:
        while sent < 200 << 20:
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        answered = True
    elapsed = time.monotonic() - start
    raw = _read_response(sock)
    sock.close()
    time.sleep(0.3)
    prober.stop.set()
    prober.join()
    after = rss_kib(bounded.proc.pid)
    print(
        f"\n200 MB header: refused after {elapsed * 1000:.0f} ms, {sent >> 20} MiB sent; RSS "
        f"{before} -> {after} KiB; other client: {len(prober.latencies)} answers, max "
        f"{max(prober.latencies) * 1000:.0f} ms"
    )
    assert answered and sent < 64 << 20, f"sent {sent} bytes without an answer"
    status, body = _status_and_body(raw)
    assert status == 431
    assert "server.max_header_bytes" in body["error"] and str(MAX_HEADER_BYTES) in body["error"]
    assert elapsed < 5
    assert after - before < 50 * 1024, f"RSS grew by {after - before} KiB"
    assert prober.latencies and max(prober.latencies) < 1.0


def test_too_many_headers_are_refused_with_431(bounded):
    sock = _connect(bounded.http_port)
    headers = "".join(f"X-H{i}: {i}\r\n" for i in range(MAX_HEADERS + 5))
    sock.sendall(f"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    status, body = _status_and_body(_read_response(sock))
    sock.close()
    assert status == 431
    assert "server.max_headers" in body["error"] and str(MAX_HEADERS) in body["error"]
    # a request under both bounds is answered on the same server
    sock = _connect(bounded.http_port)
    headers = "".join(f"X-H{i}: {i}\r\n" for i in range(MAX_HEADERS - 5))
    sock.sendall(
        f"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode()
    )
    assert _read_response(sock).startswith(b"HTTP/1.1 200")
    sock.close()


# -- REST: slow, idle and too many connections -------------------------------------------------


def test_a_one_byte_at_a_time_client_is_closed_after_the_header_timeout(bounded):
    sock = _connect(bounded.http_port)
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
    start, received = time.monotonic(), b""
    try:
        for byte in request:
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.25)[0]:
                received = _read_response(sock)
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    elapsed = time.monotonic() - start
    sock.close()
    print(f"\nslow client closed after {elapsed * 1000:.0f} ms")
    assert received, "the server kept the slow client"
    status, body = _status_and_body(received)
    assert status == 408 and "server.header_timeout_s" in body["error"]
    assert HEADER_TIMEOUT_S * 0.9 < elapsed < HEADER_TIMEOUT_S + 1.5


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(bounded):
    sock = _connect(bounded.http_port)
    sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    closed_after = _closed_within(sock, IDLE_TIMEOUT_S + 2)
    sock.close()
    assert closed_after is not None and closed_after > IDLE_TIMEOUT_S * 0.9


def test_connections_past_the_cap_get_503_and_idle_ones_are_closed(bounded):
    extra = 30
    socks = [_connect(bounded.http_port) for _ in range(MAX_CONNECTIONS + extra)]
    start = time.monotonic()
    answered: set[socket.socket] = set()
    while len(answered) < extra and time.monotonic() - start < 0.5:
        answered.update(select.select([s for s in socks if s not in answered], [], [], 0.05)[0])
    refuse_s = time.monotonic() - start
    refused = [_read_response(sock, timeout=1) for sock in answered]
    # a client arriving now is refused clearly, not left waiting
    late = httpx.get(f"{bounded.url}/v2/health/live", timeout=5)
    assert late.status_code == 503 and "server.max_connections" in late.json()["error"]
    closed = [_closed_within(sock, HEADER_TIMEOUT_S + 2) for sock in socks]
    for sock in socks:
        sock.close()
    answered_after = _live(bounded.url)
    print(
        f"\n{len(socks)} idle sockets: {len(refused)} refused with 503 in {refuse_s * 1000:.0f}"
        f" ms; {sum(c is not None for c in closed)} closed; a new client answered in "
        f"{answered_after * 1000:.0f} ms"
    )
    assert len(refused) >= extra, len(refused)
    for raw in refused:
        status, body = _status_and_body(raw)
        assert status == 503 and str(MAX_CONNECTIONS) in body["error"]
    assert all(c is not None for c in closed), "idle connections were kept past the timeout"


# -- gRPC ----------------------------------------------------------------------------------------


def _stub(server) -> tuple[grpc.Channel, pb_grpc.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(server.grpc_address)
    return channel, pb_grpc.GRPCInferenceServiceStub(channel)


def _infer_request(model: str, **fields) -> pb.ModelInferRequest:
    x = np.random.default_rng(0).normal(size=(2, 30)).astype(np.float32)
    request = pb.ModelInferRequest(model_name=model, **fields)
    tensor = request.inputs.add(name="fraud_features", datatype="FP32", shape=[2, 30])
    return request, tensor, x


def test_grpc_metadata_past_the_bound_is_refused(bounded):
    channel, stub = _stub(bounded)
    with channel:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live
        with pytest.raises(grpc.RpcError) as info:
            stub.ServerLive(pb.ServerLiveRequest(), metadata=[("x-big", "m" * 6000)], timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live


def test_grpc_connections_that_never_speak_http2_are_closed(bounded):
    socks = [_connect(bounded.grpc_port) for _ in range(MAX_CONNECTIONS + 10)]
    closed = [_closed_within(sock, HEADER_TIMEOUT_S + 3) for sock in socks]
    for sock in socks:
        sock.close()
    print(f"\ngRPC: {sum(c is not None for c in closed)}/{len(socks)} silent sockets closed")
    assert all(c is not None for c in closed)
    channel, stub = _stub(bounded)
    with channel:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live


def test_grpc_idle_connections_are_closed(bounded):
    channel, stub = _stub(bounded)
    states = []
    with channel:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live
        channel.subscribe(states.append)
        time.sleep(IDLE_TIMEOUT_S + 1.5)
        assert grpc.ChannelConnectivity.IDLE in states, states  # the server sent GOAWAY
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live  # and it reconnects


def test_a_100_kb_model_name_gets_a_bounded_not_found(bounded):
    name = "m" * 100_000
    channel, stub = _stub(bounded)
    request, tensor, x = _infer_request(name)
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    with channel:
        for call in (
            lambda: stub.ModelInfer(request, timeout=5),
            lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name=name), timeout=5),
            lambda: stub.ModelReady(pb.ModelReadyRequest(name=name), timeout=5),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value
            assert len(info.value.details()) < 1000 and "100000 characters" in info.value.details()
    # REST: a long name that fits the request head is a 404 with a bounded message
    response = httpx.post(f"{bounded.url}/v2/models/{'m' * 3000}/infer", content=b"{}", timeout=5)
    assert response.status_code == 404 and len(response.json()["error"]) < 1000


def test_raw_and_typed_contents_together_are_invalid(bounded):
    channel, stub = _stub(bounded)
    request, tensor, x = _infer_request(V1)
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    request.raw_input_contents.append(x.tobytes())
    with channel:
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
        details = info.value.details()
        assert "raw_input_contents" in details and "inputs[0].contents" in details
        del request.raw_input_contents[:]
        assert stub.ModelInfer(request, timeout=5).model_name == V1  # typed alone: fine
