"""Loading: a YAML file (or an already-parsed document) -> a validated `FraudgateConfig`.

Each section has one parser built from `fraudgate.config.validators`; the experiment section is
validated by `fraudgate.experiments.ExperimentSpec` and must only name served models. The one
value read from the environment is the bearer token ``auth.token_env`` names (the file names
the variable, not the secret); ``MLFLOW_TRACKING_URI`` is read later, by
`FraudgateConfig.tracking_uri`, when the file names no registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudgate.config import validators as v
from fraudgate.config.alerts_loading import parse_alerts, parse_rule
from fraudgate.config.schema import (
    ACKNOWLEDGE,
    DEFAULT_ALPHA,
    DEFAULT_CHECK_INTERVAL_S,
    DEFAULT_COMMIT_TIMEOUT_MS,
    DEFAULT_FEEDBACK_MAX_LABELS,
    DEFAULT_GRPC_PORT,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MATURITY_DAYS,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_EXTRA_MODELS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_LAG_S,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_WAIT_MS,
    DEFAULT_MODEL_MANAGEMENT,
    DEFAULT_PLANNED_FRAUDS,
    DEFAULT_PLANNED_TRANSACTIONS,
    DEFAULT_STEP_MIN_DURATION_S,
    DEFAULT_STEP_MIN_SAMPLE,
    DEFAULT_WEIGHTS_POLL_S,
    DESIGNS,
    MAX_ROLLOUT_STEPS,
    MODEL_MANAGEMENT,
    PRIMARY_METRICS,
    ROLLOUT_PROMOTE,
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

if TYPE_CHECKING:
    from fraudgate.experiments import ExperimentSpec

# Sections other rooms own: kept verbatim as well (``experiment``/``ledger``) after validation.
RAW_SECTIONS = ("experiment", "ledger")
_TOP_LEVEL = (
    "registry",
    "server",
    "models",
    *RAW_SECTIONS,
    "auth",
    "analysis",
    "rollout",
    "kubernetes",
    "monitoring",
)
_ROLLOUT_KEYS = ("steps", "check_interval_s", "promote", "servers")
_STEP_KEYS = ("weight", "min_duration_s", "min_sample")
_MONITORING_KEYS = (
    "traffic_window_s",
    "label_window_days",
    "ledger_refresh_s",
    "rollup_interval_s",
    "refresh_s",
    "drift_refresh_s",
    "drift_sample_rows",
    "drift_min_rows",
    "psi_warning",
    "psi_alert",
    "alerts",
    "rule",
    "enabled",
)
_ANALYSIS_KEYS = (
    "champion",
    "challenger",
    "maturity_days",
    "alpha",
    "primary_metric",
    "design",
    "planned_frauds",
    "planned_transactions",
    "minimum_effect",
    "power",
    "max_days",
    "max_frauds",
    "guardrails",
    "cost",
)
_GUARDRAIL_KEYS = (
    "srm_p",
    "max_alert_rate_increase",
    "precision_floor",
    "min_labelled_alerts",
    "max_error_rate",
    "max_p99_latency_ms",
)
_COST_KEYS = (
    "loss_share",
    "loss_per_fraud",
    "investigation_cost",
    "friction_cost",
    "transactions_per_day",
)
_SERVER_KEYS = (
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
)
_LEDGER_KEYS = (
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
)


def load_config(path: str | Path, *, resolve_secrets: bool = True) -> FraudgateConfig:
    """Read and validate a fraudgate YAML config; raises `ConfigError` with a precise message.

    ``resolve_secrets=False``: do not read the token ``auth.token_env`` names (the Kubernetes
    export and the shipper need the file, not the secret); ``auth.token`` stays None then."""
    import yaml

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
    return parse_config(data, path=path.resolve(), resolve_secrets=resolve_secrets)


def parse_config(
    data: Any, path: Path | None = None, *, resolve_secrets: bool = True
) -> FraudgateConfig:
    """Validate an already-parsed YAML document (``path``: where relative paths start)."""
    from fraudgate.config.kubernetes import parse_kubernetes

    data = v.mapping(data, "config")
    v.no_unknown(data, _TOP_LEVEL, "")
    registry = data.get("registry")
    if registry is not None:
        registry = v.text(registry, "registry")
    models = _models(data.get("models"))
    raw: dict[str, dict[str, Any] | None] = {}
    for section in RAW_SECTIONS:
        value = data.get(section)
        raw[section] = None if value is None else dict(v.mapping(value, section))
    spec = None if raw["experiment"] is None else _experiment(raw["experiment"], models)
    ledger = None if raw["ledger"] is None else _ledger(raw["ledger"], path)
    analysis = _analysis(data.get("analysis"), models)
    return FraudgateConfig(
        models=models,
        server=_server(data.get("server")),
        registry=registry,
        experiment=raw["experiment"],
        ledger=raw["ledger"],
        path=path,
        experiment_spec=spec,
        ledger_config=ledger,
        auth=_auth(data.get("auth"), resolve_secrets=resolve_secrets),
        analysis=analysis,
        kubernetes=parse_kubernetes(data.get("kubernetes"), tuple(m.name for m in models)),
        rollout=_rollout(data.get("rollout")),
        monitoring=_monitoring(data.get("monitoring"), analysis, ledger),
    )


# -- sections --------------------------------------------------------------------------------------


def _models(value: Any) -> tuple[ModelConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"models: expected a non-empty list of models, received {v.describe(value)}"
        )
    models = tuple(_model(item, f"models[{i}]") for i, item in enumerate(value))
    seen: set[str] = set()
    for i, model in enumerate(models):
        if model.name in seen:
            raise ConfigError(
                f"models[{i}].name: expected a unique name, received duplicate {model.name!r}"
            )
        seen.add(model.name)
    return models


def _runtime_kinds() -> tuple[str, ...]:
    from fraudgate.runtimes import KINDS

    return tuple(KINDS)


def _model(value: Any, where: str) -> ModelConfig:
    data = v.mapping(value, where)
    v.no_unknown(data, ("name", "uri", "threshold", "runtime", "batching"), where)
    for required in ("name", "uri"):
        if required not in data:
            raise ConfigError(f"{where}.{required}: required, received nothing")
    name = v.model_name(data["name"], f"{where}.name")
    threshold = data.get("threshold")
    if threshold is not None:
        threshold = v.number(threshold, f"{where}.threshold", minimum=0.0, maximum=1.0)
    runtime = data.get("runtime", "auto")
    runtime = v.text("auto" if runtime is None else runtime, f"{where}.runtime")
    kinds = _runtime_kinds()
    if kinds and runtime not in kinds:
        raise ConfigError(f"{where}.runtime: expected one of {list(kinds)}, received {runtime!r}")
    return ModelConfig(
        name=name,
        uri=v.text(data["uri"], f"{where}.uri"),
        threshold=threshold,
        runtime=runtime,
        batching=_batching(data.get("batching"), f"{where}.batching"),
    )


def _batching(value: Any, where: str) -> BatchingConfig:
    if value is None:
        return BatchingConfig()
    data = v.mapping(value, where)
    v.no_unknown(data, ("max_batch_size", "max_wait_ms"), where)
    return BatchingConfig(
        max_batch_size=v.integer(
            data.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE),
            f"{where}.max_batch_size",
            minimum=1,
            maximum=65536,
        ),
        max_wait_ms=v.number(
            data.get("max_wait_ms", DEFAULT_MAX_WAIT_MS),
            f"{where}.max_wait_ms",
            minimum=0.0,
            maximum=1000.0,
        ),
    )


def _server(value: Any) -> ServerConfig:
    if value is None:
        return ServerConfig()
    data = v.mapping(value, "server")
    v.no_unknown(data, _SERVER_KEYS, "server")
    max_connections = data.get("max_connections")
    if max_connections is not None:
        max_connections = v.integer(
            max_connections, "server.max_connections", minimum=1, maximum=1_000_000
        )
    server = ServerConfig(
        host=v.text(data.get("host", DEFAULT_HOST), "server.host"),
        http_port=v.port(data.get("http_port", DEFAULT_HTTP_PORT), "server.http_port"),
        grpc_port=v.port(data.get("grpc_port", DEFAULT_GRPC_PORT), "server.grpc_port"),
        max_payload_bytes=v.integer(
            data.get("max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES),
            "server.max_payload_bytes",
            minimum=1024,
        ),
        model_management=v.choice(
            data.get("model_management", DEFAULT_MODEL_MANAGEMENT),
            "server.model_management",
            MODEL_MANAGEMENT,
        ),
        max_extra_models=v.integer(
            data.get("max_extra_models", DEFAULT_MAX_EXTRA_MODELS),
            "server.max_extra_models",
            minimum=0,
            maximum=1024,
        ),
        max_header_bytes=v.integer(
            data.get("max_header_bytes", DEFAULT_MAX_HEADER_BYTES),
            "server.max_header_bytes",
            minimum=1024,
            maximum=16 * 1024 * 1024,
        ),
        max_headers=v.integer(
            data.get("max_headers", DEFAULT_MAX_HEADERS),
            "server.max_headers",
            minimum=8,
            maximum=10_000,
        ),
        header_timeout_s=v.number(
            data.get("header_timeout_s", DEFAULT_HEADER_TIMEOUT_S),
            "server.header_timeout_s",
            minimum=0.1,
            maximum=3600.0,
        ),
        idle_timeout_s=v.number(
            data.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S),
            "server.idle_timeout_s",
            minimum=0.1,
            maximum=86400.0,
        ),
        max_connections=max_connections,
        max_concurrent_streams=v.integer(
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


def _experiment(value: dict[str, Any], models: tuple[ModelConfig, ...]) -> ExperimentSpec:
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
    v.no_unknown(value, _LEDGER_KEYS, "ledger")
    base = path.parent if path is not None else Path.cwd()
    url = value.get("url")
    if url is None:
        url = f"sqlite:///{(base / 'ledger.db').resolve()}"
    url = v.text(url, "ledger.url")
    if "://" in url and not url.startswith(("sqlite:", "postgresql", "postgres:")):
        raise ConfigError(
            f"ledger.url: expected a sqlite:/// or postgresql:// URL (or a SQLite file path), "
            f"received {url!r}"
        )
    enabled = v.boolean(value.get("enabled", True), "ledger.enabled")
    poll = v.number(
        value.get("weights_poll_s", DEFAULT_WEIGHTS_POLL_S),
        "ledger.weights_poll_s",
        minimum=0.0,
        maximum=3600.0,
    )
    acknowledge = v.choice(value.get("acknowledge", "journal"), "ledger.acknowledge", ACKNOWLEDGE)
    shipper = v.choice(value.get("shipper", "child"), "ledger.shipper", SHIPPERS)
    journal_dir = Path(v.text(value.get("journal_dir", "ledger-journal"), "ledger.journal_dir"))
    fsync = v.boolean(value.get("journal_fsync", False), "ledger.journal_fsync")
    max_lag_s = v.number(
        value.get("max_lag_s", DEFAULT_MAX_LAG_S), "ledger.max_lag_s", minimum=0.1, maximum=86400.0
    )
    commit_timeout_ms = v.integer(
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
        feedback_max_labels=v.integer(
            value.get("feedback_max_labels", DEFAULT_FEEDBACK_MAX_LABELS),
            "ledger.feedback_max_labels",
            minimum=1,
            maximum=1_000_000,
        ),
    )


def _auth(value: Any, *, resolve_secrets: bool = True) -> AuthConfig:
    if value is None:
        return AuthConfig()
    data = v.mapping(value, "auth")
    v.no_unknown(data, ("token", "token_env", "inference"), "auth")
    token, token_env = data.get("token"), data.get("token_env")
    if token is not None and token_env is not None:
        raise ConfigError(
            f"auth: expected one of token or token_env, received both (token_env {token_env!r})"
        )
    if token is not None:
        token = v.text(token, "auth.token")
        if len(token) < 8:
            raise ConfigError(
                f"auth.token: expected at least 8 characters, received {len(token)} characters"
            )
    elif token_env is not None:
        token_env = v.text(token_env, "auth.token_env")
        if not resolve_secrets:
            return AuthConfig(
                token_env=token_env,
                inference=v.boolean(data.get("inference", False), "auth.inference"),
            )
        token = os.environ.get(token_env) or None
        if token is None:
            raise ConfigError(
                f"auth.token_env: expected the environment variable {token_env} to hold the "
                "bearer token, received nothing (it is unset or empty)"
            )
    inference = v.boolean(data.get("inference", False), "auth.inference")
    if inference and token is None:
        raise ConfigError("auth.inference: true needs auth.token or auth.token_env, received none")
    return AuthConfig(token=token, token_env=token_env, inference=inference)


def _optional(value: Any, parse: Any) -> Any:
    return None if value is None else parse(value)


def _analysis(value: Any, models: tuple[ModelConfig, ...]) -> AnalysisConfig:
    if value is None:
        return AnalysisConfig()
    value = v.mapping(value, "analysis")
    v.no_unknown(value, _ANALYSIS_KEYS, "analysis")
    served = [m.name for m in models]
    names: dict[str, str | None] = {}
    for key in ("champion", "challenger"):
        name = value.get(key)
        if name is not None and name not in served:
            raise ConfigError(
                f"analysis.{key}: expected one of the models[].name {served}, received {name!r}"
            )
        names[key] = name
    if names["champion"] is not None and names["champion"] == names["challenger"]:
        raise ConfigError(
            "analysis.challenger: expected a model other than the champion, received "
            f"{names['challenger']!r}"
        )

    def number(key: str, default: float, minimum: float, maximum: float | None = None) -> float:
        return v.number(
            value.get(key, default), f"analysis.{key}", minimum=minimum, maximum=maximum
        )

    alpha = number("alpha", DEFAULT_ALPHA, 1e-6, 0.5)
    power = number("power", 0.8, 0.5, 0.999)
    return AnalysisConfig(
        champion=names["champion"],
        challenger=names["challenger"],
        maturity_days=number("maturity_days", DEFAULT_MATURITY_DAYS, 0.0, 3650.0),
        alpha=alpha,
        primary_metric=v.choice(
            value.get("primary_metric", "recall"), "analysis.primary_metric", PRIMARY_METRICS
        ),
        design=v.choice(value.get("design", "auto"), "analysis.design", DESIGNS),
        planned_frauds=v.integer(
            value.get("planned_frauds", DEFAULT_PLANNED_FRAUDS),
            "analysis.planned_frauds",
            minimum=1,
        ),
        planned_transactions=v.integer(
            value.get("planned_transactions", DEFAULT_PLANNED_TRANSACTIONS),
            "analysis.planned_transactions",
            minimum=1,
        ),
        minimum_effect=number("minimum_effect", 0.02, 1e-6, 1.0),
        power=power,
        max_days=number("max_days", 60.0, 0.0),
        max_frauds=_optional(
            value.get("max_frauds"),
            lambda x: v.integer(x, "analysis.max_frauds", minimum=1),
        ),
        guardrails=_guardrails(value.get("guardrails")),
        cost=_cost(value.get("cost")),
    )


def _guardrails(value: Any) -> GuardrailsConfig:
    if value is None:
        return GuardrailsConfig()
    where = "analysis.guardrails"
    value = v.mapping(value, where)
    v.no_unknown(value, _GUARDRAIL_KEYS, where)
    d = GuardrailsConfig()

    def limit(key: str, maximum: float | None = None) -> float | None:
        raw = value.get(key, getattr(d, key))
        return _optional(raw, lambda x: v.number(x, f"{where}.{key}", minimum=0.0, maximum=maximum))

    return GuardrailsConfig(
        srm_p=v.number(value.get("srm_p", d.srm_p), f"{where}.srm_p", minimum=1e-12, maximum=0.5),
        max_alert_rate_increase=v.number(
            value.get("max_alert_rate_increase", d.max_alert_rate_increase),
            f"{where}.max_alert_rate_increase",
            minimum=0.0,
        ),
        precision_floor=v.number(
            value.get("precision_floor", d.precision_floor),
            f"{where}.precision_floor",
            minimum=0.0,
            maximum=1.0,
        ),
        min_labelled_alerts=v.integer(
            value.get("min_labelled_alerts", d.min_labelled_alerts),
            f"{where}.min_labelled_alerts",
            minimum=0,
        ),
        max_error_rate=limit("max_error_rate", 1.0),
        max_p99_latency_ms=limit("max_p99_latency_ms"),
    )


def _cost(value: Any) -> CostConfig:
    if value is None:
        return CostConfig()
    where = "analysis.cost"
    value = v.mapping(value, where)
    v.no_unknown(value, _COST_KEYS, where)
    d = CostConfig()

    def price(key: str, maximum: float | None = None) -> float:
        return v.number(
            value.get(key, getattr(d, key)), f"{where}.{key}", minimum=0.0, maximum=maximum
        )

    return CostConfig(
        loss_share=price("loss_share", 1.0),
        loss_per_fraud=price("loss_per_fraud"),
        investigation_cost=price("investigation_cost"),
        friction_cost=price("friction_cost"),
        transactions_per_day=_optional(
            value.get("transactions_per_day"),
            lambda x: v.number(x, f"{where}.transactions_per_day", minimum=1e-9),
        ),
    )


def _rollout(value: Any) -> RolloutConfig:
    if value is None:
        return RolloutConfig()
    value = v.mapping(value, "rollout")
    v.no_unknown(value, _ROLLOUT_KEYS, "rollout")
    d = RolloutConfig()
    steps = d.steps
    if "steps" in value:
        raw = value["steps"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ROLLOUT_STEPS:
            raise ConfigError(
                f"rollout.steps: expected a list of 1 to {MAX_ROLLOUT_STEPS} steps, received "
                f"{v.describe(raw)}"
            )
        steps = tuple(_rollout_step(item, f"rollout.steps[{i}]") for i, item in enumerate(raw))
        for i in range(1, len(steps)):
            if steps[i].weight <= steps[i - 1].weight:
                raise ConfigError(
                    f"rollout.steps[{i}].weight: expected more than the step before "
                    f"({steps[i - 1].weight}), received {steps[i].weight}"
                )
    servers = d.servers
    if "servers" in value:
        raw = value["servers"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= 64:
            raise ConfigError(
                f"rollout.servers: expected a list of 1 to 64 URLs, received {v.describe(raw)}"
            )
        servers = tuple(_server_url(item, f"rollout.servers[{i}]") for i, item in enumerate(raw))
    return RolloutConfig(
        steps=steps,
        check_interval_s=v.number(
            value.get("check_interval_s", DEFAULT_CHECK_INTERVAL_S),
            "rollout.check_interval_s",
            minimum=0.05,
            maximum=3600.0,
        ),
        promote=v.choice(value.get("promote", d.promote), "rollout.promote", ROLLOUT_PROMOTE),
        servers=servers,
    )


def _rollout_step(value: Any, where: str) -> RolloutStep:
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"weight": value}  # a bare weight: the default minimum duration and sample
    value = v.mapping(value, where)
    v.no_unknown(value, _STEP_KEYS, where)
    if "weight" not in value:
        raise ConfigError(f"{where}.weight: expected an integer 0 to 100, received nothing")
    return RolloutStep(
        weight=v.integer(value["weight"], f"{where}.weight", minimum=0, maximum=100),
        min_duration_s=v.number(
            value.get("min_duration_s", DEFAULT_STEP_MIN_DURATION_S),
            f"{where}.min_duration_s",
            minimum=0.0,
            maximum=30 * 86_400.0,
        ),
        min_sample=v.integer(
            value.get("min_sample", DEFAULT_STEP_MIN_SAMPLE),
            f"{where}.min_sample",
            minimum=0,
            maximum=10**9,
        ),
    )


def _server_url(value: Any, where: str) -> str:
    url = v.text(value, where)
    if not url.startswith(("http://", "https://")) or len(url) > 300:
        raise ConfigError(
            f"{where}: expected an http:// or https:// URL of at most 300 characters, "
            f"received {v.describe(url)}"
        )
    return url.rstrip("/")


def _rollup_interval(value: Any) -> float:
    """0 (off) or a minute to a day: a roll-up recounts the open days, so not every refresh."""
    where = "monitoring.rollup_interval_s"
    seconds = v.number(value, where, minimum=0.0, maximum=86_400.0)
    if 0 < seconds < 60:
        raise ConfigError(f"{where}: expected 0 (off) or 60 to 86400 seconds, received {value!r}")
    return seconds


def _monitoring(
    value: Any, analysis: AnalysisConfig, ledger: LedgerConfig | None
) -> MonitoringConfig:
    if value is None:
        return MonitoringConfig(alerts=parse_alerts(None, analysis, ledger))
    where = "monitoring"
    value = v.mapping(value, where)
    v.no_unknown(value, _MONITORING_KEYS, where)
    d = MonitoringConfig()

    def number(key: str, minimum: float, maximum: float) -> float:
        return v.number(
            value.get(key, getattr(d, key)), f"{where}.{key}", minimum=minimum, maximum=maximum
        )

    def integer(key: str, minimum: int, maximum: int) -> int:
        return v.integer(
            value.get(key, getattr(d, key)), f"{where}.{key}", minimum=minimum, maximum=maximum
        )

    refresh_s = number("refresh_s", 0.05, 3600.0)
    psi_warning = number("psi_warning", 0.0, 10.0)
    psi_alert = number("psi_alert", 0.0, 10.0)
    if psi_alert < psi_warning:
        raise ConfigError(
            f"{where}.psi_alert: expected a level >= psi_warning ({psi_warning:g}), "
            f"received {psi_alert:g}"
        )
    sample_rows = integer("drift_sample_rows", 100, 1_000_000)
    return MonitoringConfig(
        enabled=v.boolean(value.get("enabled", True), f"{where}.enabled"),
        traffic_window_s=number("traffic_window_s", refresh_s, 86_400.0),
        label_window_days=number("label_window_days", 1 / 24, 3650.0),
        ledger_refresh_s=number("ledger_refresh_s", 0.05, 86_400.0),
        rollup_interval_s=_rollup_interval(value.get("rollup_interval_s", d.rollup_interval_s)),
        refresh_s=refresh_s,
        drift_refresh_s=number("drift_refresh_s", 0.05, 86_400.0),
        drift_sample_rows=sample_rows,
        drift_min_rows=integer("drift_min_rows", 1, sample_rows),
        psi_warning=psi_warning,
        psi_alert=psi_alert,
        alerts=parse_alerts(value.get("alerts"), analysis, ledger),
        rule=parse_rule(value.get("rule")),
    )
