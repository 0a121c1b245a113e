"""Python client for a fraudgate server (REST or gRPC, sync or async).

::

    from fraudgate.client import FraudgateClient

    with FraudgateClient("http://127.0.0.1:8080", token="...") as client:
        result = client.score(features, routing_key="card-42", transaction_id="tx-1", amount=12.5)
        result.probability, result.is_fraud, result.model_name, result.model_version, result.route
        client.send_labels([{"transaction_id": "tx-1", "is_fraud": True, "label_time": when}])
        client.set_weights("fraud-ab", {"fraud-v1-baseline": 50, "fraud-v2-candidate": 50}, "alice")

``AsyncFraudgateClient`` has the same methods as coroutines. Failures raise a
:class:`FraudgateError` subclass carrying the server's message and status. The seed's
``FraudDetectionClient(base_url).predict_fraud(features)`` keeps working (see
:mod:`fraudgate.client.seed`).
"""

from fraudgate.client.aio import AsyncFraudgateClient
from fraudgate.client.errors import (
    Conflict,
    ConnectionFailed,
    ExperimentNotFound,
    FraudgateError,
    InvalidInput,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServerNotReady,
    Unauthorized,
)
from fraudgate.client.seed import FraudDetectionClient
from fraudgate.client.sync import FraudgateClient
from fraudgate.client.types import (
    ActionResult,
    ExperimentInfo,
    FeedbackResult,
    Label,
    RejectedRow,
    ScoreResult,
    WeightChange,
)

__all__ = [
    "ActionResult",
    "AsyncFraudgateClient",
    "Conflict",
    "ConnectionFailed",
    "ExperimentInfo",
    "ExperimentNotFound",
    "FeedbackResult",
    "FraudDetectionClient",
    "FraudgateClient",
    "FraudgateError",
    "InvalidInput",
    "Label",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "RejectedRow",
    "ScoreResult",
    "ServerError",
    "ServerNotReady",
    "Unauthorized",
    "WeightChange",
]
