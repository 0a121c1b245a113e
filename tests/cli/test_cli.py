"""The thin commands without a server: where they take URL/token/experiment from, their exit
codes, and the rendering they hand to `fraudgate.report` (real config files, real SQLite)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fraudgate.cli import app
from fraudgate.cli.experiment import parse_weights, server_target
from fraudgate.config import write_default_config
from fraudgate.replay import target_from_config

TOKEN = "cli-tests-token-0123456789"


def _out(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("FRAUDGATE_ADMIN_TOKEN", raising=False)
    path = write_default_config(tmp_path / "fraudgate.yaml", "sqlite:////x/mlflow.db", token=TOKEN)
    data = yaml.safe_load(path.read_text())
    data["server"].update(host="0.0.0.0", http_port=18080, grpc_port=18081)
    data["experiment"]["name"] = "cards-ab"
    path.write_text(yaml.safe_dump(data))
    return path


def test_server_target_comes_from_the_config_through_fraudgate_config(config_path: Path):
    target = server_target(None, None, config_path)
    assert target.url == "http://127.0.0.1:18080"  # 0.0.0.0: the client uses the loopback
    assert (target.token, target.experiment) == (TOKEN, "cards-ab")
    override = server_target("http://other:1/", "t0ken-given", config_path, "other-ab")
    assert (override.url, override.token, override.experiment) == (
        "http://other:1",
        "t0ken-given",
        "other-ab",
    )
    default = server_target(None, None, None)
    assert (default.url, default.token) == ("http://127.0.0.1:8080", None)
    assert default.experiment == "fraud-detection-ab-test"


def test_replay_takes_the_same_address_from_the_config(config_path: Path):
    target = target_from_config(config_path)
    assert target.url == "http://127.0.0.1:18080" and target.token == TOKEN
    assert target.model == "fraud-v1-baseline" and target.experiment == "cards-ab"
    assert target_from_config(None).url is None


def test_a_broken_config_is_exit_2_naming_the_field(config_path: Path):
    data = yaml.safe_load(config_path.read_text())
    data["server"]["http_port"] = "eighty"
    config_path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["experiment", "show", "--config", str(config_path)])
    assert result.exit_code == 2
    assert "server.http_port: expected an integer" in _out(result)
    result = CliRunner().invoke(app, ["replay", "--config", str(config_path)])
    assert result.exit_code == 2 and "server.http_port" in _out(result)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_exit_2():
    url = f"http://127.0.0.1:{_free_port()}"
    for args in (["experiment", "show"], ["experiment", "set", "--weights", "a=1,b=1"]):
        result = CliRunner().invoke(app, [*args, "--url", url, "--token", TOKEN])
        assert result.exit_code == 2, result.output
        assert f"cannot reach {url}" in _out(result)


def test_parse_weights():
    assert parse_weights("a=80, b=20", None) == {"a": 80, "b": 20}
    assert parse_weights("30/70", ["a", "b"]) == {"a": 30, "b": 70}
    with pytest.raises(Exception, match="one per candidate"):
        parse_weights("1,2,3", ["a", "b"])
    with pytest.raises(Exception, match="non-negative integer, received -1"):
        parse_weights("a=-1", None)


def test_feedback_into_a_ledger_renders_counts_and_rejected_rows(tmp_path: Path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "transaction_id,is_fraud,label_time,amount\n"
        "t1,1,2026-03-01T00:00:00Z,10\n"
        "t2,0,2026-03-01T00:00:00Z,\n"
        "t3,maybe,2026-03-01T00:00:00Z,\n"
    )
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = CliRunner().invoke(app, ["feedback", str(labels), "--ledger", url])
    assert result.exit_code == 1, result.output  # a rejected row; the good ones are stored
    out = _out(result)
    assert "labels from" in out and "row 3: is_fraud" in out
    assert "no decision recorded for 2 transaction ids: t1, t2" in out
    again = CliRunner().invoke(app, ["feedback", str(labels), "--ledger", url])
    assert again.exit_code == 1 and "unchanged" in _out(again)


def test_quarantine_of_an_empty_journal(tmp_path: Path):
    result = CliRunner().invoke(app, ["ledger", "quarantine", "--journal", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "0 lines, 0 decisions in quarantine" in _out(result)
