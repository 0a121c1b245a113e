"""Prometheus metrics for one server (a private `CollectorRegistry`, no global state).

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` latency):

* ``fraudgate_inference_requests_total{model,version,protocol}``
* ``fraudgate_inference_failures_total{model,version,protocol,code}`` (code = HTTP status)
* ``fraudgate_inference_request_duration_seconds{model,version,protocol}`` (histogram)
* ``fraudgate_batch_size{model,version}`` (histogram, rows per model call after batching)
* ``fraudgate_fraud_score{model,version}`` (histogram of predicted fraud probabilities)
* ``fraudgate_decisions_total{model,version,decision}`` (decision = fraud | legit)
* ``fraudgate_model_ready{model,version}`` (gauge, 1 when serving)

Requests for unknown models are counted under ``model="_unknown"`` to bound label cardinality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

UNKNOWN_MODEL = "_unknown"
PROTOCOLS = ("rest", "grpc")
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(slots=True)
class ModelMetrics:
    """Label children resolved once per model version (labels() is slow on the hot path)."""

    requests: dict[str, Any]
    latency: dict[str, Any]
    batch_size: Any
    score: Any
    fraud: Any
    legit: Any
    ready: Any


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ("model", "version", "protocol")
        self.requests = Counter(
            "fraudgate_inference_requests",
            "Inference requests received, per model, version and protocol.",
            labels,
            registry=r,
        )
        self.failures = Counter(
            "fraudgate_inference_failures",
            "Inference requests that failed, per model, version, protocol and HTTP status code.",
            (*labels, "code"),
            registry=r,
        )
        self.latency = Histogram(
            "fraudgate_inference_request_duration_seconds",
            "Time from a decoded transport request to its response, in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "fraudgate_batch_size",
            "Rows scored per model call, after adaptive batching.",
            ("model", "version"),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.score = Histogram(
            "fraudgate_fraud_score",
            "Predicted fraud probabilities.",
            ("model", "version"),
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "fraudgate_decisions",
            "Decisions taken at the model's threshold, per model, version and decision.",
            ("model", "version", "decision"),
            registry=r,
        )
        self.model_ready = Gauge(
            "fraudgate_model_ready",
            "1 when the model version is loaded and serving, else 0.",
            ("model", "version"),
            registry=r,
        )

    def for_model(self, model: str, version: str) -> ModelMetrics:
        return ModelMetrics(
            requests={p: self.requests.labels(model, version, p) for p in PROTOCOLS},
            latency={p: self.latency.labels(model, version, p) for p in PROTOCOLS},
            batch_size=self.batch_size.labels(model, version),
            score=self.score.labels(model, version),
            fraud=self.decisions.labels(model, version, "fraud"),
            legit=self.decisions.labels(model, version, "legit"),
            ready=self.model_ready.labels(model, version),
        )

    def failure(self, model: str, version: str, protocol: str, code: int) -> None:
        self.failures.labels(model, version, protocol, str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def observe_scores(metrics: ModelMetrics, scores: np.ndarray, decisions: np.ndarray) -> None:
    """Record a batch of scores and decisions (vectorised for large batches)."""
    n = scores.shape[0]
    fraud = int(np.count_nonzero(decisions))
    if fraud:
        metrics.fraud.inc(fraud)
    if n - fraud:
        metrics.legit.inc(n - fraud)
    histogram = metrics.score
    if n <= 4:
        for value in scores.tolist():
            histogram.observe(value)
        return
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    upper = getattr(histogram, "_upper_bounds", None)
    if buckets is None or total is None or upper is None:  # pragma: no cover - client changed
        for value in scores.tolist():
            histogram.observe(value)
        return
    # same semantics as Histogram.observe: value goes to the first bucket with value <= bound
    index = np.searchsorted(np.asarray(upper, dtype=np.float64), scores, side="left")
    counts = np.bincount(index, minlength=len(upper))
    for i, count in enumerate(counts.tolist()):
        if count:
            buckets[i].inc(count)
    total.inc(float(scores.sum()))
