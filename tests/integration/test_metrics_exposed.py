"""`/metrics` of a real `fraudgate serve` with the demo's experiment and ledger, under traffic.

One server (80/20 split, 100% shadow, SQLite ledger, journal + child shipper), 1,200 keyed
requests of random rows drawn like the models' drift reference (plus 300 rows shifted in two
features), labels for half the transactions through ``POST /feedback``. Then every figure the
monitoring exports is recomputed here from what the test sent and the server answered, and the
README's metrics table must list exactly the families (name, type, labels) the server exposes.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from experiment_config import EXPERIMENT, TOKEN, V1, V2, write_config
from load import payload, send_many

from fraudgate.analysis.drift import SCORE_COLUMN, drift
from fraudgate.data.contract import FEATURE_NAMES
from fraudgate.registry import Registry
from fraudgate.serving.monitoring import MONITOR_METRICS

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
N_PLAIN, N_SHIFTED = 1200, 300
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def scraped(trained_registry, module_launch, tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    config = write_config(root / "fraudgate.yaml", trained_registry.tracking_uri, seed=5)
    data = yaml.safe_load(config.read_text())
    data["monitoring"] = {
        "refresh_s": 0.2,
        "drift_refresh_s": 0.2,
        "ledger_refresh_s": 0.3,
        "traffic_window_s": 600,
        "drift_sample_rows": 5000,
        "drift_min_rows": 50,
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    server = module_launch(config)
    rng = np.random.default_rng(21)
    rows = rng.normal(size=(N_PLAIN + N_SHIFTED, 30)).astype(np.float32)
    rows[N_PLAIN:, :2] += 2.0  # a shifted population in the first two features
    requests = [
        (f"m-{i}", f"card-{i}", payload(f"m-{i}", f"card-{i}", row=rows[i].tolist()))
        for i in range(len(rows))
    ]
    results = asyncio.run(send_many(server.url, requests, concurrency=8))
    bad = httpx.post(f"{server.url}/v2/models/{V1}/infer", content=b'{"inputs": 1}')
    assert bad.status_code == 400  # one failure, so fraudgate_inference_failures_total has labels
    assert all(r.status == 200 for r in results), [r.body for r in results if r.status != 200][:3]
    by_id = {r.request_id: r for r in results}
    truth = rng.random(len(rows)) < 0.3
    labelled = [i for i in range(len(rows)) if i % 2 == 0]
    now = time.time()
    labels = [
        {
            "transaction_id": f"m-{i}",
            "is_fraud": bool(truth[i]),
            "label_time": now,
            "source": "investigation" if i % 4 == 0 else "chargeback",
        }
        for i in labelled
    ]
    with httpx.Client(base_url=server.url, timeout=30, headers=AUTH) as client:
        answer = client.post("/feedback", json={"labels": labels}).json()
    # stored even when the shipper has not moved their decisions yet (joined when it has)
    assert answer["inserted"] == len(labels), answer
    exposition = _settled(server.url, len(labels))
    return {
        "rows": rows,
        "results": [by_id[f"m-{i}"] for i in range(len(rows))],
        "truth": truth,
        "labelled": labelled,
        "exposition": exposition,
        "registry": trained_registry,
    }


def _settled(url: str, labels: int, timeout: float = 60.0) -> str:
    """/metrics once the monitor has read the ledger with every label and seen all traffic."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics").text
        values = _values(text)
        frauds = sum(
            values.get(
                f'fraudgate_model_labelled_frauds{{experiment="{EXPERIMENT}",model="{m}"}}', 0
            )
            for m in (V1, V2)
        )
        coverage = [
            values.get(f'fraudgate_label_coverage_ratio{{experiment="{EXPERIMENT}",model="{m}"}}')
            for m in (V1, V2)
        ]
        if frauds > 0 and all(c is not None and c > 0.45 for c in coverage):
            time.sleep(1.0)  # one more refresh: every counter read after the last request
            return httpx.get(f"{url}/metrics").text
        time.sleep(0.3)
    shown = [
        line for line in text.splitlines() if re.match(r"fraudgate_(model|label|ledger)", line)
    ]
    raise AssertionError(f"the ledger gauges did not settle in {timeout:.0f} s: {shown}")


def _values(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("fraudgate_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _families(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Exposed family -> (type, label names) from the text exposition."""
    types: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            labels.setdefault(name, set())
        elif line.startswith("fraudgate_"):
            sample = re.match(r"([a-z_]+)(?:\{(.*)\})? ", line)
            assert sample is not None, line
            name, raw = sample.group(1), sample.group(2) or ""
            family = next(
                (
                    f
                    for f in (name, re.sub(r"_(bucket|sum|count|created)$", "", name))
                    if f in types
                ),
                None,
            )
            assert family is not None, line
            labels[family].update(k for k in re.findall(r'([a-z_]+)="', raw) if k != "le")
    return {name: (types[name], frozenset(labels[name])) for name in types}


def _readme_table() -> dict[str, tuple[str, frozenset[str], str]]:
    """The README's metrics table: name -> (type, labels, when)."""
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\| `(fraudgate_[a-z_]+)` \| (\w+) \|([^|]*)\|([^|]*)\|", line)
        if match:
            name, kind, raw_labels, when = match.groups()
            names = frozenset(re.findall(r"`([a-z_]+)`", raw_labels))
            rows[name] = (kind, names, when.strip())
    return rows


def test_readme_metrics_table_lists_exactly_what_metrics_exposes(scraped):
    exposed = _families(scraped["exposition"])
    table = _readme_table()
    # the table's rows for `acknowledge: commit` servers only cannot show on this journal server
    expected = {
        name: (kind, labels)
        for name, (kind, labels, when) in table.items()
        if "acknowledge: commit" not in when
    }
    assert set(exposed) == set(expected), (
        f"missing from the README: {sorted(set(exposed) - set(expected))}; "
        f"not exposed: {sorted(set(expected) - set(exposed))}"
    )
    for name, (kind, labels) in expected.items():
        assert exposed[name] == (kind, labels), (name, exposed[name], (kind, labels))
    # the monitoring's metrics, which `monitoring.enabled: false` drops with their alerts
    assert set(exposed) >= MONITOR_METRICS, sorted(MONITOR_METRICS - set(exposed))


def test_served_share_and_deviation_follow_the_answers(scraped):
    values = _values(scraped["exposition"])
    served = {m: sum(r.model == m for r in scraped["results"]) for m in (V1, V2)}
    weights = {V1: 0.8, V2: 0.2}
    for model in (V1, V2):
        key = f'{{experiment="{EXPERIMENT}",model="{model}"}}'
        assert values[f"fraudgate_experiment_served_total{key}"] == served[model]
        share = served[model] / sum(served.values())
        assert values[f"fraudgate_experiment_traffic_share{key}"] == pytest.approx(share)
        assert values[f"fraudgate_experiment_traffic_share_deviation{key}"] == pytest.approx(
            share - weights[model]
        )


def test_label_joined_gauges_equal_the_counts_of_the_labels_sent(scraped):
    values = _values(scraped["exposition"])
    results, truth = scraped["results"], scraped["truth"]
    labelled = set(scraped["labelled"])
    for model in (V1, V2):
        mine = [i for i, r in enumerate(results) if r.model == model]
        flagged = {i: bool(results[i].body["outputs"][1]["data"][0]) for i in mine}
        tp = sum(1 for i in mine if i in labelled and flagged[i] and truth[i])
        fp = sum(1 for i in mine if i in labelled and flagged[i] and not truth[i])
        fn = sum(1 for i in mine if i in labelled and not flagged[i] and truth[i])
        alerts = sum(flagged.values())
        key = f'{{experiment="{EXPERIMENT}",model="{model}"}}'
        assert values[f"fraudgate_model_labelled_frauds{key}"] == tp + fn
        assert values[f"fraudgate_label_pending_decisions{key}"] == sum(
            1 for i in mine if i not in labelled
        )
        coverage = sum(1 for i in mine if i in labelled) / len(mine)
        assert values[f"fraudgate_label_coverage_ratio{key}"] == pytest.approx(coverage)
        assert values[f"fraudgate_model_alert_rate{key}"] == pytest.approx(alerts / len(mine))
        precision = values[f"fraudgate_model_precision{key}"]
        if tp + fp:
            assert precision == pytest.approx(tp / (tp + fp))
        else:
            assert math.isnan(precision)
        assert values[f"fraudgate_model_recall{key}"] == pytest.approx(tp / (tp + fn))
    sources = {"investigation": 0, "chargeback": 0}
    for i in labelled:
        sources["investigation" if i % 4 == 0 else "chargeback"] += 1
    for source, count in {**sources, "manual": 0}.items():
        assert values[f'fraudgate_labels_received_total{{source="{source}"}}'] == count


def test_shadow_disagreement_and_estimates_from_the_scores(scraped):
    values = _values(scraped["exposition"])
    registry, rows = scraped["registry"], scraped["rows"]
    flags = {}
    for model, booster in ((V1, registry.champion), (V2, registry.challenger)):
        scores = booster.predict(rows).astype(np.float32)
        flags[model] = scores >= np.float32(registry.thresholds[model])
    disagreement = float(np.mean(flags[V1] != flags[V2]))  # 100% shadow: every row paired
    assert values[
        f'fraudgate_shadow_disagreement_ratio{{experiment="{EXPERIMENT}"}}'
    ] == pytest.approx(disagreement)
    for model in (V1, V2):
        served = [r for r in scraped["results"] if r.model == model]
        scores = np.array([r.body["outputs"][0]["data"][0] for r in served], dtype=np.float64)
        flagged = np.array([r.body["outputs"][1]["data"][0] for r in served], dtype=bool)
        key = f'{{experiment="{EXPERIMENT}",model="{model}"}}'
        assert values[f"fraudgate_model_estimated_precision{key}"] == pytest.approx(
            scores[flagged].sum() / flagged.sum(), rel=1e-6
        )
        assert values[f"fraudgate_model_estimated_recall{key}"] == pytest.approx(
            scores[flagged].sum() / scores.sum(), rel=1e-6
        )
        for decision, mask in (("fraud", flagged), ("legit", ~flagged)):
            labels = f'decision="{decision}",model="{model}",version="1"'
            counter = f"fraudgate_expected_frauds_total{{{labels}}}"
            assert values[counter] == pytest.approx(scores[mask].sum(), rel=1e-6)
        assert values[f'fraudgate_model_runtime_fallback{{model="{model}",version="1"}}'] == 0


def test_drift_gauges_equal_psi_and_ks_of_the_served_rows(scraped):
    values = _values(scraped["exposition"])
    registry = Registry(scraped["registry"].tracking_uri)
    for model, uri in ((V1, "champion"), (V2, "challenger")):
        reference = registry.load(f"models:/fraud-detection@{uri}").drift_reference
        assert reference is not None
        served = [i for i, r in enumerate(scraped["results"]) if r.model == model]
        x = scraped["rows"][served]
        scores = np.array([scraped["results"][i].body["outputs"][0]["data"][0] for i in served])
        expected = {r.column: r for r in drift(reference, x, scores.astype(np.float64))}
        assert set(expected) == {*FEATURE_NAMES, SCORE_COLUMN}
        for column, result in expected.items():
            key = f'{{feature="{column}",model="{model}"}}'
            psi, ks = (
                values[f"fraudgate_drift_psi{key}"],
                values[f"fraudgate_drift_ks_statistic{key}"],
            )
            # the same FP32 rows and FP32 scores on both sides (the JSON decimals of the scores
            # round back to the server's FP32 values): equal, the score like every feature
            assert psi == pytest.approx(result.psi, rel=1e-9), column
            assert ks == pytest.approx(result.ks_statistic, rel=1e-9), column
        assert values[f'fraudgate_drift_sample_rows{{model="{model}"}}'] == len(served)
        # the shifted rows (a fifth of the traffic) move the first two features, not the others
        first, second = FEATURE_NAMES[:2]
        assert expected[first].psi > 0.1 and expected[second].psi > 0.1
        assert max(expected[f].psi for f in FEATURE_NAMES[2:]) < expected[first].psi
