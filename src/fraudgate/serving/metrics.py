"""Prometheus metrics for one server (a private `CollectorRegistry`, no global state).

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` latency):

* ``fraudgate_inference_requests_total{model,version,protocol}``
* ``fraudgate_inference_failures_total{model,version,protocol,code}`` (code = HTTP status)
* ``fraudgate_inference_request_duration_seconds{model,version,protocol}`` (histogram)
* ``fraudgate_batch_size{model,version}`` (histogram, rows per model call after batching)
* ``fraudgate_fraud_score{model,version}`` (histogram of predicted fraud probabilities)
* ``fraudgate_decisions_total{model,version,decision}`` (decision = fraud | legit)
* ``fraudgate_model_ready{model,version}`` (gauge, 1 when serving)
* ``fraudgate_model_runtime_fallback{model,version}`` (gauge, 1 when served by a fallback runtime)
* ``fraudgate_expected_frauds_total{model,version,decision}`` (the summed fraud probabilities of
  the decisions: with ``fraudgate_decisions_total``, the label-free estimate's counters,
  `fraudgate.analysis.estimated`)

`fraudgate.serving.monitoring.Monitor` adds the background gauges (traffic share, label-joined
and estimated performance, drift).

With an experiment or a ledger, `PlaneCollector` (the experiment plane's ``collect``) adds:

* ``fraudgate_experiment_weight{experiment,model}`` (gauge, the live weights)
* ``fraudgate_mirror_rows_total{outcome}`` (outcome = journaled | scored | dropped | failed)
* ``fraudgate_ledger_decisions_total{role}`` and ``fraudgate_ledger_write_failures_total``
* ``fraudgate_ledger_quarantined_lines`` / ``_rows`` (journal lines the store refused)
* the ledger pipeline's health (`fraudgate.serving.supervisor.LedgerHealth.collect`)

Requests for unknown models are counted under ``model="_unknown"`` to bound label cardinality.

The hot path must not pay for prometheus_client's per-value locks (eight of them per request):
all updates happen on the event-loop thread, so the values are plain Python numbers in small
slotted objects, and a custom collector turns them into metric families at scrape time. The
exposition itself is prometheus_client's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from fraudgate.analysis.estimated import ExpectedCounts

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


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Gauge(Counter):
    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = float(value)


class Histogram:
    """Buckets as in Prometheus: a value goes to the first bucket whose bound is >= value."""

    __slots__ = ("bounds", "counts", "sum", "_bounds_array")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last = +Inf
        self.sum = 0.0
        self._bounds_array = np.asarray(bounds, dtype=np.float64)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, values: np.ndarray) -> None:
        if values.shape[0] <= 4:
            for value in values.tolist():
                self.observe(value)
            return
        index = np.searchsorted(self._bounds_array, values, side="left")
        counts = np.bincount(index, minlength=len(self.counts))
        for i, count in enumerate(counts.tolist()):
            if count:
                self.counts[i] += count
        self.sum += float(values.sum())

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out

    @property
    def count(self) -> int:
        return sum(self.counts)


class ModelMetrics:
    """Everything recorded for one model version, resolved once at load."""

    __slots__ = (
        "requests",
        "latency",
        "batch_size",
        "score",
        "fraud",
        "legit",
        "ready",
        "fallback",
        "flagged_score",
        "passed_score",
        "served",
    )

    def __init__(self) -> None:
        self.requests = {p: Counter() for p in PROTOCOLS}
        self.latency = {p: Histogram(LATENCY_BUCKETS) for p in PROTOCOLS}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.score = Histogram(SCORE_BUCKETS)
        self.fraud = Counter()
        self.legit = Counter()
        self.ready = Gauge()
        self.fallback = Gauge()  # 1: a fallback runtime serves this version
        self.flagged_score = Counter()  # summed scores of flagged rows (expected true frauds)
        self.passed_score = Counter()  # summed scores of rows let through (expected missed)
        self.served = Counter()  # rows served through the experiment (routed to this arm)

    def expected(self) -> ExpectedCounts:
        """The label-free estimate's counters (`fraudgate.analysis.estimated`)."""
        return ExpectedCounts(
            self.fraud.value, self.legit.value, self.flagged_score.value, self.passed_score.value
        )


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], ModelMetrics] = {}
        self.other_requests: dict[tuple[str, str, str], Counter] = {}
        self.failures: dict[tuple[str, str, str, str], Counter] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def for_model(self, model: str, version: str) -> ModelMetrics:
        key = (model, version)
        metrics = self.models.get(key)
        if metrics is None:
            metrics = self.models[key] = ModelMetrics()
        return metrics

    def request(self, model: str, version: str, protocol: str) -> None:
        """Count a request that never reached a loaded model (unknown / not ready)."""
        metrics = self.models.get((model, version))
        if metrics is not None:
            metrics.requests[protocol].inc()
            return
        key = (model, version, protocol)
        counter = self.other_requests.get(key)
        if counter is None:
            counter = self.other_requests[key] = Counter()
        counter.inc()

    def failure(self, model: str, version: str, protocol: str, code: int) -> None:
        key = (model, version, protocol, str(code))
        counter = self.failures.get(key)
        if counter is None:
            counter = self.failures[key] = Counter()
        counter.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        labels3 = ["model", "version", "protocol"]
        requests = CounterMetricFamily(
            "fraudgate_inference_requests",
            "Inference requests received, per model, version and protocol.",
            labels=labels3,
        )
        failures = CounterMetricFamily(
            "fraudgate_inference_failures",
            "Inference requests that failed, per model, version, protocol and HTTP status code.",
            labels=[*labels3, "code"],
        )
        latency = HistogramMetricFamily(
            "fraudgate_inference_request_duration_seconds",
            "Time from a transport request to its response, in seconds.",
            labels=labels3,
        )
        batch = HistogramMetricFamily(
            "fraudgate_batch_size",
            "Rows scored per model call, after adaptive batching.",
            labels=["model", "version"],
        )
        score = HistogramMetricFamily(
            "fraudgate_fraud_score", "Predicted fraud probabilities.", labels=["model", "version"]
        )
        decisions = CounterMetricFamily(
            "fraudgate_decisions",
            "Decisions taken at the model's threshold, per model, version and decision.",
            labels=["model", "version", "decision"],
        )
        ready = GaugeMetricFamily(
            "fraudgate_model_ready",
            "1 when the model version is loaded and serving, else 0.",
            labels=["model", "version"],
        )
        fallback = GaugeMetricFamily(
            "fraudgate_model_runtime_fallback",
            "1 when the model version is served by a fallback runtime (the configured or "
            "preferred one failed to build or verify), else 0.",
            labels=["model", "version"],
        )
        expected = CounterMetricFamily(
            "fraudgate_expected_frauds",
            "Summed fraud probabilities of the decisions, per decision: expected true frauds "
            "(fraud) and expected missed frauds (legit), for label-free precision and recall.",
            labels=["model", "version", "decision"],
        )
        for (model, version), mm in list(m.models.items()):
            for protocol in PROTOCOLS:
                requests.add_metric([model, version, protocol], mm.requests[protocol].value)
                hist = mm.latency[protocol]
                latency.add_metric([model, version, protocol], hist.buckets(), hist.sum)
            batch.add_metric([model, version], mm.batch_size.buckets(), mm.batch_size.sum)
            score.add_metric([model, version], mm.score.buckets(), mm.score.sum)
            decisions.add_metric([model, version, "fraud"], mm.fraud.value)
            decisions.add_metric([model, version, "legit"], mm.legit.value)
            ready.add_metric([model, version], mm.ready.value)
            fallback.add_metric([model, version], mm.fallback.value)
            expected.add_metric([model, version, "fraud"], mm.flagged_score.value)
            expected.add_metric([model, version, "legit"], mm.passed_score.value)
        for (model, version, protocol), counter in list(m.other_requests.items()):
            requests.add_metric([model, version, protocol], counter.value)
        for labels, counter in list(m.failures.items()):
            failures.add_metric(list(labels), counter.value)
        yield from (requests, failures, latency, batch, score, decisions, ready, fallback, expected)


def observe_scores(metrics: ModelMetrics, scores: np.ndarray, decisions: np.ndarray) -> None:
    """Record a batch of scores and their decisions."""
    n = scores.shape[0]
    if n == 1:
        value = float(scores[0])
        metrics.score.observe(value)
        if decisions[0]:
            metrics.fraud.value += 1
            metrics.flagged_score.value += value
        else:
            metrics.legit.value += 1
            metrics.passed_score.value += value
        return
    flags = decisions.reshape(-1)
    fraud = int(np.count_nonzero(flags))
    metrics.fraud.value += fraud
    metrics.legit.value += n - fraud
    metrics.score.observe_many(scores)
    total = float(scores.sum(dtype=np.float64))
    flagged = float(scores[flags].sum(dtype=np.float64)) if fraud else 0.0
    metrics.flagged_score.value += flagged
    metrics.passed_score.value += total - flagged


class PlaneCollector:
    """The experiment plane's metrics, read at scrape time from the parts that count them.

    ``health``: `LedgerHealth` or None; ``state``: the `ExperimentState` or None; ``recorder``:
    its ``records`` and ``counts`` (`fraudgate.serving.recording.RecordCounts`); ``mirror``:
    `fraudgate.serving.shadow.MirrorCounts`; ``quarantine``: the journal's quarantine summary
    cache (`fraudgate.ledger.quarantine.SummaryCache`) or None.
    """

    def __init__(
        self,
        *,
        health: Any,
        state: Any,
        recorder: Any,
        mirror: Any,
        quarantine: Any,
        feedback: Any = None,
    ) -> None:
        self.feedback = feedback  # FeedbackHandler with a ledger (its ``received``), or None
        self.health = health
        self.state = state
        self.recorder = recorder
        self.mirror = mirror
        self.quarantine = quarantine

    def collect(self) -> Iterator[Metric]:
        if self.health is not None:
            yield from self.health.collect()
        if self.state is not None:
            spec = self.state.spec
            weights = GaugeMetricFamily(
                "fraudgate_experiment_weight",
                "Live traffic weight of each candidate of the experiment.",
                labels=["experiment", "model"],
            )
            for name, weight in spec.weights.items():
                weights.add_metric([spec.name, name], weight)
            yield weights
        mirror = CounterMetricFamily(
            "fraudgate_mirror_rows",
            "Mirrored rows: journaled (for the shipper to score), scored in shadow (by this "
            "server), dropped (queue full or not recordable), failed.",
            labels=["outcome"],
        )
        counts = self.mirror
        for outcome, value in (
            ("journaled", counts.journaled),
            ("scored", counts.scored),
            ("dropped", counts.dropped),
            ("failed", counts.failed),
        ):
            mirror.add_metric([outcome], value)
        yield mirror
        if self.recorder.records:
            recorded = CounterMetricFamily(
                "fraudgate_ledger_decisions",
                "Decisions recorded: served ones durable before their response (journal or "
                "commit), mirror ones journaled or queued for the commit.",
                labels=["role"],
            )
            recorder_counts = self.recorder.counts
            recorded.add_metric(["served"], recorder_counts.served)
            recorded.add_metric(["mirror"], recorder_counts.mirror)
            yield recorded
            yield CounterMetricFamily(
                "fraudgate_ledger_write_failures",
                "Batches of served decisions that could not be recorded (answered 503).",
                value=recorder_counts.failures,
            )
        if self.feedback is not None:
            from fraudgate.ledger.records import LABEL_SOURCES

            labels = CounterMetricFamily(
                "fraudgate_labels_received",
                "Labels stored through this server's POST /feedback, per source "
                "(investigation, chargeback, manual).",
                labels=["source"],
            )
            received = self.feedback.received
            for source in LABEL_SOURCES:
                labels.add_metric([source], received.get(source, 0))
            yield labels
        if self.quarantine is not None:  # journal lines the store refused (at most 1 read/s)
            held = self.quarantine.get()
            yield GaugeMetricFamily(
                "fraudgate_ledger_quarantined_lines",
                "Journal lines the ledger store refused (their data), set aside in quarantine: "
                "see `fraudgate ledger quarantine`.",
                value=held.lines,
            )
            yield GaugeMetricFamily(
                "fraudgate_ledger_quarantined_rows",
                "Decisions in the quarantined journal lines (not in the ledger until re-shipped).",
                value=held.rows,
            )
