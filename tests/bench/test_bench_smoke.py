"""Cheap checks of the serving benchmark's pure parts (no servers, no load, nothing timed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import _wrk  # noqa: E402
import serving  # noqa: E402

# A done() line as wrk 4.1 printed it against the bare echo (latencies in microseconds).
RECORDED = """Running 3s test @ http://127.0.0.1:40123/
  1 threads and 32 connections
  Latency Distribution
     50%    3.58ms
     99%   12.74ms
  26547 requests in 3.00s, 21.32MB read
Requests/sec:   8849.00
FRAUDGATE_BENCH {"requests":26547,"duration_us":3000000,"bytes":22355000,\
"errors":{"connect":0,"read":0,"write":0,"status":2,"timeout":1},\
"latency_us":{"min":210,"mean":3601.50,"max":20050,"stdev":1200.00,\
"p50":3580,"p90":5100,"p99":12740,"p99.9":20050}}
"""


def test_payload_is_the_seeds_request():
    row = [float(i) / 10 for i in range(30)]
    payload = json.loads(serving.build_payload(row))
    assert payload["parameters"] == {"content_type": "np"}
    (tensor,) = payload["inputs"]
    assert tensor == {"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": row}
    with pytest.raises(ValueError):
        serving.build_payload(row[:29])


def test_score_reads_flat_and_nested_outputs():
    assert serving.score_of({"outputs": [{"data": [0.25]}]}) == 0.25
    assert serving.score_of({"outputs": [{"data": [[0.5], [0.1]]}]}) == 0.5


def test_wrk_done_line_is_parsed_with_errors_counted():
    result = _wrk.parse(RECORDED)
    assert result.requests == 26547
    assert result.rps == pytest.approx(8849.0)
    assert (result.p50_ms, result.p99_ms, result.p999_ms) == (3.58, 12.74, 20.05)
    assert result.errors["status"] == 2 and result.error_total == 3
    with pytest.raises(ValueError):
        _wrk.parse("Running 3s test @ http://127.0.0.1:1/\n")


def test_lua_script_embeds_the_body():
    body = serving.build_payload([0.0] * 30)
    script = _wrk.lua_script(body)
    assert body.decode() in script and 'wrk.method = "POST"' in script
    assert _wrk.MARK in script


def test_targets_follow_the_issue():
    def cell(server, c, rps, p50, p99):
        return {"server": server, "protocol": "http", "concurrency": c, "rps": rps,
                "p50_ms": p50, "p99_ms": p99}  # fmt: skip

    cells = [
        cell("fraudgate", 1, 3000, 0.3, 0.5),
        cell("fraudgate", 32, 12000, 2.5, 6.0),
        cell("mlserver", 1, 400, 1.2, 8.0),
        cell("mlserver", 32, 1000, 30.0, 90.0),
    ]
    ratios, targets = serving.ratios_and_targets(cells)
    assert ratios["throughput_ratio_c32"] == pytest.approx(12.0)
    assert targets["throughput_ratio_c32"]["met"] and targets["p99_ms_c32"]["met"]
    assert targets["p50_ratio_c1"]["value"] == pytest.approx(0.25)
    assert targets["p50_ratio_c1"]["met"]


def test_experiment_paired_median_test_is_a_sign_test():
    import experiment
    from scipy import stats

    ratios = [0.91, 0.88, 0.84, 0.87, 0.86, 0.90, 0.83, 0.89, 0.92, 0.86, 0.88, 0.81]
    out = experiment.paired_median_test(ratios, 0.85)
    above = sum(r > 0.85 for r in ratios)  # 9 of 12, none equal to the target
    assert out["throughput_ratio_paired_p_at_most_target"] == pytest.approx(
        stats.binom.sf(above - 1, len(ratios), 0.5)
    )
    low, high = out["throughput_ratio_paired_ci95"]
    ordered = sorted(ratios)
    assert low in ordered and high in ordered and low <= sorted(ratios)[6] <= high
    assert experiment.paired_median_test(ratios[:5], 0.85) == {}


def test_instructions_reads_the_totals_of_every_dump(tmp_path):
    import instructions

    # callgrind writes a dump at each client request (named by it) and another at exit; the
    # first line that counts is "totals:" ("summary:" is 0 after the counters were zeroed)
    def dump(name: str, trigger: str, total: int) -> None:
        text = f"desc: Trigger: {trigger}\nevents: Ir\nsummary: 0\ntotals: {total}\n"
        (tmp_path / name).write_text(text)

    dump("callgrind.out.7", "Program termination", 0)
    dump("callgrind.out.7.1", "Client Request: measured", 1234567)
    dump("callgrind.out.7.2", "Client Request: refresh", 4321)
    assert instructions._total_instructions(tmp_path) == 1234567
    assert instructions._total_instructions(tmp_path, "refresh") == 4321
