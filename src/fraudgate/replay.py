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
3. **Labels.** Every replayed transaction's truth arrives ``delay`` days after it happened, with
   ``delay ~ LogNormal(median=label_delay_days, sigma=1)`` capped at 90 days: most within days,
   a long tail of weeks (chargebacks, investigations). Labels are sorted by that simulated label
   time and POSTed to ``/feedback`` in batches; ``label_wall_seconds > 0`` spreads the batches
   over that much wall time (time compressed) instead of sending them back to back.

The run stops by itself after ``N`` transactions and only talks to the given URL. It returns a
summary dict (also written to ``<workdir>/replay.json``): sent / ok / errors by status, the
observed split per model, labels sent / inserted / unknown, throughput, latency p50 / p99.
"""

from __future__ import annotations

import asyncio
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
import pandas as pd

from fraudgate.client import AsyncFraudgateClient, FraudgateError, ScoreResult
from fraudgate.client.wire import DEFAULT_MODEL, DEFAULT_ROUTING_PARAMETER
from fraudgate.config import ADMIN_TOKEN_ENV
from fraudgate.report.replay import render_summary

__all__ = [
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


@dataclass(frozen=True)
class ReplaySettings:
    url: str
    transactions: int = 1000
    rate: float = 200.0  # requests per second; <= 0 or inf: as fast as the workers go
    concurrency: int = 16
    label_delay_days: float = 3.0  # median delay; 0 = labels known right away
    label_wall_seconds: float = 0.0  # spread label batches over this much wall time
    label_batch: int = 500
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
    pool = np.flatnonzero(day.to_numpy() >= start_day)
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


def label_schedule(frame: pd.DataFrame, median_days: float, seed: int) -> pd.DataFrame:
    """One label per transaction, at timestamp + LogNormal delay (median ``median_days``)."""
    rng = np.random.default_rng([seed, 1])
    n = len(frame)
    if median_days <= 0:
        delay = np.zeros(n)
    else:
        delay = rng.lognormal(mean=math.log(median_days), sigma=LABEL_DELAY_SIGMA, size=n)
        delay = np.minimum(delay, MAX_LABEL_DELAY_DAYS)
    labels = pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].to_numpy(),
            "is_fraud": frame["is_fraud"].to_numpy(),
            "label_time": frame["timestamp"] + pd.to_timedelta(delay, unit="D"),
            "amount": frame["amount"].to_numpy(),
            "delay_days": delay,
        }
    )
    return labels.sort_values("label_time", kind="stable", ignore_index=True)


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

    def record(self, result: ScoreResult) -> None:
        self.ok += 1
        self.split[result.model_name] += 1
        if result.route:
            self.routes[result.route] += 1
        if result.is_fraud:
            self.flagged[result.model_name] += 1
        self.latencies.append(result.latency_ms)

    def fail(self, error: BaseException) -> None:
        if isinstance(error, FraudgateError):
            key = str(error.status) if error.status is not None else type(error).__name__
            message = error.message
        else:
            key, message = type(error).__name__, str(error)
        self.errors[key] += 1
        self.error_examples.setdefault(key, message[:300])


def _client(settings: ReplaySettings) -> AsyncFraudgateClient:
    return AsyncFraudgateClient(
        settings.url,
        protocol=settings.protocol,
        grpc_address=settings.grpc_address,
        token=settings.token,
        timeout=settings.timeout,
        model=settings.model,
        routing_parameter=settings.routing_parameter,
        max_connections=max(settings.concurrency, 1),
    )


async def _score_all(
    client: AsyncFraudgateClient,
    settings: ReplaySettings,
    batch: ReplayBatch,
    progress: Callable[[_Tally], object],
) -> tuple[_Tally, float]:
    tally = _Tally()
    n = len(batch.frame)
    ids = batch.frame["transaction_id"].tolist()
    cards = batch.frame["card_id"].tolist()
    amounts = batch.frame["amount"].tolist()
    interval = (
        0.0
        if not settings.rate or not math.isfinite(settings.rate) or settings.rate <= 0
        else 1.0 / settings.rate
    )
    next_index = 0
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal next_index
        while True:
            i = next_index
            if i >= n:
                return
            next_index += 1
            due = started + i * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                result = await client.score(
                    batch.features[i],
                    routing_key=int(cards[i]),
                    transaction_id=ids[i],
                    amount=float(amounts[i]),
                    request_id=f"replay-{ids[i]}",
                )
            except Exception as exc:  # counted by kind; the replay goes on
                tally.fail(exc)
            else:
                tally.record(result)
            progress(tally)

    await asyncio.gather(*(worker() for _ in range(max(1, settings.concurrency))))
    return tally, time.perf_counter() - started


async def _deliver_labels(
    client: AsyncFraudgateClient,
    settings: ReplaySettings,
    labels: pd.DataFrame,
    progress: Callable[[int], object],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sent": 0,
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "unknown": 0,
        "rejected": 0,
        "batches": 0,
        "error": None,
    }
    if len(labels):
        delay = labels["delay_days"].to_numpy()
        out["delay_days"] = {
            "p50": round(float(np.percentile(delay, 50)), 3),
            "p90": round(float(np.percentile(delay, 90)), 3),
            "max": round(float(delay.max()), 3),
            "within_7d": round(float((delay <= 7).mean()), 4),
        }
    size = max(1, settings.label_batch)
    n_batches = math.ceil(len(labels) / size)
    pause = (
        settings.label_wall_seconds / n_batches
        if n_batches and settings.label_wall_seconds > 0
        else 0.0
    )
    unknown: list[str] = []  # the first few, as examples
    unknown_count = 0
    for b in range(n_batches):
        part = labels.iloc[b * size : (b + 1) * size]
        times = part["label_time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = [
            {
                "transaction_id": tid,
                "is_fraud": bool(fraud),
                "label_time": when,
                "amount": float(amount),
            }
            for tid, fraud, when, amount in zip(
                part["transaction_id"], part["is_fraud"], times, part["amount"], strict=True
            )
        ]
        try:
            result = await client.send_labels(rows, batch_size=size)
        except FraudgateError as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            break
        out["sent"] += len(rows)
        out["batches"] += 1
        out["inserted"] += result.inserted
        out["updated"] += result.updated
        out["unchanged"] += result.unchanged
        out["rejected"] += result.rejected_count
        unknown_count += result.unknown_count
        unknown.extend(result.unknown_transaction_ids[: max(0, 5 - len(unknown))])
        progress(out["sent"])
        if pause and b + 1 < n_batches:
            await asyncio.sleep(pause)
    out["unknown"] = unknown_count
    out["unknown_examples"] = unknown[:5]
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
    labels = label_schedule(batch.frame, settings.label_delay_days, settings.seed)
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
    async with _client(settings) as client:
        with progress:
            scoring = progress.add_task("scoring", total=len(batch.frame), info="")

            def on_score(tally: _Tally) -> None:
                done = tally.ok + sum(tally.errors.values())
                split = " ".join(f"{k}:{v}" for k, v in sorted(tally.split.items()))
                errors = sum(tally.errors.values())
                progress.update(scoring, completed=done, info=f"ok {tally.ok} err {errors} {split}")

            tally, elapsed = await _score_all(client, settings, batch, on_score)
            labelling = progress.add_task("labels", total=len(labels), info="")
            label_summary = await _deliver_labels(
                client, settings, labels, lambda sent: progress.update(labelling, completed=sent)
            )
    sent = len(batch.frame)
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
        "frauds_replayed": int(batch.frame["is_fraud"].sum()),
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
        "labels": label_summary,
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
