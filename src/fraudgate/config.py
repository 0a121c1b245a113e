"""The fraudgate YAML configuration: which models to serve, where the registry is, how to serve.

Configuration is data: one file drives the local server (and later the experiment and the ledger).
Validation is by hand so errors name the field, the expected value and the received one::

    registry: sqlite:////abs/path/mlflow.db     # optional; MLFLOW_TRACKING_URI otherwise
    server: {host: 127.0.0.1, http_port: 8080, grpc_port: 8081, max_payload_bytes: 4194304}
    models:
      - name: fraud-v1-baseline
        uri: models:/fraud-detection@champion
        threshold: null            # null = the registry version tag "threshold"
        runtime: auto              # auto | native | any kind fraudgate.serving.runtimes offers
        batching: {max_batch_size: 32, max_wait_ms: 1.0}
      - name: fraud-v2-candidate
        uri: models:/fraud-detection@challenger
    experiment: {...}              # owned by fraudgate.experiments (kept as a raw mapping here)
    ledger: {...}                  # owned by fraudgate.ledger (kept as a raw mapping here)
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081
DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_WAIT_MS = 1.0

# Sections other rooms own: accepted and kept verbatim for them to validate.
RAW_SECTIONS = ("experiment", "ledger")
_TOP_LEVEL = ("registry", "server", "models", *RAW_SECTIONS)
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the field, expected and received."""


@dataclass(frozen=True)
class BatchingConfig:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS


@dataclass(frozen=True)
class ModelConfig:
    name: str
    uri: str
    threshold: float | None = None
    runtime: str = "auto"
    batching: BatchingConfig = field(default_factory=BatchingConfig)


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class FraudgateConfig:
    models: tuple[ModelConfig, ...]
    server: ServerConfig = field(default_factory=ServerConfig)
    registry: str | None = None
    experiment: dict[str, Any] | None = None
    ledger: dict[str, Any] | None = None
    path: Path | None = None

    @property
    def tracking_uri(self) -> str | None:
        """The configured registry, else ``MLFLOW_TRACKING_URI`` (None when neither is set)."""
        return self.registry or os.environ.get("MLFLOW_TRACKING_URI") or None

    def model(self, name: str) -> ModelConfig:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


# -- validation helpers ---------------------------------------------------------------------------


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, received {_describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{where}: expected string keys, received key {_describe(key)}")
    return value


def _no_unknown(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in data if key not in allowed]
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key; expected one of {list(allowed)}, "
            f"received {unknown[0]!r}"
        )


def _str(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ConfigError(f"{where}: expected a non-empty string, received {_describe(value)}")
    return value


def _int(value: Any, where: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, received {_describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{where}: expected an integer {bound}, received {value}")
    return value


def _float(value: Any, where: str, *, minimum: float, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, received {_describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{where}: expected a number {bound}, received {value}")
    return float(value)


def _port(value: Any, where: str) -> int:
    return _int(value, where, minimum=0, maximum=65535)


def _batching(value: Any, where: str) -> BatchingConfig:
    if value is None:
        return BatchingConfig()
    data = _mapping(value, where)
    _no_unknown(data, ("max_batch_size", "max_wait_ms"), where)
    return BatchingConfig(
        max_batch_size=_int(
            data.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE),
            f"{where}.max_batch_size",
            minimum=1,
            maximum=65536,
        ),
        max_wait_ms=_float(
            data.get("max_wait_ms", DEFAULT_MAX_WAIT_MS),
            f"{where}.max_wait_ms",
            minimum=0.0,
            maximum=1000.0,
        ),
    )


def _runtime_kinds() -> tuple[str, ...]:
    try:
        from fraudgate.serving.runtimes import KINDS
    except ImportError:  # pragma: no cover - runtimes are part of the package
        return ()
    return tuple(KINDS)


def _model(value: Any, where: str) -> ModelConfig:
    data = _mapping(value, where)
    _no_unknown(data, ("name", "uri", "threshold", "runtime", "batching"), where)
    for required in ("name", "uri"):
        if required not in data:
            raise ConfigError(f"{where}.{required}: required, received nothing")
    name = _str(data["name"], f"{where}.name")
    if not _MODEL_NAME.match(name):
        raise ConfigError(
            f"{where}.name: expected letters, digits, '.', '_' or '-' (at most 128, starting "
            f"with a letter or digit), received {name!r}"
        )
    threshold = data.get("threshold")
    if threshold is not None:
        threshold = _float(threshold, f"{where}.threshold", minimum=0.0, maximum=1.0)
    runtime = data.get("runtime", "auto")
    runtime = _str("auto" if runtime is None else runtime, f"{where}.runtime")
    kinds = _runtime_kinds()
    if kinds and runtime not in kinds:
        raise ConfigError(f"{where}.runtime: expected one of {list(kinds)}, received {runtime!r}")
    return ModelConfig(
        name=name,
        uri=_str(data["uri"], f"{where}.uri"),
        threshold=threshold,
        runtime=runtime,
        batching=_batching(data.get("batching"), f"{where}.batching"),
    )


def _server(value: Any) -> ServerConfig:
    if value is None:
        return ServerConfig()
    data = _mapping(value, "server")
    _no_unknown(data, ("host", "http_port", "grpc_port", "max_payload_bytes"), "server")
    server = ServerConfig(
        host=_str(data.get("host", DEFAULT_HOST), "server.host"),
        http_port=_port(data.get("http_port", DEFAULT_HTTP_PORT), "server.http_port"),
        grpc_port=_port(data.get("grpc_port", DEFAULT_GRPC_PORT), "server.grpc_port"),
        max_payload_bytes=_int(
            data.get("max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES),
            "server.max_payload_bytes",
            minimum=1024,
        ),
    )
    if server.http_port and server.http_port == server.grpc_port:
        raise ConfigError(
            f"server.grpc_port: expected a port different from server.http_port "
            f"({server.http_port}), received {server.grpc_port}"
        )
    return server


def parse_config(data: Any, path: Path | None = None) -> FraudgateConfig:
    """Validate an already-parsed YAML document."""
    data = _mapping(data, "config")
    _no_unknown(data, _TOP_LEVEL, "")
    registry = data.get("registry")
    if registry is not None:
        registry = _str(registry, "registry")
    models_raw = data.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise ConfigError(
            f"models: expected a non-empty list of models, received {_describe(models_raw)}"
        )
    models = tuple(_model(item, f"models[{i}]") for i, item in enumerate(models_raw))
    seen: set[str] = set()
    for i, model in enumerate(models):
        if model.name in seen:
            raise ConfigError(
                f"models[{i}].name: expected a unique name, received duplicate {model.name!r}"
            )
        seen.add(model.name)
    raw: dict[str, dict[str, Any] | None] = {}
    for section in RAW_SECTIONS:
        value = data.get(section)
        raw[section] = None if value is None else dict(_mapping(value, section))
    return FraudgateConfig(
        models=models,
        server=_server(data.get("server")),
        registry=registry,
        experiment=raw["experiment"],
        ledger=raw["ledger"],
        path=path,
    )


def load_config(path: str | Path) -> FraudgateConfig:
    """Read and validate a fraudgate YAML config; raises `ConfigError` with a precise message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {str(path)!r}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {str(path)!r} is not valid YAML: {exc}") from exc
    return parse_config(data, path=path.resolve())


def default_config_dict(tracking_uri: str) -> dict[str, Any]:
    """The two-model config the demo serves: champion and challenger of ``fraud-detection``."""
    batching = {"max_batch_size": DEFAULT_MAX_BATCH_SIZE, "max_wait_ms": DEFAULT_MAX_WAIT_MS}
    return {
        "registry": tracking_uri,
        "server": {
            "host": DEFAULT_HOST,
            "http_port": DEFAULT_HTTP_PORT,
            "grpc_port": DEFAULT_GRPC_PORT,
            "max_payload_bytes": DEFAULT_MAX_PAYLOAD_BYTES,
        },
        "models": [
            {
                "name": "fraud-v1-baseline",
                "uri": "models:/fraud-detection@champion",
                "threshold": None,
                "runtime": "auto",
                "batching": dict(batching),
            },
            {
                "name": "fraud-v2-candidate",
                "uri": "models:/fraud-detection@challenger",
                "threshold": None,
                "runtime": "auto",
                "batching": dict(batching),
            },
        ],
    }


_HEADER = """\
# fraudgate configuration: `fraudgate serve --config {name}`
# registry: MLflow tracking URI the models are loaded from
# models[].threshold: null takes the registry version tag "threshold"
# models[].runtime: auto picks the fastest runtime that matches the MLflow model's scores
"""


def write_default_config(path: Path, tracking_uri: str) -> Path:
    """Write the demo's two-model config to `path` (validated by reading it back); return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(default_config_dict(tracking_uri), sort_keys=False)
    path.write_text(_HEADER.format(name=path.name) + body, encoding="utf-8")
    load_config(path)
    return path
