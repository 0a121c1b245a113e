"""The /metrics exposition passes Prometheus' own linter (`promtool check metrics`)."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

ROW = [0.1] * 30
SEED_PAYLOAD = {
    "inputs": [{"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": ROW}],
    "parameters": {"content_type": "np"},
}


def test_metrics_pass_promtool(server):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make test` installs it (Debian package prometheus)")
    url = server.http_url
    assert (
        httpx.post(f"{url}/v2/models/fraud-v1-baseline/infer", json=SEED_PAYLOAD).status_code == 200
    )
    assert httpx.post(f"{url}/v2/models/nope/infer", json=SEED_PAYLOAD).status_code == 404
    exposition = httpx.get(f"{url}/metrics").text
    assert "fraudgate_inference_requests_total" in exposition
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", (
        "promtool lint findings:\n" + result.stdout + result.stderr
    )
