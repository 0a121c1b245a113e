import math

import numpy as np
import pytest

from fraudgate.analysis.counts import LATENCY_GROWTH, LatencyHistogram
from fraudgate.analysis.latency import percentile, summarise_latency


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_are_within_a_bucket_of_numpy(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(1.5, 0.5, 20_000), rng.lognormal(4.0, 0.3, 400)])
    summary = summarise_latency(LatencyHistogram.from_values(values))
    for p in (summary.p50, summary.p95, summary.p99):
        exact = float(np.quantile(values, p.q, method="inverted_cdf"))  # nearest rank
        assert p.bucket_low_ms <= exact < p.bucket_high_ms
        assert abs(math.log(p.estimate_ms / exact)) < math.log(LATENCY_GROWTH)
    assert summary.mean_ms == pytest.approx(values.mean())
    assert summary.max_ms == values.max()


def test_percentiles_of_small_and_empty_histograms():
    assert math.isnan(percentile(LatencyHistogram(), 0.5).estimate_ms)
    one = LatencyHistogram.from_values([12.0])
    assert percentile(one, 0.99).estimate_ms <= 12.0
    assert percentile(one, 0.5).bucket_low_ms <= 12.0 < percentile(one, 0.5).bucket_high_ms
    huge = LatencyHistogram.from_values([1e7])  # beyond the top edge: the exact maximum
    assert percentile(huge, 0.5).estimate_ms == 1e7
    with pytest.raises(ValueError, match="expected 0 < q <= 1"):
        percentile(one, 1.5)
