"""Mirror copies scored by the shipper, off the serving process (``acknowledge: journal``).

The server does not score its mirror copies itself: it journals the mirrored rows' features with
the served decisions of the same tick (`mirror_entry`, in the served batch's ``mirror`` entries:
one base64 FP32 matrix per mirror model, a few microseconds per tick). The shipper scores them
(`MirrorScorer`) and inserts the mirror decisions in the same transaction as the served ones, so
a mirror copy is scored exactly once too. This is how Seldon Core runs a mirror: in its own model
server, never on the serving path; here it also keeps the serving core's CPU for serving.

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fraudgate.ledger.records import DecisionBatch, MirrorEntry, MirrorModel
from fraudgate.runtimes.base import KINDS
from fraudgate.runtimes.loader import load_runtime

if TYPE_CHECKING:
    from fraudgate.runtimes.base import Runtime

log = logging.getLogger(__name__)

__all__ = ["MirrorScorer", "mirror_entry", "model_spec"]

RETRY_LOAD_S = 60.0  # a model that failed to load is tried again after this long
# per-row columns a mirror decision copies from the served decision of the same request
_COPIED = ("request_id", "transaction_id", "experiment", "arm", "amount", "routing_key_hash")


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
        runtime = self._runtime(spec)
        started = time.perf_counter()
        scores = np.asarray(runtime.predict(x), dtype=np.float32).reshape(-1)
        latency_ms = (time.perf_counter() - started) * 1000.0  # the scoring call's
        copied = [_take(getattr(batch, name), index) for name in _COPIED]
        request_id, transaction_id, experiment, arm, amount, routing_key_hash = copied
        # the transaction's time: the served batch's event time, else its decision time
        event = batch.decided_at if batch.event_time is None else batch.event_time
        event_time = _take(event, index)
        cut = float(np.float32(spec.threshold))
        mirror = DecisionBatch(
            n=n,
            request_id=request_id,
            transaction_id=transaction_id,
            decided_at=time.time(),
            experiment=experiment,
            arm=arm,
            role="mirror",
            model_name=spec.name,
            model_version=spec.version,
            score=scores.tolist(),
            threshold=float(spec.threshold),
            is_fraud_decision=(scores >= cut).tolist(),
            latency_ms=latency_ms,
            amount=amount,
            routing_key_hash=routing_key_hash,
            event_time=event_time,
        )
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
