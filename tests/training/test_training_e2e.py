"""Simulate -> features -> train v1/v2 -> register in a real MLflow store -> load back."""

import base64
import json
import os

import numpy as np
import pytest

from fraudgate.data.contract import to_matrix
from fraudgate.data.simulator import SimulationConfig, simulate
from fraudgate.registry import Registry, resolve_tracking_uri
from fraudgate.report.progress import StepProgress
from fraudgate.training.run import simulated_training_data, train_and_register
from fraudgate.training.windows import split

CFG = SimulationConfig(
    seed=11, days=60, transactions_per_day=4_000, customers=2_000, terminals=4_000, emerging_day=32
)


def _train(workdir):
    sim = simulate(CFG)
    registry = Registry(resolve_tracking_uri(None, workdir))
    with StepProgress(3, enabled=False) as steps:
        data = simulated_training_data(sim, steps)
        result = train_and_register(data, registry, workdir, steps, seed=CFG.seed, rounds=120)
    return data, registry, result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("train")
    return workdir, *_train(workdir)


def test_candidate_catches_the_emerging_pattern(trained):
    workdir, _data, _registry, result = trained
    offline = json.loads((workdir / "offline.json").read_text())
    for model in offline["models"].values():
        assert model["validation"]["met_precision_target"]
        assert model["validation"]["precision"] >= 0.95
    gap = offline["comparison"]["all_frauds"]["recall_gap"]
    assert gap["low"] > 0.1, gap  # clearly higher, not just by chance
    testing = offline["comparison"]["card_testing"]
    assert testing["recall_gap"]["low"] > 0.5
    assert offline["registry"]["aliases"] == {"champion": "1", "challenger": "2"}


def test_no_holdout_row_in_any_training_set(trained):
    _workdir, data, _registry, result = trained
    parts = split(data.features, data.plan, data.start)  # raises LeakageError on any overlap
    holdout = set(parts["holdout"]["transaction_id"])
    for name in ("v1_train", "v1_valid", "v2_train", "v2_valid"):
        assert holdout.isdisjoint(parts[name]["transaction_id"])
    for key, model in result.models.items():
        assert model.fitted.training_rows == len(parts[f"{key}_train"])


def test_registered_challenger_scores_like_the_trained_model(trained):
    _workdir, data, registry, result = trained
    loaded = registry.load("models:/fraud-detection@challenger")
    assert loaded.serving_name == "fraud-v2-candidate"
    assert loaded.threshold == pytest.approx(result.models["v2"].threshold.threshold)
    x = to_matrix(data.features.iloc[:500])
    expected = result.models["v2"].fitted.booster.predict(x)
    np.testing.assert_allclose(loaded.pyfunc.predict(x), expected, atol=1e-12)
    np.testing.assert_allclose(loaded.booster.predict(x), expected, atol=1e-12)
    champion = registry.load("models:/fraud-detection@champion")
    assert champion.serving_name == "fraud-v1-baseline"


def test_same_seed_same_scores(trained, tmp_path):
    _workdir, data, _registry, result = trained
    _data2, _registry2, again = _train(tmp_path)
    for key in ("v1", "v2"):
        np.testing.assert_array_equal(
            result.models[key].holdout_scores, again.models[key].holdout_scores
        )


def test_registry_leaves_the_environment_alone(tmp_path, monkeypatch):
    """MLflow exports the tracking URI to the environment; a later default must not follow it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    Registry(resolve_tracking_uri(None, tmp_path / "a"))
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert resolve_tracking_uri(None, tmp_path / "b").endswith("/b/mlflow.db")


def test_html_report_has_the_tables_and_plots(trained):
    from html.parser import HTMLParser

    workdir, _data, _registry, result = trained
    page = (workdir / "offline.html").read_text()

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.images, self.cells = [], [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "table":
                self.tables.append(attrs.get("id"))
            if tag == "img":
                self.images.append(attrs["src"])

        def handle_data(self, data):
            self.cells.append(data.strip())

    parsed = Collect()
    parsed.feed(page)
    assert parsed.tables == ["metrics", "gaps"]
    assert len(parsed.images) == 2
    for src in parsed.images:
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"))
        assert png.startswith(b"\x89PNG")
    v2 = result.models["v2"]
    assert f"{v2.threshold.threshold:.4f}" in parsed.cells
    assert "card_testing" in parsed.cells
