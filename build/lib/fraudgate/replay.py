"""Replay: stream simulated transactions through a running server, then deliver their labels.

1. **Transactions.** The demo's simulation (``<workdir>/data``, written by ``fraudgate demo`` /
   ``fraudgate simulate``) is read, or, without one, simulated deterministically from
   ``SimulationConfig(seed=...)``. Contract features are computed causally over the whole
   simulation, then ``N`` transactions are drawn (seeded, without replacement) from the holdout
   window -- after the emerging pattern started, seen by neither model in training -- and
   replayed in time order.
2. **Scoring.** ``concurrency`` workers send them through :class:`AsyncFraudgateClient`, paced to
   at most ``rate`` requests per second, each addressed to the experiment's default model with the
   card id as routing key (request parameter ``card_id`` unless the config says otherwise) and the
   transaction id and amount as request parameters, so the ledger records them.
3. **Labels, the realistic way, in simulated time.** An alert of the served model gets an
   ``investigation`` outcome (fraud or not) after hours to a couple of days; a fraud it missed
   gets a ``chargeback`` after a long-tailed delay (log-normal, tail past 90 days); a legitimate
   transaction it did not flag gets nothing (see :class:`LabelDelays`). The simulated clock is
   the event time of the latest transaction sent, so simulated days pass in seconds; every
   ``label_interval_s`` the labels known by then are POSTed to ``/feedback`` with their
   ``label_time`` (when the label became known) and ``source``. After the last transaction
   the clock jumps ``label_horizon_days`` ahead (None: to the end) and the rest is delivered;
   later labels stay pending. Each request carries the transaction's event time as the request
   parameter ``event_time`` (epoch seconds, simulated).

REST requests go through `fraudgate.client.http1.Http1Pool` (keep-alive connections, the body
encoded once with orjson, the answer read for the served model and decision only); gRPC through
:class:`AsyncFraudgateClient`. Every request holds one transaction: the experiment routes a
request as one unit by its card, so rows of different cards must not share one.

The run stops by itself after ``N`` transactions and only talks to the given URL. It returns a
summary dict (also written to ``<workdir>/replay.json``): sent / ok / errors by status, the
observed split per model, labels sent / inserted / unknown, throughput, latency p50 / p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from fraudgate.client import AsyncFraudgateClient, FraudgateError
from fraudgate.client.errors import ConnectionFailed, ModelNotFound, error_from_http
from fraudgate.client.http1 import Http1Pool
from fraudgate.client.types import FeedbackResult
from fraudgate.client.wire import (
    DECISION_OUTPUT,
    DEFAULT_MODEL,
    DEFAULT_ROUTING_PARAMETER,
    INPUT_NAME,
    ROUTE_HEADER,
    ROUTING_HEADER,
    prepare_infer,
)
from fraudgate.config import ADMIN_TOKEN_ENV
from fraudgate.report.replay import render_summary

__all__ = [
    "LabelDelays",
    "ReplayBatch",
    "ReplaySettings",
    "ReplayTarget",
    "label_schedule",
    "render_summary",
    "replay_async",
    "run_replay",
    "select_transactions",
    "target_from_config",
]

if TYPE_CHECKING:
    from rich.console import Console

    from fraudgate.data.simulator import SimulatedData

MAX_LABEL_DELAY_DAYS = 90.0
LABEL_DELAY_SIGMA = 1.0


@dataclass(frozen=True, slots=True)
class LabelDelays:
    """How late labels arrive, in simulated days (log-normal: median, sigma, cap).

    An alert of the served model is investigated within hours to a couple of days; a fraud it
    missed comes back as a chargeback weeks later (long tail past 90 days); a legitimate
    transaction it did not flag never gets a label.
    """

    investigation_median_days: float = 0.5
    investigation_sigma: float = 0.6
    investigation_max_days: float = 3.0
    chargeback_median_days: float = 14.0
    chargeback_sigma: float = 0.8
    chargeback_max_days: float = 120.0

    def draw(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Per transaction: (investigation delay, chargeback delay), drawn up front so the
        schedule does not depend on the order responses come back in."""
        rng = np.random.default_rng([seed, 1])
        return (
            _lognormal(rng, self.investigation_median_days, self.investigation_sigma, n).clip(
                1 / 24, self.investigation_max_days
            ),
            np.minimum(
                _lognormal(rng, self.chargeback_median_days, self.chargeback_sigma, n),
                self.chargeback_max_days,
            ),
        )


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    if median <= 0:
        return np.zeros(n)
    return rng.lognormal(mean=math.log(median), sigma=sigma, size=n)


@dataclass(frozen=True)
class ReplaySettings:
    url: str
    transactions: int = 1000
    rate: float = 200.0  # requests per second; <= 0 or inf: as fast as the workers go
    concurrency: int = 16
    delays: LabelDelays = field(default_factory=LabelDelays)
    # simulated days past the last transaction up to which labels are delivered (None: all)
    label_horizon_days: float | None = None
    label_interval_s: float = 0.25  # wall seconds between label deliveries while scoring
    label_batch: int = 500
    window_days: float | None = None  # replay only the first days of the holdout window
    token: str | None = None
    seed: int = 7
    workdir: Path = Path(".fraudgate/demo")
    model: str = DEFAULT_MODEL
    routing_parameter: str | None = DEFAULT_ROUTING_PARAMETER
    protocol: str = "rest"
    grpc_address: str | None = None
    timeout: float = 10.0
    # used only when <workdir>/data holds no simulation
    days: int = 120
    transactions_per_day: int = 10_000


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """What the server config tells the replay: model to address, routing, token, address."""

    model: str = DEFAULT_MODEL
    routing_parameter: str | None = DEFAULT_ROUTING_PARAMETER
    token: str | None = None
    experiment: str | None = None
    url: str | None = None  # the server's HTTP URL (server.host/http_port); None without config


def target_from_config(path: str | Path | None) -> ReplayTarget:
    """What the server's config says (read through `fraudgate.config`, its one reader): the
    experiment's default model, routing key, the token, where the server listens."""
    from fraudgate.config import load_config

    env_token = os.environ.get(ADMIN_TOKEN_ENV) or None
    if path is None:
        return ReplayTarget(token=env_token)
    config = load_config(path)
    spec = config.experiment_spec
    names = [model.name for model in config.models]
    if spec is not None:
        model = spec.default or spec.candidates[0].name
        parameter = None if spec.routing.source == "header" else spec.routing.key
    else:
        model = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
        parameter = DEFAULT_ROUTING_PARAMETER
    token = config.auth.token or env_token
    return ReplayTarget(
        model, parameter, token, spec.name if spec else None, config.server.client_url
    )


# -- transactions --------------------------------------------------------------------------------


@dataclass
class ReplayBatch:
    """The transactions to replay, in time order, with their features and truth."""

    frame: pd.DataFrame  # transaction_id, timestamp, card_id, amount, is_fraud
    features: np.ndarray  # float32 [n, 30]
    source: str
    window: tuple[str, str]
    simulation: dict[str, Any] = field(default_factory=dict)


def _load_simulation(settings: ReplaySettings) -> tuple[SimulatedData, str]:
    from fraudgate.data.simulator import SimulatedData, SimulationConfig, simulate

    data_dir = Path(settings.workdir) / "data"
    if (data_dir / "simulation.json").is_file():
        return SimulatedData.read(data_dir), str(data_dir)
    config = SimulationConfig(
        seed=settings.seed,
        days=settings.days,
        transactions_per_day=settings.transactions_per_day,
        emerging_day=round(settings.days * 63 / 120),
    )
    return simulate(config), f"simulated (seed {settings.seed}, {settings.days} days)"


def select_transactions(settings: ReplaySettings) -> ReplayBatch:
    """N transactions after the pattern emerged (holdout window), in time order, with features."""
    from fraudgate.data.contract import FEATURE_NAMES, to_matrix
    from fraudgate.data.features import compute_features
    from fraudgate.training.windows import TrainingPlan

    sim, source = _load_simulation(settings)
    cfg = sim.config
    features = compute_features(sim.transactions, sim.customers, sim.terminals)
    day = (features["timestamp"] - cfg.start).dt.total_seconds() / 86_400.0
    start_day = float(cfg.emerging_day)
    if cfg.emerging_day < cfg.days:
        start_day = max(
            start_day, TrainingPlan.for_simulation(cfg.days, cfg.emerging_day).holdout.start
        )
    in_window = day.to_numpy() >= start_day
    if settings.window_days is not None:
        in_window &= day.to_numpy() < start_day + settings.window_days
    pool = np.flatnonzero(in_window)
    if len(pool) == 0:
        pool = np.arange(len(features))
    n = min(settings.transactions, len(pool))
    rng = np.random.default_rng(settings.seed)
    chosen = np.sort(rng.choice(pool, size=n, replace=False))
    rows = features.iloc[chosen].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "transaction_id": rows["transaction_id"].astype(str),
            "timestamp": rows["timestamp"],
            "card_id": rows["card_id"].astype(np.int64),
            "amount": rows["amount"].astype(np.float64),
            "is_fraud": rows["is_fraud"].astype(bool),
        }
    )
    if "scenario" in rows:
        frame["scenario"] = rows["scenario"].astype(str)
    matrix = to_matrix(rows, FEATURE_NAMES)
    window = (str(frame["timestamp"].min()), str(frame["timestamp"].max())) if n else ("", "")
    return ReplayBatch(
        frame, matrix, source, window, {"config": asdict(cfg), "from_day": start_day}
    )


INVESTIGATION, CHARGEBACK = "investigation", "chargeback"


def label_schedule(
    frame: pd.DataFrame, flagged: np.ndarray, delays: LabelDelays, seed: int
) -> pd.DataFrame:
    """The labels the replayed transactions get, ordered by the time each becomes known.

    ``flagged[i]``: the served model alerted on transaction ``i`` -> an ``investigation`` outcome
    (fraud or not) after a short delay; an unflagged fraud -> a ``chargeback`` after a long one;
    an unflagged legitimate transaction -> no label.
    """
    flagged = np.asarray(flagged, dtype=bool)
    fraud = frame["is_fraud"].to_numpy(dtype=bool)
    if flagged.shape != fraud.shape:
        raise ValueError(
            f"flagged: expected one decision per transaction ({fraud.shape[0]}), "
            f"received {flagged.shape[0]}"
        )
    investigation, chargeback = delays.draw(len(frame), seed)
    labelled = flagged | fraud
    delay = np.where(flagged, investigation, chargeback)[labelled]
    events = frame["timestamp"].to_numpy()[labelled]
    labels = pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].to_numpy()[labelled],
            "is_fraud": fraud[labelled],
            "event_time": events,
            "known_at": events + pd.to_timedelta(delay, unit="D").to_numpy(),
            "source": np.where(flagged[labelled], INVESTIGATION, CHARGEBACK),
            "amount": frame["amount"].to_numpy()[labelled],
            "delay_days": delay,
        }
    )
    return labels.sort_values("known_at", kind="stable", ignore_index=True)


# -- the replay ----------------------------------------------------------------------------------


@dataclass
class _Tally:
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    split: Counter = field(default_factory=Counter)
    routes: Counter = field(default_factory=Counter)
    flagged: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def record(self, model: str, route: str | None, alert: bool, latency_ms: float) -> None:
        self.ok += 1
        self.split[model] += 1
        if route:
            self.routes[route] += 1
        if alert:
            self.flagged[model] += 1
        self.latencies.append(latency_ms)

    def fail(self, error: BaseException) -> None:
        if isinstance(error, FraudgateError):
            key = str(error.status) if error.status is not None else type(error).__name__
            message = error.message
        else:
            key, message = type(error).__name__, str(error)
        self.errors[key] += 1
        self.error_examples.setdefault(key, message[:300])

    @property
    def done(self) -> int:
        return self.ok + sum(self.errors.values())


LABEL_TIMEOUT_S = 60.0  # a feedback batch waits for the ledger's commit, behind the shipper


def _client(settings: ReplaySettings, timeout: float | None = None) -> AsyncFraudgateClient:
    return AsyncFraudgateClient(
        settings.url,
        protocol=settings.protocol,
        grpc_address=settings.grpc_address,
        token=settings.token,
        timeout=max(settings.timeout, timeout or 0.0),
        model=settings.model,
        routing_parameter=settings.routing_parameter,
        max_connections=max(settings.concurrency, 1),
    )


_NS = 1_000_000_000


@dataclass
class _Labels:
    """Labels waiting for the simulated clock, and what was delivered so far."""

    delays: LabelDelays
    investigation: np.ndarray
    chargeback: np.ndarray
    pending: list[tuple[int, int]] = field(default_factory=list)  # heap of (known_at ns, row)
    sent: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    unknown: int = 0
    unknown_examples: list[str] = field(default_factory=list)
    batches: int = 0
    by_source: Counter = field(default_factory=Counter)
    error: str | None = None
    delivered_delays: list[float] = field(default_factory=list)


class _Run:
    """One replay's state: the transactions, the simulated clock, the label queue."""

    def __init__(self, settings: ReplaySettings, batch: ReplayBatch) -> None:
        self.settings = settings
        self.batch = batch
        frame = batch.frame
        self.n = len(frame)
        self.ids = frame["transaction_id"].tolist()
        self.cards = frame["card_id"].tolist()
        self.amounts = frame["amount"].tolist()
        self.fraud = frame["is_fraud"].to_numpy(dtype=bool)
        self.event_ns = frame["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        self.event_s = (self.event_ns / _NS).tolist()
        self.flagged = np.zeros(self.n, dtype=bool)
        self.answered = np.zeros(self.n, dtype=bool)
        self.served_by: list[str | None] = [None] * self.n
        self.now_ns = int(self.event_ns[0]) if self.n else 0  # the simulated clock
        investigation, chargeback = settings.delays.draw(self.n, settings.seed)
        self.labels = _Labels(settings.delays, investigation, chargeback)
        self.tally = _Tally()

    def answer(self, i: int, model: str, route: str | None, alert: bool, latency: float) -> None:
        """Record transaction i's served decision and queue the label it will get."""
        self.tally.record(model, route, alert, latency)
        self.answered[i] = True
        self.flagged[i] = alert
        self.served_by[i] = model
        if alert:
            delay = float(self.labels.investigation[i])
        elif self.fraud[i]:
            delay = float(self.labels.chargeback[i])
        else:
            return
        heapq.heappush(self.labels.pending, (int(self.event_ns[i] + delay * 86_400 * _NS), i))

    def due(self, until_ns: int, limit: int) -> list[int]:
        """Rows of the labels known by ``until_ns`` (simulated), oldest first, at most limit."""
        out: list[int] = []
        pending = self.labels.pending
        while pending and pending[0][0] <= until_ns and len(out) < limit:
            out.append(heapq.heappop(pending)[1])
        return out

    def label_row(self, i: int) -> dict[str, Any]:
        alert = bool(self.flagged[i])
        delay = float(self.labels.investigation[i] if alert else self.labels.chargeback[i])
        known = self.event_ns[i] + int(delay * 86_400 * _NS)
        return {
            "transaction_id": self.ids[i],
            "is_fraud": bool(self.fraud[i]),
            "label_time": _iso_ns(int(known)),
            "source": INVESTIGATION if alert else CHARGEBACK,
            "amount": float(self.amounts[i]),
        }


def _iso_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / _NS, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request_body(run: _Run, i: int) -> tuple[bytes, dict[str, str] | None]:
    """One transaction's REST body, encoded once (orjson serialises the float32 row)."""
    settings = run.settings
    params: dict[str, Any] = {"content_type": "np"}
    headers = None
    if settings.routing_parameter:
        params[settings.routing_parameter] = int(run.cards[i])
    else:
        headers = {ROUTING_HEADER: str(int(run.cards[i]))}
    params["transaction_id"] = run.ids[i]
    params["amount"] = float(run.amounts[i])
    params["event_time"] = run.event_s[i]
    body = {
        "id": f"replay-{run.ids[i]}",
        "inputs": [
            {
                "name": INPUT_NAME,
                "shape": [1, run.batch.features.shape[1]],
                "datatype": "FP32",
                "data": run.batch.features[i],
            }
        ],
        "parameters": params,
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), headers


def _served_decision(body: bytes) -> tuple[str, bool]:
    """(model that answered, its decision) from a one-row REST response."""
    data = orjson.loads(body)
    decision = False
    for output in data.get("outputs", ()):
        if output.get("name") == DECISION_OUTPUT:
            decision = bool(output["data"][0])
    return str(data.get("model_name", "")), decision


async def _score_rest(run: _Run, pool: Http1Pool, i: int, path: str) -> None:
    body, headers = _request_body(run, i)
    start = time.perf_counter()
    response = await pool.request("POST", path, body, headers)
    latency = (time.perf_counter() - start) * 1000
    if response.status >= 400:
        raise error_from_http(response.status, response.body, not_found=ModelNotFound)
    model, alert = _served_decision(response.body)
    run.answer(i, model, response.headers.get(ROUTE_HEADER), alert, latency)


async def _score_grpc(run: _Run, client: AsyncFraudgateClient, i: int) -> None:
    call = prepare_infer(
        run.batch.features[i],
        model=run.settings.model,
        routing_key=int(run.cards[i]),
        transaction_id=run.ids[i],
        amount=float(run.amounts[i]),
        request_id=f"replay-{run.ids[i]}",
        routing_parameter=run.settings.routing_parameter,
        extra_parameters={"event_time": run.event_s[i]},
    )
    result = await client.infer(call)
    run.answer(i, result.model_name, result.route, bool(result.is_fraud), result.latency_ms)


async def _score_all(
    run: _Run,
    client: AsyncFraudgateClient,
    progress: Callable[[_Tally], object],
) -> float:
    settings = run.settings
    n = run.n
    interval = (
        0.0
        if not settings.rate or not math.isfinite(settings.rate) or settings.rate <= 0
        else 1.0 / settings.rate
    )
    next_index = 0
    started = time.perf_counter()
    path = f"/v2/models/{settings.model}/infer"
    pool = (
        Http1Pool(
            settings.url,
            max_connections=max(1, settings.concurrency),
            timeout=settings.timeout,
            headers={"content-type": "application/json"},
        )
        if settings.protocol == "rest"
        else None
    )

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            run.now_ns = max(run.now_ns, int(run.event_ns[i]))
            if interval:
                wait = started + i * interval - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                if pool is not None:
                    await _score_rest(run, pool, i, path)
                else:
                    await _score_grpc(run, client, i)
            except Exception as exc:  # counted by kind; the replay goes on
                run.tally.fail(exc)
            if i % 64 == 0:
                progress(run.tally)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, settings.concurrency))))
    finally:
        if pool is not None:
            await pool.aclose()
    progress(run.tally)
    return time.perf_counter() - started


async def _send_due(
    run: _Run, client: AsyncFraudgateClient, until_ns: int, progress: Callable[[int], object]
) -> None:
    """POST every queued label known by ``until_ns`` (simulated), in batches."""
    labels = run.labels
    size = max(1, run.settings.label_batch)
    while labels.error is None:
        rows = run.due(until_ns, size)
        if not rows:
            return
        payload = [run.label_row(i) for i in rows]
        try:
            result = await _send_patiently(client, payload, size)
        except FraudgateError as exc:
            labels.error = f"{type(exc).__name__}: {exc}"
            for i in rows:  # back in the queue: they count as undelivered
                heapq.heappush(labels.pending, (until_ns + 1, i))
            return
        labels.sent += len(payload)
        labels.batches += 1
        labels.inserted += result.inserted
        labels.updated += result.updated
        labels.unchanged += result.unchanged
        labels.rejected += result.rejected_count
        labels.unknown += result.unknown_count
        labels.unknown_examples.extend(
            result.unknown_transaction_ids[: max(0, 5 - len(labels.unknown_examples))]
        )
        for row in payload:
            labels.by_source[row["source"]] += 1
        for i in rows:
            alert = run.flagged[i]
            labels.delivered_delays.append(
                float(labels.investigation[i] if alert else labels.chargeback[i])
            )
        progress(labels.sent)


LABEL_ATTEMPTS = 3


async def _send_patiently(
    client: AsyncFraudgateClient, payload: list[dict[str, Any]], size: int
) -> FeedbackResult:
    """`send_labels`, tried again after a time-out or a dropped connection: a busy server may
    be slow to commit, and labels are idempotent (a repeat counts as unchanged)."""
    for attempt in range(1, LABEL_ATTEMPTS + 1):
        try:
            return await client.send_labels(payload, batch_size=size)
        except ConnectionFailed:
            if attempt == LABEL_ATTEMPTS:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


async def _label_feed(
    run: _Run,
    client: AsyncFraudgateClient,
    stop: asyncio.Event,
    progress: Callable[[int], object],
) -> None:
    """While scoring runs: every ``label_interval_s`` deliver what the simulated clock reached."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), run.settings.label_interval_s)
        await _send_due(run, client, run.now_ns, progress)


def _label_summary(run: _Run, horizon_ns: int | None) -> dict[str, Any]:
    labels = run.labels
    out: dict[str, Any] = {
        "sent": labels.sent,
        "inserted": labels.inserted,
        "updated": labels.updated,
        "unchanged": labels.unchanged,
        "unknown": labels.unknown,
        "unknown_examples": labels.unknown_examples[:5],
        "rejected": labels.rejected,
        "batches": labels.batches,
        "by_source": dict(sorted(labels.by_source.items())),
        "pending": len(labels.pending),  # known only after the replay's horizon
        "unlabelled": int((run.answered & ~run.flagged & ~run.fraud).sum()),
        "horizon": None if horizon_ns is None else _iso_ns(horizon_ns),
        "delays": asdict(labels.delays),
        "error": labels.error,
    }
    if labels.delivered_delays:
        delay = np.asarray(labels.delivered_delays)
        out["delay_days"] = {
            "p50": round(float(np.percentile(delay, 50)), 3),
            "p90": round(float(np.percentile(delay, 90)), 3),
            "max": round(float(delay.max()), 3),
            "within_7d": round(float((delay <= 7).mean()), 4),
        }
    return out


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


async def replay_async(
    settings: ReplaySettings,
    batch: ReplayBatch | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the replay (see the module docstring) and return its summary; writes replay.json."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = console or Console()
    if batch is None:
        with console.status("reading transactions and computing features"):
            batch = select_transactions(settings)
    run = _Run(settings, batch)
    began_at = datetime.now(UTC)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
    )
    async with _client(settings) as client, _client(settings, LABEL_TIMEOUT_S) as feedback:
        with progress:
            scoring = progress.add_task("scoring", total=run.n, info="")
            labelling = progress.add_task("labels", total=None, info="")

            def on_score(tally: _Tally) -> None:
                split = " ".join(f"{k}:{v}" for k, v in sorted(tally.split.items()))
                errors = sum(tally.errors.values())
                clock = _iso_ns(run.now_ns)[:16] if run.n else ""
                progress.update(
                    scoring,
                    completed=tally.done,
                    info=f"ok {tally.ok} err {errors} {split} | simulated {clock}",
                )

            def on_label(sent: int) -> None:
                progress.update(
                    labelling, completed=sent, info=f"pending {len(run.labels.pending)}"
                )

            stop = asyncio.Event()
            feed = asyncio.create_task(_label_feed(run, feedback, stop, on_label))
            try:
                elapsed = await _score_all(run, client, on_score)
            finally:
                stop.set()
                await feed
            horizon_ns: int | None = None
            if settings.label_horizon_days is not None and run.n:
                horizon_ns = int(run.event_ns[-1] + settings.label_horizon_days * 86_400 * _NS)
            final = horizon_ns if horizon_ns is not None else np.iinfo(np.int64).max
            await _send_due(run, feedback, final, on_label)
            progress.update(labelling, total=run.labels.sent)
    tally = run.tally
    sent = run.n
    summary: dict[str, Any] = {
        "url": settings.url,
        "protocol": settings.protocol,
        "model": settings.model,
        "routing_parameter": settings.routing_parameter,
        "transactions": sent,
        "requested_transactions": settings.transactions,
        "rate_limit_rps": settings.rate if 0 < settings.rate < math.inf else None,
        "concurrency": settings.concurrency,
        "seed": settings.seed,
        "source": batch.source,
        "window": {"from": batch.window[0], "to": batch.window[1]},
        "frauds_replayed": int(run.fraud.sum()),
        "sent": sent,
        "ok": tally.ok,
        "errors": dict(sorted(tally.errors.items())),
        "error_examples": tally.error_examples,
        "split": dict(sorted(tally.split.items())),
        "split_share": {k: round(v / tally.ok, 4) for k, v in sorted(tally.split.items())}
        if tally.ok
        else {},
        "routes": dict(sorted(tally.routes.items())),
        "flagged": dict(sorted(tally.flagged.items())),
        "labels": _label_summary(run, horizon_ns),
        "elapsed_s": round(elapsed, 3),
        "throughput_rps": round(tally.ok / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": {
            "p50": _percentile(tally.latencies, 50),
            "p99": _percentile(tally.latencies, 99),
            "mean": round(float(np.mean(tally.latencies)), 3) if tally.latencies else None,
        },
        "started_at": began_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    workdir = Path(settings.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "replay.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def run_replay(
    settings: ReplaySettings,
    batch: ReplayBatch | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Blocking wrapper of :func:`replay_async` (runs its own event loop)."""
    return asyncio.run(replay_async(settings, batch, console, show_progress))
