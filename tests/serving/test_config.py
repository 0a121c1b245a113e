"""The YAML config: defaults, the demo's file, and errors that name field/expected/received."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fraudgate.config import ConfigError, load_config, write_default_config


def test_default_config_round_trips(tmp_path: Path):
    path = write_default_config(tmp_path / "fraudgate.yaml", "sqlite:////x/mlflow.db")
    config = load_config(path)
    assert config.registry == "sqlite:////x/mlflow.db" and config.tracking_uri == config.registry
    assert [m.name for m in config.models] == ["fraud-v1-baseline", "fraud-v2-candidate"]
    assert config.model("fraud-v2-candidate").uri == "models:/fraud-detection@challenger"
    assert config.models[0].threshold is None and config.models[0].runtime == "auto"
    assert config.models[0].batching.max_batch_size == 32
    assert config.server.http_port == 8080 and config.server.grpc_port == 8081
    assert config.experiment is None and config.ledger is None


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


MODEL = {"name": "m", "uri": "models:/fraud-detection@champion"}


def test_minimal_config_and_raw_sections(tmp_path: Path):
    config = load_config(
        _write(
            tmp_path,
            {"models": [MODEL], "experiment": {"kind": "ab"}, "ledger": {"url": "sqlite://"}},
        )
    )
    assert config.models[0].threshold is None and config.server.host == "127.0.0.1"
    assert config.experiment == {"kind": "ab"} and config.ledger == {"url": "sqlite://"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"models": [MODEL], "extra": 1}, "extra: unknown key"),
        ({"models": []}, "models: expected a non-empty list"),
        ({"models": [{"name": "m"}]}, "models[0].uri: required"),
        (
            {"models": [{**MODEL, "threshold": 1.5}]},
            "models[0].threshold: expected a number between 0.0 and 1.0, received 1.5",
        ),
        (
            {"models": [{**MODEL, "threshold": "high"}]},
            "models[0].threshold: expected a number, received 'high'",
        ),
        ({"models": [{**MODEL, "runtime": "gpu"}]}, "models[0].runtime: expected one of"),
        (
            {"models": [{**MODEL, "batching": {"max_batch_size": 0}}]},
            "models[0].batching.max_batch_size: expected an integer between 1",
        ),
        ({"models": [MODEL, MODEL]}, "models[1].name: expected a unique name"),
        ({"models": [{**MODEL, "name": "a b"}]}, "models[0].name"),
        (
            {"models": [MODEL], "server": {"http_port": "80"}},
            "server.http_port: expected an integer, received '80'",
        ),
        ({"models": [MODEL], "server": {"http_port": 9000, "grpc_port": 9000}}, "server.grpc_port"),
        ({"models": [MODEL], "server": {"colour": 1}}, "server.colour: unknown key"),
        ({"models": [MODEL], "ledger": [1]}, "ledger: expected a mapping"),
        ([1, 2], "config: expected a mapping"),
    ],
)
def test_errors_name_field_expected_and_received(tmp_path: Path, data, message):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    assert message in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
