"""The fraudgate YAML configuration: which models to serve, where the registry is, how to serve.

Configuration is data: one file drives the local server (and later the experiment and the ledger).
Validation is by hand so errors name the field, the expected value and the received one::

    registry: sqlite:////abs/path/mlflow.db     # optional; MLFLOW_TRACKING_URI otherwise
    server: {host: 127.0.0.1, http_port: 8080, grpc_port: 8081, max_payload_bytes: 4194304}
      # model_management: admin (default; repository load/unload need the auth token and are
      #   refused when none is configured) | off (refused always)
      # max_extra_models: 8 (names outside the config a load may add; unloaded ones make room)
    models:
      - name: fraud-v1-baseline
        uri: models:/fraud-detection@champion
        threshold: null            # null = the registry version tag "threshold"
        runtime: auto              # auto | native | any kind fraudgate.runtimes offers
        batching: {max_batch_size: 32, max_wait_ms: 1.0}
      - name: fraud-v2-candidate
        uri: models:/fraud-detection@challenger
    experiment:                    # optional; validated by fraudgate.experiments.ExperimentSpec
      name: fraud-detection-ab-test
      default: fraud-v1-baseline
      candidates: [{name: fraud-v1-baseline, weight: 80}, {name: fraud-v2-candidate, weight: 20}]
      mirror: {percent: 100}       # no name: the arm that did not answer scores in shadow
      routing: {key: card_id, source: parameter}
    ledger:                        # optional; every scored row is recorded when present
      url: sqlite:////abs/dir/ledger.db   # default: ledger.db next to the config file
      enabled: true
      weights_poll_s: 1.0          # how often to pick up weight changes other replicas made
      max_lag_s: 30.0              # unready once the oldest unshipped decision is older
      commit_timeout_ms: 2000      # acknowledge: commit: 503 past this wait for the store
      feedback_max_labels: 10000   # labels per POST /feedback; more is a 413
    auth:                          # bearer token for /feedback, /admin and model management
                                   # (repository load/unload; refused without a token)
      token_env: FRAUDGATE_ADMIN_TOKEN    # or token: "..." (not both)
      inference: false             # true: inference needs the token too

Without ``experiment``/``ledger`` sections the server serves the models exactly as before.
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
# connection bounds (both transports; see fraudgate.serving.connection_limits)
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 30.0
DEFAULT_MAX_CONCURRENT_STREAMS = 100
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_WAIT_MS = 1.0
MODEL_MANAGEMENT = ("admin", "off")
DEFAULT_MODEL_MANAGEMENT = "admin"
DEFAULT_MAX_EXTRA_MODELS = 8

DEFAULT_WEIGHTS_POLL_S = 1.0
DEFAULT_MAX_LAG_S = 30.0  # ledger.max_lag_s: unready when shipping falls further behind
DEFAULT_COMMIT_TIMEOUT_MS = 2000  # ledger.commit_timeout_ms: acknowledge: commit's bounded wait
DEFAULT_FEEDBACK_MAX_LABELS = 10_000  # labels per POST /feedback (clients send batches)
ADMIN_TOKEN_ENV = "FRAUDGATE_ADMIN_TOKEN"

# Sections other rooms own: kept verbatim as well (``experiment``/``ledger``) after validation.
RAW_SECTIONS = ("experiment", "ledger")
_TOP_LEVEL = ("registry", "server", "models", *RAW_SECTIONS, "auth")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
    # repository load/unload: "admin" (needs the auth token; refused without one) or "off"
    model_management: str = DEFAULT_MODEL_MANAGEMENT
    # names outside the config the repository holds at most (loaded by name + parameters.uri)
    max_extra_models: int = DEFAULT_MAX_EXTRA_MODELS
    # request head (REST) / metadata (gRPC) bytes, and REST header count
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    # a connection must send its request head (REST) / HTTP/2 preface (gRPC) within this
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S  # keep-alive connections with no request
    # open connections per transport; None: 1000, or fewer if the file limit allows fewer
    max_connections: int | None = None
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS  # gRPC streams per connection


@dataclass(frozen=True)
class LedgerConfig:
    """Where decisions and labels are recorded (see `fraudgate.ledger.open_ledger`)."""

    url: str
    enabled: bool = True
    weights_poll_s: float = DEFAULT_WEIGHTS_POLL_S
    # journal: a served decision is acknowledged once appended to this process's journal file
    # (survives the process being killed) and `fraudgate ledger ship` moves it into the store;
    # commit: acknowledged once committed in the store (survives a power loss on PostgreSQL)
    acknowledge: str = "journal"
    journal_dir: str = "ledger-journal"
    journal_fsync: bool = False  # fdatasync every append: survives a power loss too
    shipper: str = "child"  # child: `fraudgate serve` runs the shipper; external: a sidecar does
    # unready (503) once the oldest unshipped journaled decision is older than this
    max_lag_s: float = DEFAULT_MAX_LAG_S
    # acknowledge: commit: a request whose commit takes longer gets 503 (and readiness turns 503)
    commit_timeout_ms: int = DEFAULT_COMMIT_TIMEOUT_MS
    feedback_max_labels: int = DEFAULT_FEEDBACK_MAX_LABELS  # more in one request: 413


@dataclass(frozen=True)
class AuthConfig:
    """Bearer-token auth. ``token`` None: feedback/admin endpoints are open (not recommended)
    and model management (repository load/unload) is refused."""

    token: str | None = None
    token_env: str | None = None
    inference: bool = False

    @property
    def enabled(self) -> bool:
        return self.token is not None


@dataclass(frozen=True)
class FraudgateConfig:
    models: tuple[ModelConfig, ...]
    server: ServerConfig = field(default_factory=ServerConfig)
    registry: str | None = None
    experiment: dict[str, Any] | None = None  # the raw section (see experiment_spec)
    ledger: dict[str, Any] | None = None  # the raw section (see ledger_config)
    path: Path | None = None
    experiment_spec: Any = None  # fraudgate.experiments.ExperimentSpec | None
    ledger_config: LedgerConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)

    @property
    def ledger_enabled(self) -> bool:
        return self.ledger_config is not None and self.ledger_config.enabled

    @property
    def tracking_uri(self) -> str | None:
        """The configured registry, else ``MLFLOW_TRACKING_URI`` (None when neither is set)."""
        return self.registry or os.environ.get("MLFLOW_TRACKING_URI") or None

    def resolved_tracking_uri(self) -> str:
        """Where models load from: `tracking_uri`, else the embedded SQLite store next to the
        config file (the working directory without one)."""
        from fraudgate.registry import resolve_tracking_uri

        workdir = self.path.parent if self.path is not None else Path.cwd()
        return resolve_tracking_uri(self.registry, workdir)

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
        from fraudgate.runtimes import KINDS
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
    if not MODEL_NAME.match(name):
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
    _no_unknown(
        data,
        (
            "host",
            "http_port",
            "grpc_port",
            "max_payload_bytes",
            "model_management",
            "max_extra_models",
            "max_header_bytes",
            "max_headers",
            "header_timeout_s",
            "idle_timeout_s",
            "max_connections",
            "max_concurrent_streams",
        ),
        "server",
    )
    max_connections = data.get("max_connections")
    if max_connections is not None:
        max_connections = _int(
            max_connections, "server.max_connections", minimum=1, maximum=1_000_000
        )
    server = ServerConfig(
        host=_str(data.get("host", DEFAULT_HOST), "server.host"),
        http_port=_port(data.get("http_port", DEFAULT_HTTP_PORT), "server.http_port"),
        grpc_port=_port(data.get("grpc_port", DEFAULT_GRPC_PORT), "server.grpc_port"),
        max_payload_bytes=_int(
            data.get("max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES),
            "server.max_payload_bytes",
            minimum=1024,
        ),
        model_management=_choice(
            data.get("model_management", DEFAULT_MODEL_MANAGEMENT),
            "server.model_management",
            MODEL_MANAGEMENT,
        ),
        max_extra_models=_int(
            data.get("max_extra_models", DEFAULT_MAX_EXTRA_MODELS),
            "server.max_extra_models",
            minimum=0,
            maximum=1024,
        ),
        max_header_bytes=_int(
            data.get("max_header_bytes", DEFAULT_MAX_HEADER_BYTES),
            "server.max_header_bytes",
            minimum=1024,
            maximum=16 * 1024 * 1024,
        ),
        max_headers=_int(
            data.get("max_headers", DEFAULT_MAX_HEADERS),
            "server.max_headers",
            minimum=8,
            maximum=10_000,
        ),
        header_timeout_s=_float(
            data.get("header_timeout_s", DEFAULT_HEADER_TIMEOUT_S),
            "server.header_timeout_s",
            minimum=0.1,
            maximum=3600.0,
        ),
        idle_timeout_s=_float(
            data.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S),
            "server.idle_timeout_s",
            minimum=0.1,
            maximum=86400.0,
        ),
        max_connections=max_connections,
        max_concurrent_streams=_int(
            data.get("max_concurrent_streams", DEFAULT_MAX_CONCURRENT_STREAMS),
            "server.max_concurrent_streams",
            minimum=1,
            maximum=100_000,
        ),
    )
    if server.http_port and server.http_port == server.grpc_port:
        raise ConfigError(
            f"server.grpc_port: expected a port different from server.http_port "
            f"({server.http_port}), received {server.grpc_port}"
        )
    return server


def _experiment(value: dict[str, Any], models: tuple[ModelConfig, ...]) -> Any:
    from fraudgate.experiments import ExperimentConfigError, ExperimentSpec

    try:
        spec = ExperimentSpec.from_config(value)
    except ExperimentConfigError as exc:
        raise ConfigError(str(exc)) from None
    served = [m.name for m in models]
    for name in spec.model_names:
        if name not in served:
            raise ConfigError(
                f"experiment: model {name!r} is not served; expected one of the models[].name "
                f"{served}, received {name!r}"
            )
    return spec


def _ledger(value: dict[str, Any], path: Path | None) -> LedgerConfig:
    _no_unknown(
        value,
        (
            "url",
            "enabled",
            "weights_poll_s",
            "acknowledge",
            "journal_dir",
            "journal_fsync",
            "shipper",
            "max_lag_s",
            "commit_timeout_ms",
            "feedback_max_labels",
        ),
        "ledger",
    )
    base = path.parent if path is not None else Path.cwd()
    url = value.get("url")
    if url is None:
        url = f"sqlite:///{(base / 'ledger.db').resolve()}"
    url = _str(url, "ledger.url")
    if "://" in url and not url.startswith(("sqlite:", "postgresql", "postgres:")):
        raise ConfigError(
            f"ledger.url: expected a sqlite:/// or postgresql:// URL (or a SQLite file path), "
            f"received {url!r}"
        )
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"ledger.enabled: expected true or false, received {_describe(enabled)}")
    poll = _float(
        value.get("weights_poll_s", DEFAULT_WEIGHTS_POLL_S),
        "ledger.weights_poll_s",
        minimum=0.0,
        maximum=3600.0,
    )
    acknowledge = _choice(value.get("acknowledge", "journal"), "ledger.acknowledge", ACKNOWLEDGE)
    shipper = _choice(value.get("shipper", "child"), "ledger.shipper", SHIPPERS)
    journal_dir = Path(_str(value.get("journal_dir", "ledger-journal"), "ledger.journal_dir"))
    fsync = value.get("journal_fsync", False)
    if not isinstance(fsync, bool):
        raise ConfigError(
            f"ledger.journal_fsync: expected true or false, received {_describe(fsync)}"
        )
    max_lag_s = _float(
        value.get("max_lag_s", DEFAULT_MAX_LAG_S), "ledger.max_lag_s", minimum=0.1, maximum=86400.0
    )
    commit_timeout_ms = _int(
        value.get("commit_timeout_ms", DEFAULT_COMMIT_TIMEOUT_MS),
        "ledger.commit_timeout_ms",
        minimum=1,
        maximum=600_000,
    )
    return LedgerConfig(
        url=url,
        enabled=enabled,
        weights_poll_s=poll,
        acknowledge=acknowledge,
        journal_dir=str((base / journal_dir).resolve()),
        journal_fsync=fsync,
        shipper=shipper,
        max_lag_s=max_lag_s,
        commit_timeout_ms=commit_timeout_ms,
        feedback_max_labels=_int(
            value.get("feedback_max_labels", DEFAULT_FEEDBACK_MAX_LABELS),
            "ledger.feedback_max_labels",
            minimum=1,
            maximum=1_000_000,
        ),
    )


ACKNOWLEDGE = ("journal", "commit")
SHIPPERS = ("child", "external")


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: expected one of {list(allowed)}, received {_describe(value)}")
    return value


def _auth(value: Any) -> AuthConfig:
    if value is None:
        return AuthConfig()
    data = _mapping(value, "auth")
    _no_unknown(data, ("token", "token_env", "inference"), "auth")
    token, token_env = data.get("token"), data.get("token_env")
    if token is not None and token_env is not None:
        raise ConfigError(
            f"auth: expected one of token or token_env, received both (token_env {token_env!r})"
        )
    if token is not None:
        token = _str(token, "auth.token")
        if len(token) < 8:
            raise ConfigError(
                f"auth.token: expected at least 8 characters, received {len(token)} characters"
            )
    elif token_env is not None:
        token_env = _str(token_env, "auth.token_env")
        token = os.environ.get(token_env) or None
        if token is None:
            raise ConfigError(
                f"auth.token_env: expected the environment variable {token_env} to hold the "
                "bearer token, received nothing (it is unset or empty)"
            )
    inference = data.get("inference", False)
    if not isinstance(inference, bool):
        raise ConfigError(
            f"auth.inference: expected true or false, received {_describe(inference)}"
        )
    if inference and token is None:
        raise ConfigError("auth.inference: true needs auth.token or auth.token_env, received none")
    return AuthConfig(token=token, token_env=token_env, inference=inference)


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
    spec = None if raw["experiment"] is None else _experiment(raw["experiment"], models)
    ledger = None if raw["ledger"] is None else _ledger(raw["ledger"], path)
    return FraudgateConfig(
        models=models,
        server=_server(data.get("server")),
        registry=registry,
        experiment=raw["experiment"],
        ledger=raw["ledger"],
        path=path,
        experiment_spec=spec,
        ledger_config=ledger,
        auth=_auth(data.get("auth")),
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


DEMO_EXPERIMENT = "fraud-detection-ab-test"


def demo_experiment_dict() -> dict[str, Any]:
    """The demo's experiment: 80/20 by card, and the other arm scores every request in shadow."""
    return {
        "name": DEMO_EXPERIMENT,
        "default": "fraud-v1-baseline",
        "candidates": [
            {"name": "fraud-v1-baseline", "weight": 80},
            {"name": "fraud-v2-candidate", "weight": 20},
        ],
        "mirror": {"percent": 100},
        "routing": {"key": "card_id", "source": "parameter", "header": "x-routing-key"},
    }


def demo_config_dict(tracking_uri: str, workdir: Path, token: str | None = None) -> dict[str, Any]:
    """`default_config_dict` plus the demo's experiment, a SQLite ledger in `workdir` and auth.

    The admin/feedback token is ``token`` when given; else ``token_env: FRAUDGATE_ADMIN_TOKEN``
    when that variable is set; else a freshly generated random token written into the file.
    """
    import secrets

    config = default_config_dict(tracking_uri)
    config["experiment"] = demo_experiment_dict()
    config["ledger"] = {
        "url": f"sqlite:///{(Path(workdir) / 'ledger.db').resolve()}",
        "enabled": True,
        "weights_poll_s": DEFAULT_WEIGHTS_POLL_S,
    }
    if token is None and os.environ.get(ADMIN_TOKEN_ENV):
        config["auth"] = {"token_env": ADMIN_TOKEN_ENV, "inference": False}
    else:
        config["auth"] = {"token": token or secrets.token_urlsafe(24), "inference": False}
    return config


_HEADER = """\
# fraudgate configuration: `fraudgate serve --config {name}`
# registry: MLflow tracking URI the models are loaded from
# models[].threshold: null takes the registry version tag "threshold"
# models[].runtime: auto picks the fastest runtime that matches the MLflow model's scores
"""
_DEMO_HEADER = """\
# experiment: requests to fraud-v1-baseline (or to the experiment's name) are split 80/20 by the
#   request parameter card_id (or header x-routing-key); the arm that did not answer scores every
#   request in shadow (mirror percent 100, no name); explicit versions (fraud-v1-baseline_1,
#   /versions/1) bypass the experiment
# ledger: every decision is recorded here; labels arrive through POST /feedback
# auth.token: the bearer token for /feedback, /admin and model management (repository
#   load/unload; `fraudgate experiment set --token ...`)
"""


def write_default_config(
    path: Path,
    tracking_uri: str,
    *,
    experiment: bool = True,
    token: str | None = None,
) -> Path:
    """Write the demo's config to `path` (validated by reading it back); return it.

    With ``experiment`` (the default) the file also holds the demo's A/B experiment, a SQLite
    ledger next to it and an admin token (see `demo_config_dict`); without it, just the two models.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if experiment:
        data = demo_config_dict(tracking_uri, path.parent, token)
        header = _HEADER + _DEMO_HEADER
    else:
        data = default_config_dict(tracking_uri)
        header = _HEADER
    body = yaml.safe_dump(data, sort_keys=False)
    path.write_text(header.format(name=path.name) + body, encoding="utf-8")
    if experiment and "token" in data.get("auth", {}):
        path.chmod(0o600)  # it holds a secret
    load_config(path)
    return path
