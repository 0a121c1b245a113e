"""`fraudgate report`: the terminal summary, report.json against its schema, and a
self-contained report.html, from a real ledger filled with a simulated experiment."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from fraudgate.cli import app
from fraudgate.evaluation import evaluate
from fraudgate.ledger import open_ledger
from fraudgate.report.evaluation import SCHEMA_PATH, evaluation_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from evaluation_sim import DAY, T0, A, B, Scenario, config, fill  # noqa: E402

SCHEMA = json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'ledger.db'}"
    with open_ledger(url) as store:
        fill(store, Scenario(days=45))
    return url


def _validate(document: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("day", [1, 10, 60])  # nothing matured, few labels, a decision
def test_report_json_matches_its_schema_early_and_late(ledger_url: str, day: int) -> None:
    with open_ledger(ledger_url) as store:
        result = evaluate(config(ledger_url), store, as_of=T0 + day * DAY)
    document = json.loads(json.dumps(evaluation_json(result), allow_nan=False))
    _validate(document)
    assert document["decision"]["outcome"] == result.decision.outcome.value


def test_an_empty_experiment_still_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with open_ledger(url) as store:
        result = evaluate(config(url), store, as_of=T0)
    assert result.decision.outcome.value == "CONTINUE"
    _validate(json.loads(json.dumps(evaluation_json(result), allow_nan=False)))


def test_the_cli_prints_the_decision_and_writes_json_and_html(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {
        "models": [{"name": A, "uri": "models:/m@champion"}, {"name": B, "uri": "models:/m@c"}],
        "experiment": {
            "name": "ab",
            "default": A,
            "candidates": [{"name": A, "weight": 80}, {"name": B, "weight": 20}],
            "mirror": {"percent": 100},
        },
        "ledger": {"url": ledger_url},
        "analysis": {"maturity_days": 30, "planned_frauds": 200},
    }
    path = tmp_path / "fraudgate.yaml"
    path.write_text(yaml.safe_dump(data))
    out_json, out_html = tmp_path / "out" / "report.json", tmp_path / "out" / "report.html"
    as_of = "2024-01-14T00:00:00Z"
    args = ["report", "--config", str(path), "--as-of", as_of]
    result = CliRunner().invoke(app, [*args, "--json", str(out_json), "--html", str(out_html)])
    assert result.exit_code == 0, result.output
    assert "Decision:" in result.output and "McNemar" in result.output
    assert "always-valid" in result.output and "<0.0001 McNemar" in result.output
    document = json.loads(out_json.read_text())
    _validate(document)
    assert document["as_of_iso"] == as_of
    page = out_html.read_text()
    # seven plots and the estimates against the realised figures (no registry: no drift plot)
    assert page.count('src="data:image/png;base64,') == 8
    assert "no score drift, no registry at" in result.output
    assert not re.search(r'(src|href)="(https?:)?//', page)  # self-contained: no CDN, no links
    assert document["decision"]["outcome"] in page
    # --recount: the same report after dropping the count cache's rows
    again = CliRunner().invoke(app, [*args, "--recount", "--json", str(out_json)])
    assert again.exit_code == 0, again.output
    assert "stored rows dropped, every day recounted" in again.output
    assert json.loads(out_json.read_text())["decision"] == document["decision"]
    # `fraudgate ledger rollup`: a small ledger is left to be counted live; above the size the
    # count cache is for, its closed days are kept
    rollup = ["ledger", "rollup", "--config", str(path), "--as-of", as_of]
    small = CliRunner().invoke(app, rollup)
    assert small.exit_code == 0 and "reports count it live" in small.output, small.output
    monkeypatch.setattr("fraudgate.ledger.store.MIN_DECISIONS", 1)
    rolled = CliRunner().invoke(app, rollup)
    assert rolled.exit_code == 0 and re.search(r"[1-9]\d* closed days kept", rolled.output), (
        rolled.output
    )


def test_the_cli_names_a_bad_as_of_time(tmp_path: Path) -> None:
    path = tmp_path / "fraudgate.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": A, "uri": "models:/m@x"}]}))
    result = CliRunner().invoke(app, ["report", "--config", str(path), "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "--as-of: expected ISO-8601" in result.output and "'yesterday'" in result.output
