"""The YAML config: defaults, the demo's file, and errors that name field/expected/received."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fraudgate.config import ConfigError, load_config, write_default_config


def test_default_config_round_trips(tmp_path: Path):
    path = write_default_config(
        tmp_path / "fraudgate.yaml", "sqlite:////x/mlflow.db", experiment=False
    )
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


def test_minimal_config(tmp_path: Path):
    config = load_config(_write(tmp_path, {"models": [MODEL]}))
    assert config.models[0].threshold is None and config.server.host == "127.0.0.1"
    assert config.experiment_spec is None and config.ledger_config is None
    assert not config.ledger_enabled and not config.auth.enabled
    assert config.server.model_management == "admin" and config.server.max_extra_models == 8


def test_demo_config_has_experiment_ledger_and_token(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("FRAUDGATE_ADMIN_TOKEN", raising=False)
    path = write_default_config(tmp_path / "fraudgate.yaml", "sqlite:////x/mlflow.db")
    config = load_config(path)
    spec = config.experiment_spec
    assert spec.name == "fraud-detection-ab-test" and spec.default == "fraud-v1-baseline"
    assert spec.weights == {"fraud-v1-baseline": 80, "fraud-v2-candidate": 20}
    assert spec.mirror.percent == 100 and spec.mirror.name is None
    assert spec.routing.key == "card_id" and spec.routing.source == "parameter"
    assert config.ledger_config.url == f"sqlite:///{(tmp_path / 'ledger.db').resolve()}"
    assert config.ledger_enabled and config.ledger_config.weights_poll_s == 1.0
    assert config.auth.enabled and len(config.auth.token) >= 24 and not config.auth.inference
    assert path.stat().st_mode & 0o077 == 0  # the token is a secret
    other = load_config(write_default_config(tmp_path / "b.yaml", "sqlite:////x/mlflow.db"))
    assert other.auth.token != config.auth.token  # generated per file
    # from the environment: the file names the variable, not the secret
    monkeypatch.setenv("FRAUDGATE_ADMIN_TOKEN", "from-the-environment")
    path = write_default_config(tmp_path / "c.yaml", "sqlite:////x/mlflow.db")
    assert "from-the-environment" not in path.read_text()
    assert load_config(path).auth.token == "from-the-environment"


def test_ledger_defaults_next_to_the_config(tmp_path: Path):
    config = load_config(_write(tmp_path, {"models": [MODEL], "ledger": {}}))
    assert config.ledger_config.url == f"sqlite:///{(tmp_path / 'ledger.db').resolve()}"
    assert config.ledger_enabled
    off = load_config(_write(tmp_path, {"models": [MODEL], "ledger": {"enabled": False}}))
    assert off.ledger_config is not None and not off.ledger_enabled
    ledger = config.ledger_config
    assert (ledger.acknowledge, ledger.shipper, ledger.journal_fsync) == ("journal", "child", False)
    assert ledger.journal_dir == str((tmp_path / "ledger-journal").resolve())
    assert (ledger.max_lag_s, ledger.commit_timeout_ms) == (30.0, 2000)
    custom = {"acknowledge": "commit", "journal_dir": "j", "journal_fsync": True}
    custom |= {"shipper": "external", "max_lag_s": 5, "commit_timeout_ms": 250}
    ledger = load_config(_write(tmp_path, {"models": [MODEL], "ledger": custom})).ledger_config
    assert (ledger.acknowledge, ledger.shipper, ledger.journal_fsync) == (
        "commit",
        "external",
        True,
    )
    assert ledger.journal_dir == str((tmp_path / "j").resolve())
    assert (ledger.max_lag_s, ledger.commit_timeout_ms) == (5.0, 250)


EXPERIMENT = {
    "name": "ab",
    "default": "m",
    "candidates": [{"name": "m", "weight": 1}, {"name": "n", "weight": 1}],
}
TWO = [MODEL, {"name": "n", "uri": "models:/fraud-detection@challenger"}]


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
        ({"models": [MODEL], "ledger": {"url": "mysql://x"}}, "ledger.url: expected a sqlite"),
        ({"models": [MODEL], "ledger": {"enabled": "yes"}}, "ledger.enabled: expected true"),
        ({"models": [MODEL], "ledger": {"colour": 1}}, "ledger.colour: unknown key"),
        (
            {"models": [MODEL], "ledger": {"acknowledge": "later"}},
            "ledger.acknowledge: expected one of ['journal', 'commit'], received 'later'",
        ),
        (
            {"models": [MODEL], "ledger": {"shipper": 3}},
            "ledger.shipper: expected one of ['child', 'external'], received 3",
        ),
        (
            {"models": [MODEL], "ledger": {"journal_fsync": "no"}},
            "ledger.journal_fsync: expected true or false",
        ),
        (
            {"models": [MODEL], "ledger": {"weights_poll_s": -1}},
            "ledger.weights_poll_s: expected a number between",
        ),
        (
            {"models": [MODEL], "ledger": {"max_lag_s": 0}},
            "ledger.max_lag_s: expected a number between 0.1 and 86400.0, received 0",
        ),
        (
            {"models": [MODEL], "ledger": {"commit_timeout_ms": 1.5}},
            "ledger.commit_timeout_ms: expected an integer, received 1.5",
        ),
        ({"models": TWO, "experiment": {"kind": "ab"}}, "experiment.kind"),
        (
            {"models": [MODEL], "experiment": EXPERIMENT},
            "experiment: model 'n' is not served; expected one of the models[].name ['m']",
        ),
        (
            {"models": TWO, "experiment": {**EXPERIMENT, "mirror": {"percent": 101}}},
            "experiment.mirror.percent: expected an integer between 0 and 100, received 101",
        ),
        (
            {"models": TWO, "experiment": {**EXPERIMENT, "default": "x"}},
            "experiment.default: expected one of the candidates",
        ),
        ({"models": [MODEL], "auth": {"token": "short"}}, "auth.token: expected at least 8"),
        (
            {"models": [MODEL], "auth": {"token": "long-enough", "token_env": "X"}},
            "auth: expected one of token or token_env, received both",
        ),
        (
            {"models": [MODEL], "auth": {"token_env": "FRAUDGATE_TEST_UNSET_VARIABLE"}},
            "auth.token_env: expected the environment variable FRAUDGATE_TEST_UNSET_VARIABLE",
        ),
        ({"models": [MODEL], "auth": {"inference": True}}, "auth.inference: true needs"),
        ({"models": [MODEL], "auth": {"user": "x"}}, "auth.user: unknown key"),
        (
            {"models": [MODEL], "server": {"model_management": "open"}},
            "server.model_management: expected one of ['admin', 'off'], received 'open'",
        ),
        (
            {"models": [MODEL], "server": {"max_extra_models": -1}},
            "server.max_extra_models: expected an integer between 0 and 1024, received -1",
        ),
        (
            {"models": [MODEL], "monitoring": {"psi_warning": 0.3, "psi_alert": 0.2}},
            "monitoring.psi_alert: expected a level >= psi_warning (0.3), received 0.2",
        ),
        (
            {"models": [MODEL], "monitoring": {"drift_sample_rows": 10}},
            "monitoring.drift_sample_rows: expected an integer between 100 and 1000000",
        ),
        ({"models": [MODEL], "monitoring": {"window": 3}}, "monitoring.window: unknown key"),
        (
            {"models": [MODEL], "monitoring": {"rollup_interval_s": 30}},
            "monitoring.rollup_interval_s: expected 0 (off) or 60 to 86400 seconds, received 30",
        ),
        (
            {"models": [MODEL], "monitoring": {"rollup_interval_s": -1}},
            "monitoring.rollup_interval_s: expected a number between 0.0 and 86400.0",
        ),
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


def test_one_model_name_rule_for_models_and_experiment(tmp_path: Path):
    """A name the config serves (``_`` and ``.`` included) can be an experiment candidate."""
    models = [
        {"name": "fraud_v1", "uri": "models:/fraud-detection@champion"},
        {"name": "Fraud.v2", "uri": "models:/fraud-detection@challenger"},
        {"name": "legacy_7", "uri": "models:/fraud-detection@champion"},  # served, as before
    ]
    experiment = {
        "name": "fraud_ab",
        "default": "fraud_v1",
        "candidates": [{"name": "fraud_v1", "weight": 1}, {"name": "Fraud.v2", "weight": 1}],
    }
    config = load_config(_write(tmp_path, {"models": models, "experiment": experiment}))
    assert config.experiment_spec.candidate_names == ("fraud_v1", "Fraud.v2")
    # a version suffix names a version, so an experiment cannot use it as a name
    experiment["candidates"][1]["name"] = "legacy_7"
    with pytest.raises(ConfigError, match=r"candidates\[1\].name.*version suffix"):
        load_config(_write(tmp_path, {"models": models, "experiment": experiment}))


def test_client_url_reaches_a_server_bound_to_every_interface(tmp_path: Path):
    server = {"host": "0.0.0.0", "http_port": 9000, "grpc_port": 9001}
    config = load_config(_write(tmp_path, {"models": [MODEL], "server": server}))
    assert config.server.client_url == "http://127.0.0.1:9000"
    server["host"] = "10.1.2.3"
    assert load_config(
        _write(tmp_path, {"models": [MODEL], "server": server})
    ).server.client_url == ("http://10.1.2.3:9000")


def test_monitoring_defaults_and_overrides(tmp_path: Path):
    import dataclasses

    from fraudgate.config import MonitoringConfig

    loaded = load_config(_write(tmp_path, {"models": [MODEL]})).monitoring
    # the alerts' null thresholds are resolved on load (analysis guardrails, ledger.max_lag_s)
    assert loaded.alerts.latency.p99_ms == 250.0 and loaded.alerts.shipper_lag.seconds == 15.0
    assert dataclasses.replace(loaded, alerts=MonitoringConfig().alerts) == MonitoringConfig()
    assert (MonitoringConfig().psi_warning, MonitoringConfig().psi_alert) == (0.1, 0.25)
    config = load_config(
        _write(
            tmp_path, {"models": [MODEL], "monitoring": {"label_window_days": 7, "refresh_s": 1}}
        )
    )
    assert config.monitoring.label_window_s == 7 * 86_400 and config.monitoring.refresh_s == 1
    assert loaded.enabled and loaded.rollup_interval_s == 3600
    never = {"models": [MODEL], "monitoring": {"rollup_interval_s": 0}}
    assert load_config(_write(tmp_path, never)).monitoring.rollup_interval_s == 0
    off = {"models": [MODEL], "monitoring": {"enabled": False}}
    assert not load_config(_write(tmp_path, off)).monitoring.enabled
    with pytest.raises(ConfigError, match="monitoring.enabled: expected true or false"):
        load_config(_write(tmp_path, {"models": [MODEL], "monitoring": {"enabled": "no"}}))
