"""Mirror copies and their decisions: one implementation for the server and the shipper.

`mirror_decisions` is the one implementation of "score these copies with this model and make
their mirror decisions", used by the server's in-process shadow scoring
(`fraudgate.serving.shadow`) and by the shipper (`MirrorScorer`).

With ``acknowledge: journal`` the server does not score its mirror copies itself: it journals the
mirrored rows' features with the served decisions of the same tick (`mirror_entry`, in the served
batch's ``mirror`` entries: one base64 FP32 matrix per mirror model). The shipper scores them and
inserts the mirror decisions in the same transaction as the served ones, so a mirror copy is
scored exactly once too. This is how Seldon Core runs a mirror: in its own model server, never on
the serving path; here it also keeps the serving core's CPU for serving.

An entry names its model completely (the registry, the exact registered version, the runtime kind
the server used, the threshold and the serving version the server reported), so a shipper needs
no config and scores exactly what the server would have, even after an alias has moved.
Failures (a model that cannot be loaded, a malformed entry) drop that entry's mirror decisions
with an error in the log; the served decisions are always shipped.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudgate.ledger.records import DecisionBatch, MirrorEntry, MirrorModel
from fraudgate.runtimes.base import KINDS
from fraudgate.runtimes.loader import load_runtime

if TYPE_CHECKING:
    from fraudgate.runtimes.base import Runtime

log = logging.getLogger(__name__)

__all__ = [
    "CopiedColumns",
    "MirrorScorer",
    "MirrorTarget",
    "mirror_decisions",
    "mirror_entry",
    "model_spec",
]

RETRY_LOAD_S = 60.0  # a model that failed to load is tried again after this long


@dataclass(frozen=True, slots=True)
class MirrorTarget:
    """The model that scores the copies: its serving name and version and its threshold."""

    name: str
    version: str
    threshold: float


@dataclass(frozen=True, slots=True)
class CopiedColumns:
    """What a mirror decision copies from the served decision of its request, per copy: each a
    sequence of one value per copy, or one value shared by every copy."""

    request_id: Any
    transaction_id: Any
    experiment: Any
    arm: Any
    amount: Any
    routing_key_hash: Any
    event_time: Any = None  # the transactions' event times (None: each decision's time)


def mirror_decisions(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    target: MirrorTarget,
    copied: CopiedColumns,
) -> DecisionBatch:
    """Score the copies ``x`` with ``predict`` (the mirror model's runtime call) and return
    their mirror decisions: FP32 scores, flagged iff score >= the FP32 threshold (as a served
    decision is), latency of the scoring call, the request's columns copied."""
    started = time.perf_counter()
    scores = np.asarray(predict(x), dtype=np.float32).reshape(-1)
    latency_ms = (time.perf_counter() - started) * 1000.0
    return DecisionBatch(
        n=int(scores.shape[0]),
        request_id=copied.request_id,
        transaction_id=copied.transaction_id,
        decided_at=time.time(),
        experiment=copied.experiment,
        arm=copied.arm,
        role="mirror",
        model_name=target.name,
        model_version=target.version,
        score=scores.tolist(),
        threshold=target.threshold,
        is_fraud_decision=(scores >= np.float32(target.threshold)).tolist(),
        latency_ms=latency_ms,
        amount=copied.amount,
        routing_key_hash=copied.routing_key_hash,
        event_time=copied.event_time,
    )


def model_spec(model: Any, tracking_uri: str) -> MirrorModel:
    """What a shipper needs to load and score exactly the model a server deployed.

    ``model``: a `fraudgate.serving.dataplane.DeployedModel`. Its registry version is pinned
    (``models:/<name>/<version>``), so a moved alias does not change what scores the copies."""
    loaded = model.model
    registered = getattr(loaded, "registered_name", "")
    version = getattr(loaded, "version", "")
    uri = f"models:/{registered}/{version}" if registered and version else str(loaded.uri)
    return MirrorModel(
        name=model.name,
        version=model.version,
        uri=uri,
        tracking_uri=tracking_uri,
        runtime=model.runtime_name,
        threshold=model.threshold,
    )


def mirror_entry(spec: MirrorModel, rows: list[int] | None, x: np.ndarray) -> MirrorEntry:
    """A served batch's mirror entry: ``rows`` (indices into the batch; None = every row) are
    copied to the model ``spec`` describes; ``x`` holds their features."""
    x = np.ascontiguousarray(x, dtype="<f4")
    return MirrorEntry(spec, rows, int(x.shape[1]), base64.b64encode(x.data).decode("ascii"))


class MirrorScorer:
    """The shipper's side: loads the mirror models on first use and scores journaled copies."""

    def __init__(self) -> None:
        self._runtimes: dict[tuple[str, str, str], Any] = {}
        self._failed: dict[tuple[str, str, str], float] = {}  # key -> when loading failed
        self._lock = threading.Lock()
        self.scored = 0
        self.failed = 0

    def decisions(self, batches: Sequence[DecisionBatch]) -> list[DecisionBatch]:
        """The mirror decisions of served ``batches`` that carry mirror entries."""
        scored: list[DecisionBatch] = []
        for batch in batches:
            for entry in batch.mirror:
                try:
                    scored.append(self._score(batch, entry))
                except Exception as exc:  # never blocks shipping the served decisions
                    n = entry.copies(batch.n)
                    self.failed += n
                    log.error("mirror: %d copies not scored: %s", n, exc)
        return scored

    def reject(self, entry: object, error: ValueError) -> None:
        """A malformed journaled entry (see `DecisionBatch.from_json`): its copies are lost."""
        log.error("mirror: copies not scored: %s", error)

    def _score(self, batch: DecisionBatch, entry: MirrorEntry) -> DecisionBatch:
        spec = entry.model
        x = np.frombuffer(base64.b64decode(entry.x), dtype="<f4").reshape(-1, entry.n_features)
        index = entry.rows
        n = entry.copies(batch.n)
        if x.shape[0] != n:
            raise ValueError(f"mirror entry: {x.shape[0]} feature rows for {n} copies")
        target = MirrorTarget(spec.name, spec.version, float(spec.threshold))
        mirror = mirror_decisions(self._runtime(spec).predict, x, target, _copied(batch, index))
        self.scored += n
        return mirror

    def _runtime(self, spec: MirrorModel) -> Any:
        key = (spec.tracking_uri, spec.uri, spec.runtime)
        runtime = self._runtimes.get(key)
        if runtime is not None:
            return runtime
        with self._lock:
            failed_at = self._failed.get(key)
            if failed_at is not None and time.monotonic() - failed_at < RETRY_LOAD_S:
                raise RuntimeError(f"{key[1]} failed to load less than {RETRY_LOAD_S:.0f} s ago")
            try:
                runtime = _load(*key)
            except Exception:
                self._failed[key] = time.monotonic()
                raise
            self._failed.pop(key, None)
            self._runtimes[key] = runtime
            log.info("mirror: scoring copies with %s (%s)", key[1], runtime.name)
            return runtime


def _copied(batch: DecisionBatch, index: list[int] | None) -> CopiedColumns:
    """The columns a served batch's rows ``index`` (None: every row) pass to their copies; the
    transaction's time is the served batch's event time, else its decision time."""
    event = batch.decided_at if batch.event_time is None else batch.event_time
    return CopiedColumns(
        request_id=_take(batch.request_id, index),
        transaction_id=_take(batch.transaction_id, index),
        experiment=_take(batch.experiment, index),
        arm=_take(batch.arm, index),
        amount=_take(batch.amount, index),
        routing_key_hash=_take(batch.routing_key_hash, index),
        event_time=_take(event, index),
    )


def _take(column: Any, index: list[int] | None) -> Any:
    """The values of ``column`` (a per-row list, or one shared value) at rows ``index``."""
    if index is None or not isinstance(column, list | tuple):
        return column
    return [column[i] for i in index]


def _load(tracking_uri: str, uri: str, runtime: str) -> Runtime:
    """The runtime for a mirror entry's model, loaded as the server loads it (the model file
    checked in a child process first); an unknown kind in the entry builds ``auto``."""
    kind = runtime if runtime in KINDS else "auto"
    return load_runtime(tracking_uri, uri, kind).runtime
