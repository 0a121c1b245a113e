"""The ``monitoring:`` section: the thresholds the Prometheus alerts and the Grafana dashboard use.

Every field has a documented default, so a config without the section exports working alerts.
Each alert has its own small record (threshold, evaluation window, ``for``), and one generic
parser reads them all from the fields' metadata (kind and bounds), so a new threshold is one line::

    monitoring:
      rule: {name: fraudgate-alerts, namespace: null, labels: {}}   # PrometheusRule metadata
      alerts:
        recall: {floor: 0.70, min_labelled_frauds: 30, for: 30m}
        challenger_precision: {floor: null, min_labelled_frauds: 30, for: 30m}
                                 # floor null: analysis.guardrails.precision_floor
        traffic_split: {tolerance: 0.05, min_requests: 1000, window: 10m, for: 10m}
        latency: {p99_ms: null, window: 5m, for: 10m}
                                 # null: analysis.guardrails.max_p99_latency_ms, else 250
        errors: {max_rate: null, min_requests: 100, window: 5m, for: 5m}
                                 # null: analysis.guardrails.max_error_rate, else 0.01
        drift: {psi: 0.25, for: 30m}
        ledger_write_failures: {window: 5m, for: 0s}
        shipper_lag: {seconds: null, for: 2m}          # null: half of ledger.max_lag_s
        label_coverage: {floor: 0.5, stall: 6h, for: 30m}
        fallback_runtime: {for: 5m}

Durations are Prometheus durations (``30s``, ``5m``, ``1h30m``). ``null`` thresholds are
resolved when the file is read (from the ``analysis``/``ledger`` sections), so the records hold
numbers only.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from fraudgate.config import validators as v
from fraudgate.config.schema import (
    DEFAULT_MAX_LAG_S,
    AnalysisConfig,
    ConfigError,
    LedgerConfig,
)

# the PrometheusRule CRD's duration pattern (`0`, or units largest first, each at most once)
_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_UNIT_S = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,62}$")
DEFAULT_P99_LATENCY_MS = 250.0  # when analysis.guardrails.max_p99_latency_ms is null too
DEFAULT_ERROR_RATE = 0.01  # when analysis.guardrails.max_error_rate is null too
DEFAULT_RULE_NAME = "fraudgate-alerts"


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration (``1h30m`` -> 5400)."""
    total = 0.0
    for amount, unit in re.findall(r"([0-9]+)(ms|[ywdhms])", text):
        total += int(amount) * (0.001 if unit == "ms" else _UNIT_S[unit])
    return total


def _duration(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        value = "0s"
    if not isinstance(value, str) or not value or not _DURATION.match(value):
        raise ConfigError(
            f"{where}: expected a Prometheus duration such as 30s, 5m or 1h30m, "
            f"received {v.describe(value)}"
        )
    return value


def _threshold(default: Any, kind: str, minimum: float = 0.0, maximum: float | None = None) -> Any:
    """A record field the generic parser reads: ``kind`` is number | optional number (None:
    resolved from another section) | integer | duration | window (a duration of at least 1s)."""
    return field(default=default, metadata={"kind": kind, "min": minimum, "max": maximum})


@dataclass(frozen=True, slots=True)
class RecallAlert:
    """Realised recall of a model below the floor, once enough labelled frauds back it."""

    floor: float = _threshold(0.70, "number", 0.0, 1.0)  # the seed's fraud_model_recall < 0.70
    min_labelled_frauds: int = _threshold(30, "integer", 1)
    for_: str = _threshold("30m", "duration")


@dataclass(frozen=True, slots=True)
class ChallengerPrecisionAlert:
    """Realised precision of the challenger below the floor (investigators' time)."""

    floor: float | None = _threshold(None, "optional number", 0.0, 1.0)
    min_labelled_frauds: int = _threshold(30, "integer", 1)
    for_: str = _threshold("30m", "duration")


@dataclass(frozen=True, slots=True)
class TrafficSplitAlert:
    """An arm's share of the served traffic more than ``tolerance`` from its weight's share."""

    tolerance: float = _threshold(0.05, "number", 1e-6, 1.0)
    min_requests: int = _threshold(1000, "integer", 1)  # in the window, all arms together
    window: str = _threshold("10m", "window")
    for_: str = _threshold("10m", "duration")


@dataclass(frozen=True, slots=True)
class LatencyAlert:
    p99_ms: float | None = _threshold(None, "optional number", 1e-3, 600_000.0)
    window: str = _threshold("5m", "window")
    for_: str = _threshold("10m", "duration")


@dataclass(frozen=True, slots=True)
class ErrorRateAlert:
    """Server errors (5xx) per request; a caller's bad requests (4xx) are not the server's."""

    max_rate: float | None = _threshold(None, "optional number", 0.0, 1.0)
    min_requests: int = _threshold(100, "integer", 1)
    window: str = _threshold("5m", "window")
    for_: str = _threshold("5m", "duration")


@dataclass(frozen=True, slots=True)
class DriftAlert:
    psi: float = _threshold(0.25, "number", 1e-6)  # 0.1: moderate shift, 0.25: significant
    for_: str = _threshold("30m", "duration")


@dataclass(frozen=True, slots=True)
class LedgerWriteFailuresAlert:
    window: str = _threshold("5m", "window")
    for_: str = _threshold("0s", "duration")


@dataclass(frozen=True, slots=True)
class ShipperLagAlert:
    seconds: float | None = _threshold(None, "optional number", 0.001, 86400.0)
    for_: str = _threshold("2m", "duration")


@dataclass(frozen=True, slots=True)
class LabelCoverageAlert:
    """Label coverage below the floor and no label received for ``stall``."""

    floor: float = _threshold(0.5, "number", 0.0, 1.0)
    stall: str = _threshold("6h", "window")
    for_: str = _threshold("30m", "duration")


@dataclass(frozen=True, slots=True)
class FallbackRuntimeAlert:
    for_: str = _threshold("5m", "duration")


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    recall: RecallAlert = field(default_factory=RecallAlert)
    challenger_precision: ChallengerPrecisionAlert = field(
        default_factory=ChallengerPrecisionAlert
    )
    traffic_split: TrafficSplitAlert = field(default_factory=TrafficSplitAlert)
    latency: LatencyAlert = field(default_factory=LatencyAlert)
    errors: ErrorRateAlert = field(default_factory=ErrorRateAlert)
    drift: DriftAlert = field(default_factory=DriftAlert)
    ledger_write_failures: LedgerWriteFailuresAlert = field(
        default_factory=LedgerWriteFailuresAlert
    )
    shipper_lag: ShipperLagAlert = field(default_factory=ShipperLagAlert)
    label_coverage: LabelCoverageAlert = field(default_factory=LabelCoverageAlert)
    fallback_runtime: FallbackRuntimeAlert = field(default_factory=FallbackRuntimeAlert)


@dataclass(frozen=True, slots=True)
class RuleMetadata:
    """The PrometheusRule's metadata: the operator selects rules by ``labels``."""

    name: str = DEFAULT_RULE_NAME
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    rule: RuleMetadata = field(default_factory=RuleMetadata)


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
    sections = dataclasses.fields(AlertsConfig)
    v.no_unknown(data, tuple(f.name for f in sections), where)
    return AlertsConfig(
        **{
            f.name: _alert(f.default_factory, data.get(f.name), f"{where}.{f.name}")  # type: ignore[misc]
            for f in sections
        }
    )


def _rule(value: Any, where: str) -> RuleMetadata:
    if value is None:
        return RuleMetadata()
    data = v.mapping(value, where)
    v.no_unknown(data, ("name", "namespace", "labels"), where)
    name = v.text(data.get("name", DEFAULT_RULE_NAME), f"{where}.name")
    if not _DNS_SUBDOMAIN.match(name):
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
        if not _LABEL_NAME.match(key):
            raise ConfigError(
                f"{where}.labels: expected label names of letters, digits, '_', '.', '/', '-', "
                f"received {key!r}"
            )
        labels[key] = v.text(label, f"{where}.labels.{key}", allow_empty=True)
    return RuleMetadata(name=name, namespace=namespace, labels=labels)


def parse_monitoring(
    value: Any, analysis: AnalysisConfig, ledger: LedgerConfig | None
) -> MonitoringConfig:
    """Validate the ``monitoring:`` section; resolve the null thresholds from the ``analysis``
    guardrails and the ledger's ``max_lag_s``."""
    if value is None:
        value = {}
    data = v.mapping(value, "monitoring")
    v.no_unknown(data, ("alerts", "rule"), "monitoring")
    alerts = _alerts(data.get("alerts"), "monitoring.alerts")
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
    alerts = dataclasses.replace(
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
    return MonitoringConfig(alerts=alerts, rule=_rule(data.get("rule"), "monitoring.rule"))
