"""``monitoring.alerts`` and ``monitoring.rule``: the thresholds the exported Prometheus alerts and
the Grafana dashboard use, and the PrometheusRule's metadata (records only; parsed by
`fraudgate.config.alerts_loading`).

Every field has a documented default, so a config without the section exports working alerts.
Each alert has its own small record (threshold, evaluation window, ``for``); the parser reads
them all from the fields' metadata (kind and bounds), so a new threshold is one line::

    monitoring:
      psi_alert: 0.25             # the drift alert's level (the server's gauges use it too)
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
        drift: {for: 30m}                              # above monitoring.psi_alert
        ledger_write_failures: {window: 5m, for: 0s}
        shipper_lag: {seconds: null, for: 2m}          # null: half of ledger.max_lag_s
        label_coverage: {floor: 0.5, stall: 6h, for: 30m}
        fallback_runtime: {for: 5m}

Durations are Prometheus durations (``30s``, ``5m``, ``1h30m``). ``null`` thresholds are
resolved when the file is read (from the ``analysis``/``ledger`` sections), so the records hold
numbers only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# the PrometheusRule CRD's duration pattern (`0`, or units largest first, each at most once)
DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_UNIT_S = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,62}$")
DEFAULT_P99_LATENCY_MS = 250.0  # when analysis.guardrails.max_p99_latency_ms is null too
DEFAULT_ERROR_RATE = 0.01  # when analysis.guardrails.max_error_rate is null too
DEFAULT_RULE_NAME = "fraudgate-alerts"


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration (``1h30m`` -> 5400)."""
    total = 0.0
    for amount, unit in re.findall(r"([0-9]+)(ms|[ywdhms])", text):
        total += int(amount) * (0.001 if unit == "ms" else _UNIT_S[unit])
    return total


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
    """A feature's PSI above ``monitoring.psi_alert`` (one level for the gauges and the alert)."""

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
    challenger_precision: ChallengerPrecisionAlert = field(default_factory=ChallengerPrecisionAlert)
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
