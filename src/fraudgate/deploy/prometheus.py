"""Prometheus alerting rules from the config: a plain rules file and the same rules as a
``PrometheusRule`` (``monitoring.coreos.com/v1``, the Prometheus Operator's kind).

The thresholds come from the ``monitoring.alerts`` section (`fraudgate.config.alerts`), the
champion/challenger pair from the experiment and ``analysis`` (as the evaluation picks them).
Annotations use only ``{{ $labels.* }}`` and ``{{ printf "%.3f" $value }}``, so a test can state
the exact text an alert carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudgate.config import FraudgateConfig
from fraudgate.deploy import promql
from fraudgate.promotion import champion_and_challenger

GROUP = "fraudgate"
VALUE = '{{ printf "%.3f" $value }}'
API_VERSION = "monitoring.coreos.com/v1"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alerting rule; ``severity``: critical (act now) or warning (look today)."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str

    @property
    def metrics(self) -> set[str]:
        return promql.metric_names(self.expr)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def _number(value: float) -> str:
    """A threshold as PromQL and annotations show it (no float noise: 0.7, not 0.7000000001)."""
    return f"{value:.6g}"


def challenger_of(config: FraudgateConfig) -> str | None:
    """The challenger the evaluation would judge (the experiment's, else ``analysis``'s, else
    the second model served), or None when there is none."""
    spec = config.experiment_spec
    if spec is not None:
        return champion_and_challenger(spec, config.analysis)[1]
    if config.analysis.challenger is not None:
        return config.analysis.challenger
    return config.models[1].name if len(config.models) > 1 else None


def alert_rules(config: FraudgateConfig) -> tuple[AlertRule, ...]:
    """Every alert the config asks for, in a fixed order (the challenger's precision only when
    there is a challenger; with ``monitoring.enabled: false``, none of those that read the
    monitoring's gauges, which the server then does not export: such a rule could never
    fire)."""
    a = config.monitoring.alerts
    rules: list[AlertRule] = []

    recall, frauds = _number(a.recall.floor), a.recall.min_labelled_frauds
    rules.append(
        AlertRule(
            "FraudgateRecallBelowFloor",
            f"({promql.per_arm('fraudgate_model_recall')} < {recall})"
            f" and on (experiment, model) "
            f"({promql.per_arm('fraudgate_model_labelled_frauds')} >= {frauds})",
            a.recall.for_,
            "critical",
            "Recall of {{ $labels.model }} in {{ $labels.experiment }} is below " + recall,
            f"Realised recall {VALUE} is below the floor {recall} (judged over at least "
            f"{frauds} labelled frauds): the model misses frauds it should catch.",
        )
    )

    challenger = challenger_of(config)
    if challenger is not None:
        p = a.challenger_precision
        floor, matcher = _number(p.floor or 0.0), f'model="{challenger}"'
        rules.append(
            AlertRule(
                "FraudgateChallengerPrecisionBelowFloor",
                f"({promql.per_arm('fraudgate_model_precision', matcher)} < {floor})"
                f" and on (experiment, model) "
                f"({promql.per_arm('fraudgate_model_labelled_frauds', matcher)}"
                f" >= {p.min_labelled_frauds})",
                p.for_,
                "warning",
                "Challenger {{ $labels.model }} precision is below " + floor,
                f"Realised precision {VALUE} of the challenger is below the floor {floor}: "
                "its alerts cost investigators more than they find.",
            )
        )

    split = a.traffic_split
    tolerance = _number(split.tolerance)
    rules.append(
        AlertRule(
            "FraudgateTrafficSplitDeviation",
            f"abs({promql.share_deviation(split.window)}) > {tolerance}"
            f" and on (experiment) ({promql.served_requests(split.window)}"
            f" >= {split.min_requests})",
            split.for_,
            "warning",
            "Traffic to {{ $labels.model }} in {{ $labels.experiment }} deviates from its weight",
            f"The served share of {{{{ $labels.model }}}} differs from its weight's share by "
            f"{VALUE} (tolerance {tolerance}, over {split.window} and at least "
            f"{split.min_requests} requests): a sample ratio mismatch biases the comparison.",
        )
    )

    latency = a.latency
    p99_s = _number((latency.p99_ms or 0.0) / 1000.0)
    rules.append(
        AlertRule(
            "FraudgateLatencyP99High",
            f"{promql.latency_quantile(0.99, latency.window)} > {p99_s}",
            latency.for_,
            "warning",
            "p99 latency of {{ $labels.model }} is above " + p99_s + "s",
            f"The 99th percentile of request latency is {VALUE}s over {latency.window}, above "
            f"{p99_s}s.",
        )
    )

    errors = a.errors
    max_rate = _number(errors.max_rate or 0.0)
    rules.append(
        AlertRule(
            "FraudgateErrorRateHigh",
            f"({promql.error_ratio(errors.window)}) > {max_rate}"
            f" and on (model) ({promql.requests(errors.window)} >= {errors.min_requests})",
            errors.for_,
            "critical",
            "Server errors of {{ $labels.model }} above " + max_rate,
            f"{VALUE} of the requests to {{{{ $labels.model }}}} failed with a server error "
            f"(5xx) over {errors.window}, above {max_rate}.",
        )
    )

    psi = _number(config.monitoring.psi_alert)
    rules.append(
        AlertRule(
            "FraudgateDriftPSIHigh",
            f"max by (model, feature) (fraudgate_drift_psi) > {psi}",
            a.drift.for_,
            "warning",
            "Feature {{ $labels.feature }} of {{ $labels.model }} drifted (PSI above " + psi + ")",
            f"The population stability index of {{{{ $labels.feature }}}} is {VALUE}, above "
            f"{psi}: live traffic no longer looks like the model's training data.",
        )
    )

    writes = a.ledger_write_failures
    rules.append(
        AlertRule(
            "FraudgateLedgerWriteFailures",
            f"increase(fraudgate_ledger_write_failures_total[{writes.window}]) > 0",
            writes.for_,
            "critical",
            "Ledger writes are failing on {{ $labels.instance }}",
            f"{VALUE} batches of served decisions could not be recorded over {writes.window} "
            "(those requests were answered 503).",
        )
    )

    lag = _number(a.shipper_lag.seconds or 0.0)
    rules.append(
        AlertRule(
            "FraudgateShipperLagHigh",
            f"fraudgate_ledger_journal_lag_seconds > {lag}",
            a.shipper_lag.for_,
            "warning",
            "Ledger shipper on {{ $labels.instance }} is behind",
            f"The oldest unshipped decision is {VALUE}s old, above {lag}s: the ledger falls "
            "behind and the server turns unready at ledger.max_lag_s.",
        )
    )

    coverage = a.label_coverage
    floor = _number(coverage.floor)
    rules.append(
        AlertRule(
            "FraudgateLabelCoverageStalled",
            f"({promql.per_arm('fraudgate_label_coverage_ratio')} < {floor})"
            f" and on (experiment, model) "
            f"({promql.per_arm('fraudgate_label_pending_decisions')} > 0)"
            f" unless on () "
            f"(sum(increase(fraudgate_labels_received_total[{coverage.stall}])) > 0)",
            coverage.for_,
            "warning",
            "Labels stopped arriving for {{ $labels.model }} in {{ $labels.experiment }}",
            f"Label coverage is {VALUE}, below {floor}, and no label arrived for "
            f"{coverage.stall}: check the feedback feed (investigations, chargebacks).",
        )
    )

    rules.append(
        AlertRule(
            "FraudgateModelOnFallbackRuntime",
            "max by (model, version) (fraudgate_model_runtime_fallback) > 0",
            a.fallback_runtime.for_,
            "warning",
            "{{ $labels.model }} version {{ $labels.version }} answers with its fallback runtime",
            "The model's configured runtime could not be used and a slower fallback answers "
            "its requests: check the server log for the reason.",
        )
    )
    if not config.monitoring.enabled:
        from fraudgate.serving.monitoring import MONITOR_METRICS

        rules = [rule for rule in rules if not rule.metrics & MONITOR_METRICS]
    return tuple(rules)


def rules_file(config: FraudgateConfig) -> dict[str, Any]:
    """A Prometheus rules file (``rule_files:`` in prometheus.yml) with every alert."""
    return {"groups": [{"name": GROUP, "rules": [r.to_dict() for r in alert_rules(config)]}]}


def prometheus_rule(config: FraudgateConfig) -> dict[str, Any]:
    """The same rules as a ``PrometheusRule`` for the Prometheus Operator."""
    rule = config.monitoring.rule
    metadata: dict[str, Any] = {
        "name": rule.name,
        "labels": {"app.kubernetes.io/name": "fraudgate", **rule.labels},
    }
    if rule.namespace is not None:
        metadata["namespace"] = rule.namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": rules_file(config),
    }
