"""Replicas of `fraudgate serve` behind a real nginx over one shared ledger, and what to check.

The engine of bench/scale_out.py (`make scale-demo`) and tests/integration/test_scale_out.py:

* `start_cluster`: N replicas from one config, each in its own directory (the same file copied,
  as N pods mount one ConfigMap: its relative ``ledger.journal_dir`` gives each replica its own
  journal), each with its own ``fraudgate ledger ship`` process (``ledger.shipper: external``),
  and nginx (``/usr/sbin/nginx``, ``daemon off``, a keep-alive upstream of the replicas) as a
  child process on a free 127.0.0.1 port. Everything is killed on exit (bench/_procs.py).
* nginx adds ``X-Fraudgate-Upstream: $upstream_addr`` to every response: which replica answered,
  without touching the server (``$upstream_addr`` lists every replica tried; the last answered).
* `run_traffic`: keyed requests (card ids as routing keys, as `fraudgate replay` sends them)
  through `fraudgate.client.http1.Http1Pool`, the project's fast client; each `Answer` keeps the
  status, the arm that answered and the replica.
* `check_arms`, `check_ledger`, `propagate_weights`: one arm per card whichever replica answered;
  acknowledged decisions versus ledger rows; a weight change on one replica reaching all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _procs
import numpy as np
import orjson

NGINX = "/usr/sbin/nginx"
UPSTREAM_HEADER = "x-fraudgate-upstream"
DEFAULT_MODEL = "fraud-v1-baseline"
N_FEATURES = 30


def python_env() -> dict[str, str]:
    """The environment for child `python -m fraudgate` processes: PYTHONPATH made absolute (a
    checkout run with ``PYTHONPATH=src`` keeps using its own code whatever the child's cwd)."""
    paths = [
        str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    return {"PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"} if paths else {}


def fraudgate_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fraudgate", *args]


# -- processes ----------------------------------------------------------------------------------
@dataclass
class Replica:
    """One `fraudgate serve` and its external shipper, in their own directory."""

    index: int
    directory: Path
    http_port: int
    grpc_port: int
    server: subprocess.Popen | None = None
    shipper: subprocess.Popen | None = None
    starts: int = 0

    @property
    def config_path(self) -> Path:
        return self.directory / "fraudgate.yaml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / f"server-{self.starts}.log"


@dataclass
class Nginx:
    proc: subprocess.Popen
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    replicas: list[Replica]
    nginx: Nginx
    env: dict[str, str]
    startup_timeout: float

    def replica_of(self, upstream: str | None) -> int | None:
        """The index of the replica at nginx's ``$upstream_addr`` (its last address: the one
        that answered after any retries)."""
        if not upstream:
            return None
        last = upstream.split(",")[-1].strip()
        for replica in self.replicas:
            if replica.address == last:
                return replica.index
        return None

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index``'s server (its shipper keeps running)."""
        proc = self.replicas[index].server
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def restart(self, index: int) -> float:
        """Start replica ``index`` again on its ports; returns the seconds until ready."""
        replica = self.replicas[index]
        if replica.server is not None:
            _procs.stop(replica.server)
        _start_server(replica, self.env)
        return _wait_ready(replica, self.startup_timeout)

    def stop(self) -> None:
        """nginx, then the servers (SIGTERM), then the shippers (SIGTERM: they drain first)."""
        _procs.stop(self.nginx.proc)
        for replica in self.replicas:
            if replica.server is not None:
                _procs.stop(replica.server, grace=30)
        for replica in self.replicas:
            if replica.shipper is not None:
                _procs.stop(replica.shipper, grace=60)


def write_replica_configs(config_text: str, root: Path, n: int) -> list[Replica]:
    """The same config file in ``root/replica-<i>/`` for each replica, with free ports."""
    replicas = []
    for i in range(n):
        directory = root / f"replica-{i}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "fraudgate.yaml").write_text(config_text)
        replicas.append(Replica(i, directory, _procs.free_port(), _procs.free_port()))
    return replicas


def _start_server(replica: Replica, env: dict[str, str]) -> None:
    replica.starts += 1
    argv = fraudgate_argv("serve", "--config", str(replica.config_path))
    argv += ["--http-port", str(replica.http_port), "--grpc-port", str(replica.grpc_port)]
    replica.server = _procs.spawn(argv, cpu=None, log_path=replica.log_path, env=env)


def _start_shipper(replica: Replica, env: dict[str, str]) -> None:
    argv = fraudgate_argv("ledger", "ship", "--config", str(replica.config_path))
    replica.shipper = _procs.spawn(
        argv, cpu=None, log_path=replica.directory / "shipper.log", env=env
    )


def _wait_ready(replica: Replica, timeout: float) -> float:
    assert replica.server is not None
    server = _procs.Server(
        f"replica {replica.index}", replica.server, replica.http_port, None, replica.log_path
    )
    return _procs.wait_ready(server, "/v2/health/ready", timeout)


def nginx_conf(root: Path, port: int, upstreams: Sequence[str], keepalive: int = 64) -> str:
    """A self-contained nginx.conf: foreground, every path under ``root``, loopback only.

    Requests are not retried on another replica once sent (nginx's default for POST): a request
    in flight on a killed replica is answered 502, never scored twice. ``max_fails=1
    fail_timeout=1s``: a dead replica is skipped for a second, then tried again (so a restarted
    one gets traffic back quickly)."""
    servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=1s;" for u in upstreams)
    temp = "\n".join(
        f"  {kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers reach the temp paths
    return f"""{user}daemon off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  uwsgi_temp_path {root / "uwsgi"};
  scgi_temp_path {root / "scgi"};
  upstream fraudgate {{
{servers}
    keepalive {keepalive};
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://fraudgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Fraudgate-Upstream $upstream_addr always;
    }}
  }}
}}
"""


def start_nginx(root: Path, upstreams: Sequence[str], timeout: float = 10.0) -> Nginx:
    if not os.access(NGINX, os.X_OK):
        raise RuntimeError(f"{NGINX} not found: `make system-deps` installs nginx")
    root.mkdir(parents=True, exist_ok=True)
    port = _procs.free_port()
    conf = root / "nginx.conf"
    conf.write_text(nginx_conf(root, port, upstreams))
    proc = _procs.spawn(
        [NGINX, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf)],
        cpu=None,
        log_path=root / "nginx.out",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (root / "nginx.out").read_text(errors="replace")
            raise RuntimeError(f"nginx exited with code {proc.returncode}: {log[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return Nginx(proc, port, root)
        time.sleep(0.05)
    _procs.stop(proc)
    raise RuntimeError(f"nginx did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def start_cluster(
    config_text: str,
    root: Path,
    *,
    replicas: int = 3,
    env: dict[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Cluster:
    """Replicas and their shippers (all at once: the compile cache's writes are atomic), nginx."""
    env = {**python_env(), **(env or {})}
    members = write_replica_configs(config_text, root, replicas)
    try:
        for replica in members:
            _start_server(replica, env)
            _start_shipper(replica, env)
        for replica in members:
            _wait_ready(replica, startup_timeout)
        nginx = start_nginx(root / "nginx", [r.address for r in members])
    except BaseException:
        for replica in members:
            for proc in (replica.server, replica.shipper):
                if proc is not None:
                    _procs.stop(proc)
        raise
    return Cluster(members, nginx, env, startup_timeout)


# -- traffic ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request:
    request_id: str
    card: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's outcome: ``status`` 0 when no HTTP answer came (connection failed)."""

    request_id: str
    card: str
    status: int
    model: str | None = None
    upstream: str | None = None


def keyed_requests(prefix: str, n: int, cards: int, seed: int = 0) -> list[Request]:
    """``n`` one-row requests, card ``card-<i % cards>`` (so each card comes back several times),
    a 30-feature row drawn from a seeded normal, the request id as transaction id."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    out = []
    for i in range(n):
        request_id, card = f"{prefix}-{i}", f"card-{i % cards}"
        body = {
            "id": request_id,
            "inputs": [
                {
                    "name": "fraud_features",
                    "shape": [1, N_FEATURES],
                    "datatype": "FP32",
                    "data": rows[i],
                }
            ],
            "parameters": {
                "content_type": "np",
                "card_id": card,
                "transaction_id": request_id,
                "amount": float(abs(rows[i, 0]) * 100),
            },
        }
        out.append(Request(request_id, card, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)))
    return out


@dataclass
class Traffic:
    answers: list[Answer]
    seconds: float
    client_cpu_s: (
        float  # this process's CPU over the run: near ``seconds``, the client was the limit
    )

    @property
    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    @property
    def rps(self) -> float:
        return len(self.answers) / self.seconds if self.seconds else 0.0

    def statuses(self) -> dict[str, int]:
        return {str(k): v for k, v in sorted(Counter(a.status for a in self.answers).items())}


async def _drive(
    url: str,
    requests: Sequence[Request],
    concurrency: int,
    on_answer: Callable[[int], None] | None,
    timeout: float,
) -> list[Answer]:
    from fraudgate.client.http1 import Http1Pool

    answers: list[Answer] = []
    path = f"/v2/models/{DEFAULT_MODEL}/infer"
    source = iter(requests)
    pool = Http1Pool(
        url,
        max_connections=concurrency,
        timeout=timeout,
        headers={"content-type": "application/json"},
    )

    async def worker() -> None:
        for request in source:
            try:
                response = await pool.request("POST", path, request.body)
            except Exception:  # connection failed or timed out: not acknowledged
                answers.append(Answer(request.request_id, request.card, 0))
                await asyncio.sleep(0.01)
            else:
                model = None
                if response.status == 200:
                    model = str(orjson.loads(response.body).get("model_name"))
                upstream = response.headers.get(UPSTREAM_HEADER)
                answers.append(
                    Answer(request.request_id, request.card, response.status, model, upstream)
                )
            if on_answer is not None:
                on_answer(len(answers))

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await pool.aclose()
    return answers


def run_traffic(
    url: str,
    requests: Sequence[Request],
    *,
    concurrency: int = 32,
    on_answer: Callable[[int], None] | None = None,
    timeout: float = 10.0,
) -> Traffic:
    """Send every request (``concurrency`` keep-alive connections); ``on_answer(count)`` after
    each answer (e.g. to kill a replica mid-run)."""
    start, cpu = time.perf_counter(), time.process_time()
    answers = asyncio.run(_drive(url, requests, concurrency, on_answer, timeout))
    return Traffic(answers, time.perf_counter() - start, time.process_time() - cpu)


def split_by_replica(cluster: Cluster, answers: Sequence[Answer]) -> dict[str, int]:
    """Acknowledged answers per replica index (``"direct"``: no nginx header)."""
    counts: Counter[str] = Counter()
    for answer in answers:
        if answer.status == 200:
            index = cluster.replica_of(answer.upstream)
            counts["direct" if index is None else str(index)] += 1
    return dict(sorted(counts.items()))


def split_by_arm(answers: Sequence[Answer]) -> dict[str, int]:
    return dict(sorted(Counter(a.model for a in answers if a.status == 200).items()))


# -- checks -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ArmCheck:
    """Cards seen, how many were answered by more than one replica, and how many got two arms."""

    cards: int
    cards_on_several_replicas: int
    cards_with_two_arms: int


def check_arms(cluster: Cluster, answers: Sequence[Answer], direct: int = 0) -> ArmCheck:
    """One arm per card, whichever replica answered (``direct``: the replica index of answers
    without nginx's header, i.e. sent to one replica directly)."""
    arms: dict[str, set[str | None]] = {}
    replicas: dict[str, set[int]] = {}
    for answer in answers:
        if answer.status != 200:
            continue
        index = cluster.replica_of(answer.upstream)
        arms.setdefault(answer.card, set()).add(answer.model)
        replicas.setdefault(answer.card, set()).add(direct if index is None else index)
    return ArmCheck(
        cards=len(arms),
        cards_on_several_replicas=sum(len(r) > 1 for r in replicas.values()),
        cards_with_two_arms=sum(len(a) > 1 for a in arms.values()),
    )


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    """Acknowledged (HTTP 200) requests against the served decisions the ledger holds."""

    acknowledged: int
    recorded: int  # acknowledged requests with a served decision
    missing: int
    duplicated: int  # acknowledged requests with more than one served decision
    wrong_model: int  # recorded as served by another model than the one that answered
    unacknowledged_recorded: int  # answered with an error (or not at all) yet recorded
    wait_s: float  # how long the shippers took to bring the last acknowledged decision in


def check_ledger(ledger_url: str, answers: Sequence[Answer], timeout: float = 60.0) -> LedgerCheck:
    """Wait (up to ``timeout``) for every acknowledged decision to be shipped, then compare."""
    from fraudgate.ledger import open_ledger

    ok = {a.request_id: a.model for a in answers if a.status == 200}
    failed = {a.request_id for a in answers if a.status != 200}
    store = open_ledger(ledger_url)
    start = time.monotonic()
    try:
        while True:
            served = [d for d in store.decisions_for_requests(ok) if d.role == "served"]
            if len({d.request_id for d in served}) >= len(ok) or time.monotonic() - start > timeout:
                break
            time.sleep(0.2)
        waited = time.monotonic() - start
        stray = [d for d in store.decisions_for_requests(failed) if d.role == "served"]
    finally:
        store.close()
    counts = Counter(d.request_id for d in served)
    models = {d.request_id: d.model_name for d in served}
    return LedgerCheck(
        acknowledged=len(ok),
        recorded=len(counts),
        missing=len(set(ok) - set(counts)),
        duplicated=sum(n > 1 for n in counts.values()),
        wrong_model=sum(models[r] != m for r, m in ok.items() if r in models),
        unacknowledged_recorded=len({d.request_id for d in stray}),
        wait_s=waited,
    )


@dataclass(frozen=True, slots=True)
class Propagation:
    """A weight change made on one replica: when each replica served the new weights."""

    changed_on: int
    old: dict[str, int]
    new: dict[str, int]
    seconds: list[float | None]  # per replica, from the PUT's answer; None: not within timeout
    poll_s: float

    @property
    def max_s(self) -> float | None:
        return None if None in self.seconds else max(s for s in self.seconds if s is not None)


def propagate_weights(
    cluster: Cluster,
    token: str,
    experiment: str,
    new: dict[str, int],
    *,
    on: int = 0,
    poll_s: float,
    timeout: float = 30.0,
) -> Propagation:
    """PUT ``new`` weights on replica ``on`` (its admin REST endpoint), then poll every
    replica's ``GET /admin/experiments/{name}`` until each shows them."""
    from fraudgate.client import FraudgateClient

    clients = [FraudgateClient(r.url, token=token, timeout=5.0) for r in cluster.replicas]
    try:
        old = clients[on].get_experiment(experiment).weights
        clients[on].set_weights(experiment, new, "scale-out-bench")
        changed = time.monotonic()
        seen: list[float | None] = [None] * len(clients)
        while None in seen and time.monotonic() - changed < timeout:
            for i, client in enumerate(clients):
                if seen[i] is None and client.get_experiment(experiment).weights == new:
                    seen[i] = time.monotonic() - changed
            time.sleep(0.01)
    finally:
        for client in clients:
            client.close()
    return Propagation(on, old, new, seen, poll_s)


@dataclass
class ReportCheck:
    """`fraudgate report --config --json` over the shared ledger: per arm, the served
    transactions it counted (labelled or not) and its units (distinct cards)."""

    exit_code: int
    transactions: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    decision: str | None = None

    @property
    def total_transactions(self) -> int:
        return sum(self.transactions.values())


_OUTCOMES = ("tp", "fp", "fn", "tn", "unlabelled")


def run_report(cluster: Cluster, out: Path) -> ReportCheck:
    import json

    argv = fraudgate_argv("report", "--config", str(cluster.replicas[0].config_path))
    argv += ["--json", str(out)]
    done = subprocess.run(
        argv,
        env={**os.environ, **cluster.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not out.exists():
        return ReportCheck(done.returncode or 1)
    data = json.loads(out.read_text())
    return ReportCheck(
        0,
        {arm["arm"]: sum(int(arm["window"][k]) for k in _OUTCOMES) for arm in data["arms"]},
        {arm["arm"]: int(arm["units"]) for arm in data["arms"]},
        data["decision"]["outcome"],
    )
