import subprocess
import sys

import numpy as np
import pytest

from fraudgate.analysis.counts import (
    LATENCY_BUCKETS,
    ConfusionCounts,
    LatencyHistogram,
    PairedCounts,
    PairedTable,
    latency_bucket,
    latency_bucket_edges,
)


def test_importing_counts_loads_no_statistics_library():
    code = (
        "import sys, fraudgate.analysis.counts, fraudgate.analysis.latency\n"
        "heavy = [m for m in ('numpy', 'scipy', 'statsmodels', 'pandas') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_confusion_counts_keep_their_old_shape_and_add_the_new_fields():
    a = ConfusionCounts(tp=3, fp=1, fn=2, tn=10, unlabelled=4, unlabelled_flagged=1, tp_amount=9.0)
    b = ConfusionCounts(tp=1, fn=1, fn_amount=5.0, fn_amount_sq=25.0)
    total = a + b
    assert (total.tp, total.fn, total.fn_amount_sq, total.tp_amount) == (4, 3, 25.0, 9.0)
    assert total.as_dict() == {"tp": 4, "fp": 1, "fn": 3, "tn": 10}  # what demo.py renders
    assert total.frauds == 7 and total.alerts == 6 and total.alert_rate == 6 / 22
    assert ConfusionCounts().alert_rate != ConfusionCounts().alert_rate  # nan when empty


def test_paired_tables_add_and_count_from_flags():
    a = [True, True, False, False, True]
    b = [True, False, True, False, True]
    table = PairedTable.from_flags(a, b, amounts=[1.0, 2.0, 3.0, 4.0, 5.0])
    assert (table.both, table.only_a, table.only_b, table.neither) == (2, 1, 1, 1)
    assert table.both_amount == 6.0 and table.both_amount_sq == 26.0
    assert table.flagged_a == 3 and table.flagged_b == 3 and table.discordant == 2
    counts = PairedCounts(fraud=table, legit=PairedTable(neither=10, only_b=2))
    doubled = counts + counts
    assert doubled.fraud.both == 4 and doubled.legit.only_b == 4
    assert doubled.transactions.total == 2 * (5 + 12)


def test_latency_buckets_tile_the_line_and_hold_their_values():
    for index in range(1, LATENCY_BUCKETS - 1):
        low, high = latency_bucket_edges(index)
        assert latency_bucket_edges(index + 1)[0] == pytest.approx(high)
        assert latency_bucket(low) == index
        assert latency_bucket(high * (1 - 1e-9)) == index
    rng = np.random.default_rng(0)
    for value in rng.lognormal(0, 3, 2000):
        low, high = latency_bucket_edges(latency_bucket(value))
        assert low <= value < high
    assert latency_bucket(0.0) == 0 and latency_bucket(float("nan")) == 0
    assert latency_bucket(1e9) == LATENCY_BUCKETS - 1


def test_latency_histograms_merge_exactly():
    rng = np.random.default_rng(1)
    values = rng.lognormal(1.0, 0.8, 3000)
    whole = LatencyHistogram.from_values(values)
    parts = LatencyHistogram.from_values(values[:1000]) + LatencyHistogram.from_values(
        values[1000:]
    )
    assert parts.buckets == whole.buckets and parts.count == 3000
    assert parts.sum_ms == pytest.approx(values.sum()) and parts.max_ms == values.max()
    with pytest.raises(ValueError, match="LatencyHistogram.buckets"):
        LatencyHistogram((1, 2, 3))
