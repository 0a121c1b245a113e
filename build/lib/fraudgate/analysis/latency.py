"""Latency percentiles from a mergeable histogram (stdlib only, no raw samples kept).

A percentile is read from the fixed log-spaced buckets of ``LatencyHistogram``: the bucket that
holds the q-th ranked value is found by cumulative counts and the value is interpolated
geometrically inside it, so the error is bounded by the bucket's width (about 12%) whatever the
traffic, and histograms from many replicas or days merge exactly before reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fraudgate.analysis.counts import LatencyHistogram, latency_bucket_edges


@dataclass(frozen=True, slots=True)
class Percentile:
    """The q-quantile's estimate and the edges of the bucket that holds it (its resolution)."""

    q: float
    estimate_ms: float
    bucket_low_ms: float
    bucket_high_ms: float


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    mean_ms: float
    max_ms: float
    p50: Percentile
    p95: Percentile
    p99: Percentile


def percentile(histogram: LatencyHistogram, q: float) -> Percentile:
    """The q-quantile (0 < q <= 1) of the recorded latencies; nan when nothing was recorded.

    Rank ``ceil(q * n)`` (the nearest-rank definition) locates the bucket; inside it the value
    moves geometrically from the low to the high edge with the rank's position, and is capped
    at the histogram's exact maximum (which also bounds the open top bucket).
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"percentile q: expected 0 < q <= 1, got {q}")
    n = histogram.count
    if n == 0:
        return Percentile(q, math.nan, math.nan, math.nan)
    rank = max(1, math.ceil(q * n))
    seen = 0
    for index, count in enumerate(histogram.buckets):
        if count and seen + count >= rank:
            low, high = latency_bucket_edges(index)
            position = (rank - seen - 0.5) / count
            if low == 0.0:  # underflow bucket: no geometric scale below the first edge
                estimate = high * position
            elif math.isinf(high):
                estimate = histogram.max_ms
            else:
                estimate = low * (high / low) ** position
            estimate = min(estimate, histogram.max_ms)
            return Percentile(q, estimate, low, histogram.max_ms if math.isinf(high) else high)
        seen += count
    raise AssertionError("unreachable: rank exceeds the histogram's count")


def summarise_latency(histogram: LatencyHistogram) -> LatencySummary:
    """p50, p95, p99, mean and maximum of one arm's latencies."""
    n = histogram.count
    return LatencySummary(
        count=n,
        mean_ms=histogram.sum_ms / n if n else math.nan,
        max_ms=histogram.max_ms if n else math.nan,
        p50=percentile(histogram, 0.50),
        p95=percentile(histogram, 0.95),
        p99=percentile(histogram, 0.99),
    )
