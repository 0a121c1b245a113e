"""Parsing ``monitoring.alerts`` and ``monitoring.rule`` (records in `fraudgate.config.alerts`):
one generic parser reads every alert's record from its fields' metadata (kind, bounds), and the
null thresholds are resolved from the ``analysis`` guardrails and the ledger's ``max_lag_s``."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from fraudgate.config import validators as v
from fraudgate.config.alerts import (
    DEFAULT_ERROR_RATE,
    DEFAULT_P99_LATENCY_MS,
    DEFAULT_RULE_NAME,
    DNS_SUBDOMAIN,
    DURATION,
    LABEL_NAME,
    AlertsConfig,
    RuleMetadata,
    duration_seconds,
)
from fraudgate.config.schema import DEFAULT_MAX_LAG_S, AnalysisConfig, ConfigError, LedgerConfig


def _duration(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        value = "0s"
    if not isinstance(value, str) or not value or not DURATION.match(value):
        raise ConfigError(
            f"{where}: expected a Prometheus duration such as 30s, 5m or 1h30m, "
            f"received {v.describe(value)}"
        )
    return value


def _key(f: dataclasses.Field[Any]) -> str:
    return "for" if f.name == "for_" else f.name


def _field_value(f: dataclasses.Field[Any], raw: Any, where: str) -> Any:
    kind, minimum, maximum = f.metadata["kind"], f.metadata["min"], f.metadata["max"]
    if kind in ("duration", "window"):
        text = _duration(raw, where)
        if kind == "window" and duration_seconds(text) < 1.0:
            raise ConfigError(
                f"{where}: expected a window of at least 1s (a rate needs two scrapes in it), "
                f"received {text!r}"
            )
        return text
    if kind == "optional number":
        return None if raw is None else v.number(raw, where, minimum=minimum, maximum=maximum)
    if kind == "integer":
        return v.integer(raw, where, minimum=int(minimum), maximum=maximum)
    return v.number(raw, where, minimum=minimum, maximum=maximum)


def _alert(cls: type[Any], value: Any, where: str) -> Any:
    if value is None:
        return cls()
    data = v.mapping(value, where)
    fields = dataclasses.fields(cls)
    v.no_unknown(data, tuple(_key(f) for f in fields), where)
    parsed = {
        f.name: _field_value(f, data[_key(f)], f"{where}.{_key(f)}")
        for f in fields
        if _key(f) in data
    }
    return cls(**parsed)


def _alerts(value: Any, where: str) -> AlertsConfig:
    if value is None:
        return AlertsConfig()
    data = v.mapping(value, where)
    defaults = AlertsConfig()
    names = tuple(f.name for f in dataclasses.fields(AlertsConfig))
    v.no_unknown(data, names, where)
    return AlertsConfig(
        **{
            name: _alert(type(getattr(defaults, name)), data.get(name), f"{where}.{name}")
            for name in names
        }
    )


def parse_rule(value: Any, where: str = "monitoring.rule") -> RuleMetadata:
    """Validate ``monitoring.rule`` (the PrometheusRule's name, namespace and labels)."""
    if value is None:
        return RuleMetadata()
    data = v.mapping(value, where)
    v.no_unknown(data, ("name", "namespace", "labels"), where)
    name = v.text(data.get("name", DEFAULT_RULE_NAME), f"{where}.name")
    if not DNS_SUBDOMAIN.match(name):
        raise ConfigError(
            f"{where}.name: expected a Kubernetes name (lower-case letters, digits, '-' and '.', "
            f"at most 253), received {name!r}"
        )
    namespace = data.get("namespace")
    if namespace is not None:
        namespace = v.text(namespace, f"{where}.namespace")
        if not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", namespace):
            raise ConfigError(
                f"{where}.namespace: expected a Kubernetes namespace (DNS label), "
                f"received {namespace!r}"
            )
    labels: dict[str, str] = {}
    for key, label in v.mapping(data.get("labels") or {}, f"{where}.labels").items():
        if not LABEL_NAME.match(key):
            raise ConfigError(
                f"{where}.labels: expected label names of letters, digits, '_', '.', '/', '-', "
                f"received {key!r}"
            )
        labels[key] = v.text(label, f"{where}.labels.{key}", allow_empty=True)
    return RuleMetadata(name=name, namespace=namespace, labels=labels)


def parse_alerts(value: Any, analysis: AnalysisConfig, ledger: LedgerConfig | None) -> AlertsConfig:
    """Validate ``monitoring.alerts``; resolve the null thresholds from the ``analysis``
    guardrails and the ledger's ``max_lag_s``."""
    alerts = _alerts(value, "monitoring.alerts")
    guardrails = analysis.guardrails
    max_lag_s = ledger.max_lag_s if ledger is not None else DEFAULT_MAX_LAG_S
    p99 = alerts.latency.p99_ms
    p99 = p99 if p99 is not None else guardrails.max_p99_latency_ms or DEFAULT_P99_LATENCY_MS
    error_rate = alerts.errors.max_rate
    if error_rate is None:
        error_rate = (
            guardrails.max_error_rate
            if guardrails.max_error_rate is not None
            else DEFAULT_ERROR_RATE
        )
    precision = alerts.challenger_precision.floor
    lag = alerts.shipper_lag.seconds
    return dataclasses.replace(
        alerts,
        latency=dataclasses.replace(alerts.latency, p99_ms=p99),
        errors=dataclasses.replace(alerts.errors, max_rate=error_rate),
        challenger_precision=dataclasses.replace(
            alerts.challenger_precision,
            floor=guardrails.precision_floor if precision is None else precision,
        ),
        shipper_lag=dataclasses.replace(
            alerts.shipper_lag, seconds=max_lag_s / 2 if lag is None else lag
        ),
    )
