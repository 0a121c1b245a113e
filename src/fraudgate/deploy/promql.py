"""The PromQL the alerts and the dashboard share, written once so a panel shows exactly what an
alert judges.

Every expression aggregates across replicas: counters are summed (each replica counts its own
requests), gauges computed from the shared ledger or the config (weights, precision, recall,
drift) take ``max`` so N replicas do not make N alerts.
"""

from __future__ import annotations

import re

SERVED = "fraudgate_experiment_served_total"
WEIGHT = "fraudgate_experiment_weight"
REQUESTS = "fraudgate_inference_requests_total"
FAILURES = "fraudgate_inference_failures_total"
LATENCY_BUCKETS = "fraudgate_inference_request_duration_seconds_bucket"
SERVER_ERROR = 'code=~"5.."'

_METRIC = re.compile(r"\bfraudgate_[a-z0-9_]+\b")


def metric_names(expr: str) -> set[str]:
    """The fraudgate metric names an expression reads (every one starts with ``fraudgate_``)."""
    return set(_METRIC.findall(expr))


def selector(metric: str, matchers: str = "") -> str:
    return f"{metric}{{{matchers}}}" if matchers else metric


def per_arm(metric: str, matchers: str = "") -> str:
    """A gauge every replica reports alike, once per experiment and model."""
    return f"max by (experiment, model) ({selector(metric, matchers)})"


def observed_share(window: str) -> str:
    """Each arm's share of the served requests over ``window``, all replicas together."""
    served = f"rate({SERVED}[{window}])"
    return (
        f"sum by (experiment, model) ({served})"
        f" / on (experiment) group_left sum by (experiment) ({served})"
    )


def weight_share() -> str:
    """Each arm's share of the experiment's total live weight."""
    weights = per_arm(WEIGHT)
    return f"{weights} / on (experiment) group_left sum by (experiment) ({weights})"


def share_deviation(window: str) -> str:
    """Observed share minus the weight's share (positive: the arm gets more than its weight)."""
    return f"({observed_share(window)}) - on (experiment, model) ({weight_share()})"


def served_requests(window: str) -> str:
    return f"sum by (experiment) (increase({SERVED}[{window}]))"


def latency_quantile(quantile: float, window: str) -> str:
    return f"histogram_quantile({quantile}, sum by (model, le) (rate({LATENCY_BUCKETS}[{window}])))"


def requests(window: str) -> str:
    return f"sum by (model) (increase({REQUESTS}[{window}]))"


def error_ratio(window: str) -> str:
    """Server errors (5xx) per request, per model."""
    return (
        f"sum by (model) (rate({FAILURES}{{{SERVER_ERROR}}}[{window}]))"
        f" / sum by (model) (rate({REQUESTS}[{window}]))"
    )
