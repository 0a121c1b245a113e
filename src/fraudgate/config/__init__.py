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

    kubernetes:                    # only `fraudgate export kubernetes` reads it (see
      namespace: fraudgate         #   fraudgate.config.kubernetes for every field)
    monitoring:                    # optional; the alerts' thresholds (fraudgate.config.alerts)
      alerts: {recall: {floor: 0.70}, traffic_split: {tolerance: 0.05}, ...}

Without ``experiment``/``ledger`` sections the server serves the models exactly as before.

The package: `schema` (the typed records and defaults), `validators` (one function per kind of
field), `loading` (YAML -> validated `FraudgateConfig`), `files` (the default and demo files),
`kubernetes` (the ``kubernetes:`` section's records and parser).
field), `loading` (YAML -> validated `FraudgateConfig`), `alerts` / `alerts_loading`
(the exported alerts' thresholds), `files` (the default and demo files).
Import the names from here; the modules are the layout, not the API.
"""

from typing import Any

from fraudgate.config.alerts import AlertsConfig, duration_seconds
from fraudgate.config.files import (
    DEMO_EXPERIMENT,
    default_config_dict,
    demo_config_dict,
    demo_experiment_dict,
    write_default_config,
)
from fraudgate.config.loading import RAW_SECTIONS, load_config, parse_config
from fraudgate.config.schema import (
    ACKNOWLEDGE,
    ADMIN_TOKEN_ENV,
    DEFAULT_COMMIT_TIMEOUT_MS,
    DEFAULT_FEEDBACK_MAX_LABELS,
    DEFAULT_GRPC_PORT,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_EXTRA_MODELS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_LAG_S,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_WAIT_MS,
    DEFAULT_MODEL_MANAGEMENT,
    DEFAULT_WEIGHTS_POLL_S,
    MODEL_MANAGEMENT,
    SHIPPERS,
    AnalysisConfig,
    AuthConfig,
    BatchingConfig,
    ConfigError,
    CostConfig,
    FraudgateConfig,
    GuardrailsConfig,
    LedgerConfig,
    ModelConfig,
    MonitoringConfig,
    RolloutConfig,
    RolloutStep,
    ServerConfig,
)

__all__ = [
    "ACKNOWLEDGE",
    "ADMIN_TOKEN_ENV",
    "DEFAULT_COMMIT_TIMEOUT_MS",
    "DEFAULT_FEEDBACK_MAX_LABELS",
    "DEFAULT_GRPC_PORT",
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_HOST",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENT_STREAMS",
    "DEFAULT_MAX_EXTRA_MODELS",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_LAG_S",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_WAIT_MS",
    "DEFAULT_MODEL_MANAGEMENT",
    "DEFAULT_WEIGHTS_POLL_S",
    "DEMO_EXPERIMENT",
    "MODEL_MANAGEMENT",
    "MODEL_NAME",
    "RAW_SECTIONS",
    "SHIPPERS",
    "AlertsConfig",
    "AnalysisConfig",
    "AuthConfig",
    "BatchingConfig",
    "ConfigError",
    "CostConfig",
    "FraudgateConfig",
    "GuardrailsConfig",
    "LedgerConfig",
    "ModelConfig",
    "RolloutConfig",
    "RolloutStep",
    "MonitoringConfig",
    "ServerConfig",
    "default_config_dict",
    "demo_config_dict",
    "demo_experiment_dict",
    "duration_seconds",
    "load_config",
    "parse_config",
    "write_default_config",
]


def __getattr__(name: str) -> Any:
    """``MODEL_NAME`` (the shared model-name rule) on first use: the protocol package it lives
    in loads numpy, which ``import fraudgate.config`` (the CLI's ``--help``) should not."""
    if name == "MODEL_NAME":
        from fraudgate.protocol.limits import MODEL_NAME

        return MODEL_NAME
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
