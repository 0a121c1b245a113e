"""Decision batches as servers build them, and the mirror copies that ride along.

`decision_batch` is the one constructor of a `fraudgate.ledger.records.DecisionBatch` (served
and mirror decisions, in the server and in the shipper alike); `mirror_decisions` is the one
implementation of "score these copies with this model and make their mirror decisions", used by
the server's in-process shadow scoring (`fraudgate.serving.shadow`) and by the shipper.

With ``acknowledge: journal`` the server does not score its mirror copies itself: it journals the
mirrored rows' features with the served decisions of the same tick (`mirror_entry`, under the
served batch's ``"mirror"`` key: one base64 FP32 matrix per mirror model, a few microseconds per
tick). The shipper scores them (`MirrorScorer`) and inserts the mirror decisions in the same
transaction as the served ones, so a mirror copy is scored exactly once too. This is how Seldon
Core runs a mirror: in its own model server, never on the serving path; here it also keeps the
serving core's CPU for serving.

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
from typing import Any

import numpy as np

from fraudgate.ledger.records import DecisionBatch, DecisionRow, batch_rows

log = logging.getLogger(__name__)

MIRROR_KEY = "mirror"
RETRY_LOAD_S = 60.0  # a model that failed to load is tried again after this long


def decision_batch(
    *,
    n: int,
    request_id: Any,
    transaction_id: Any,
    decided_at: float,
    experiment: Any,
    arm: Any,
    role: str,
    model_name: str,
    model_version: str,
    score: Any,
    threshold: float,
    is_fraud_decision: Any,
    latency_ms: Any,
    amount: Any,
    routing_key_hash: Any,
    mirror: list[dict[str, Any]] | None = None,
) -> DecisionBatch:
    """``n`` decisions in columns: each value a sequence of ``n`` (one per row) or one value
    shared by every row; ``mirror``: the served batch's journaled mirror entries, if any."""
    batch: DecisionBatch = {
        "n": n,
        "request_id": request_id,
        "transaction_id": transaction_id,
        "decided_at": decided_at,
        "experiment": experiment,
        "arm": arm,
        "role": role,
        "model_name": model_name,
        "model_version": model_version,
        "score": score,
        "threshold": threshold,
        "is_fraud_decision": is_fraud_decision,
        "latency_ms": latency_ms,
        "amount": amount,
        "routing_key_hash": routing_key_hash,
    }
    if mirror:
        batch[MIRROR_KEY] = mirror
    return batch


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
    return decision_batch(
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
    )


def model_spec(model: Any, tracking_uri: str) -> dict[str, Any]:
    """What a shipper needs to load and score exactly the model a server deployed.

    ``model``: a `fraudgate.serving.dataplane.DeployedModel`. Its registry version is pinned
    (``models:/<name>/<version>``), so a moved alias does not change what scores the copies."""
    loaded = model.model
    registered = getattr(loaded, "registered_name", "")
    version = getattr(loaded, "version", "")
    uri = f"models:/{registered}/{version}" if registered and version else str(loaded.uri)
    return {
        "name": model.name,
        "version": model.version,
        "uri": uri,
        "tracking_uri": tracking_uri,
        "runtime": model.runtime_name,
        "threshold": model.threshold,
    }


def mirror_entry(spec: dict[str, Any], rows: list[int] | None, x: np.ndarray) -> dict[str, Any]:
    """A served batch's mirror entry: ``rows`` (indices into the batch; None = every row) are
    copied to the model ``spec`` describes; ``x`` holds their features."""
    x = np.ascontiguousarray(x, dtype="<f4")
    return {
        "model": spec,
        "rows": rows,
        "n_features": int(x.shape[1]),
        "x": base64.b64encode(x.data).decode("ascii"),
    }


def mirror_entries(batch: DecisionBatch) -> Sequence[Any]:
    """The mirror entries a journaled served batch carries (none: an empty sequence)."""
    return batch.get(MIRROR_KEY) or ()


def entry_rows(batch: DecisionBatch, entry: Any) -> int:
    """How many copies a mirror entry of ``batch`` holds (0 when it is malformed)."""
    try:
        return int(batch["n"]) if entry["rows"] is None else len(entry["rows"])
    except Exception:
        return 0


def _copied(batch: DecisionBatch, index: list[int] | None) -> CopiedColumns:
    """The copied columns of a served batch's rows ``index`` (None: every row)."""

    def column(name: str) -> Any:
        value = batch[name]
        if isinstance(value, list) and index is not None:
            return [value[i] for i in index]
        return value

    return CopiedColumns(
        request_id=column("request_id"),
        transaction_id=column("transaction_id"),
        experiment=column("experiment"),
        arm=column("arm"),
        amount=column("amount"),
        routing_key_hash=column("routing_key_hash"),
    )


class MirrorScorer:
    """The shipper's side: loads the mirror models on first use and scores journaled copies."""

    def __init__(self) -> None:
        self._runtimes: dict[tuple[str, str, str], Any] = {}
        self._failed: dict[tuple[str, str, str], float] = {}  # key -> when loading failed
        self._lock = threading.Lock()
        self.scored = 0
        self.failed = 0

    def decisions(self, batches: Sequence[DecisionBatch]) -> list[DecisionRow]:
        """The mirror decisions of served ``batches`` that carry mirror entries."""
        rows: list[DecisionRow] = []
        for batch in batches:
            for entry in mirror_entries(batch):
                try:
                    rows.extend(self._score(batch, entry))
                except Exception as exc:  # never blocks shipping the served decisions
                    n = entry_rows(batch, entry)
                    self.failed += n
                    log.error("mirror: %d copies not scored: %s", n, exc)
        return rows

    def _score(self, batch: DecisionBatch, entry: dict[str, Any]) -> list[DecisionRow]:
        spec = entry["model"]
        n_features = int(entry["n_features"])
        x = np.frombuffer(base64.b64decode(entry["x"]), dtype="<f4").reshape(-1, n_features)
        index = entry["rows"]
        n = entry_rows(batch, entry)
        if x.shape[0] != n:
            raise ValueError(f"mirror entry: {x.shape[0]} feature rows for {n} copies")
        target = MirrorTarget(spec["name"], spec["version"], float(spec["threshold"]))
        copied = _copied(batch, index)
        mirror = mirror_decisions(self._runtime(spec).predict, x, target, copied)
        self.scored += n
        return batch_rows(mirror)

    def _runtime(self, spec: dict[str, Any]) -> Any:
        key = (str(spec["tracking_uri"]), str(spec["uri"]), str(spec["runtime"]))
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


def _load(tracking_uri: str, uri: str, runtime: str) -> Any:
    from fraudgate.registry import Registry
    from fraudgate.runtimes import KINDS, build_runtime

    kind = runtime if runtime in KINDS else "auto"
    return build_runtime(Registry(tracking_uri).load(uri), kind=kind)
