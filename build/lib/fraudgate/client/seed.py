"""`FraudDetectionClient`: the seed project's client API, kept working on top of fraudgate.client.

Existing callers do::

    client = FraudDetectionClient("http://localhost:8080")  # or (url, "fraud-v2-candidate")
    result = client.predict_fraud(features)  # 30 floats
    result["probability"], result["is_fraud"], result["confidence"]

The request is exactly the seed's payload (``POST /v2/models/{model}/infer`` with
``{"inputs":[{"name":"fraud_features","shape":[1,30],"datatype":"FP32","data":[...]}],
"parameters":{"content_type":"np"}}``) and the probability is ``outputs[0].data[0]``.

Result keys: ``probability`` (float), ``is_fraud`` (bool), ``confidence`` (float in [0, 1]) as
before, plus ``model_name``, ``model_version`` and ``route`` (which model answered).

* ``is_fraud`` is the server's decision at the model's registered threshold (the
  ``fraud_decision`` output); the seed compared with a fixed 0.5, which is what the champion's
  threshold is, and the challenger's threshold is now honoured too. Should a server not return
  the decision, ``probability >= 0.5`` is used.
* ``confidence`` = ``abs(probability - 0.5) * 2``: how far the score is from the undecided
  middle, scaled to [0, 1] (0 = a coin flip, 1 = certain either way) -- the seed's definition.
  It is not a calibrated probability of being right.
"""

from __future__ import annotations

from typing import Any

from fraudgate.client.sync import FraudgateClient
from fraudgate.client.wire import DEFAULT_MODEL

SEED_THRESHOLD = 0.5


def confidence(probability: float) -> float:
    """The seed's confidence: distance of the probability from 0.5, scaled to [0, 1]."""
    return min(1.0, abs(float(probability) - 0.5) * 2.0)


class FraudDetectionClient:
    """The seed's client (same constructor and ``predict_fraud``), backed by `FraudgateClient`."""

    def __init__(
        self,
        base_url: str = "http://localhost:8080",
        model_name: str = DEFAULT_MODEL,
        **kwargs: Any,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self._client = FraudgateClient(self.base_url, model=model_name, **kwargs)

    def predict_fraud(self, features: Any) -> dict[str, Any]:
        """Score one transaction's 30 features; see the module docstring for the result keys."""
        result = self._client.score(features)
        probability = float(result.probability)
        decision = result.is_fraud
        is_fraud = bool(decision) if decision is not None else probability >= SEED_THRESHOLD
        return {
            "probability": probability,
            "is_fraud": is_fraud,
            "confidence": confidence(probability),
            "model_name": result.model_name,
            "model_version": result.model_version,
            "route": result.route,
        }

    def health_check(self) -> bool:
        """True when the server is ready to score."""
        return self._client.ready()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> FraudDetectionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
