"""The replicas' serving counters from ``/metrics``: requests and server-side failures per model.

Failed requests never reach the ledger (nothing was decided), so the challenger's error rate
comes from the servers: ``fraudgate_inference_failures_total`` with a 5xx ``code`` (a 4xx is the
caller's fault, not the model's) over ``fraudgate_inference_requests_total``, summed over the
replicas, measured as the change since a baseline (a step's start). A replica restarted since
the baseline restarts its counters at 0; its count since the restart is taken then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServingCounters:
    """Per replica URL, per model: requests and 5xx failures since each replica started."""

    requests: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    failures: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict[str, dict[str, float]]]:
        return {
            "requests": {u: dict(m) for u, m in self.requests.items()},
            "failures": {u: dict(m) for u, m in self.failures.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> ServingCounters:
        if not data:
            return cls()
        requests = data.get("requests") or {}
        failures = data.get("failures") or {}
        assert isinstance(requests, Mapping) and isinstance(failures, Mapping)
        return cls(
            {str(u): {str(k): float(v) for k, v in m.items()} for u, m in requests.items()},
            {str(u): {str(k): float(v) for k, v in m.items()} for u, m in failures.items()},
        )

    def since(self, baseline: ServingCounters, model: str) -> tuple[float, float]:
        """(requests, failures) of ``model`` since ``baseline``, summed over the replicas."""
        total_requests = total_failures = 0.0
        for url, now in self.requests.items():
            before = baseline.requests.get(url, {}).get(model, 0.0)
            count = now.get(model, 0.0)
            failed = self.failures.get(url, {}).get(model, 0.0)
            failed_before = baseline.failures.get(url, {}).get(model, 0.0)
            if count < before or failed < failed_before:  # restarted since: counters from 0
                before = failed_before = 0.0
            total_requests += count - before
            total_failures += failed - failed_before
        return total_requests, total_failures


def parse_counters(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """(requests, 5xx failures) per model from one replica's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    requests: dict[str, float] = {}
    failures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "fraudgate_inference_requests":
            target = requests
        elif family.name == "fraudgate_inference_failures":
            target = failures
        else:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if target is failures and not str(sample.labels.get("code", "")).startswith("5"):
                continue
            model = sample.labels.get("model", "")
            target[model] = target.get(model, 0.0) + float(sample.value)
    return requests, failures


def read_counters(urls: Sequence[str], token: str | None) -> ServingCounters:
    """Scrape every replica; an unreachable one counts nothing (its traffic is elsewhere)."""
    from fraudgate.client import FraudgateClient, FraudgateError

    requests: dict[str, dict[str, float]] = {}
    failures: dict[str, dict[str, float]] = {}
    for url in urls:
        try:
            with FraudgateClient(url, token=token, timeout=5.0) as client:
                text = client.metrics_text()
        except FraudgateError:
            continue
        requests[url], failures[url] = parse_counters(text)
    return ServingCounters(requests, failures)
