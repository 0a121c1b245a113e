"""The OpenAPI 3 document of the REST API, written from its route table, at ``/openapi.json``.

`openapi_document` turns the table's `Route` records (``fraudgate.serving.rest.ROUTES``) into the
``paths`` (operation, parameters, body, responses, ``bearerAuth`` security on the admin routes);
this module holds the component schemas they refer to and the documentation pieces routes share.
Exact enough for a schema-driven fuzzer (schemathesis): every route, every status it can answer
with, and the error body shape ``{"error": "..."}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import fraudgate
from fraudgate.data.contract import FEATURE_NAMES, INPUT_NAME, N_FEATURES
from fraudgate.protocol.datatypes import ALL_DATATYPES
from fraudgate.serving.routes import Body, Param, Response, Route

_REF = "#/components/schemas/"
JSON = "application/json"
OCTET = "application/octet-stream"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def json_response(schema: str | Mapping[str, Any], description: str) -> Response:
    """A JSON response whose schema is the named component (or the schema given)."""
    return Response(description, {JSON: _ref(schema) if isinstance(schema, str) else schema})


def json_body(schema: str | Mapping[str, Any], *, required: bool) -> Body:
    """A JSON request body whose schema is the named component (or the schema given)."""
    return Body({JSON: _ref(schema) if isinstance(schema, str) else schema}, required)


def _error(description: str) -> Response:
    return json_response("Error", description)


# -- parameters ----------------------------------------------------------------------------------
MODEL_NAME = Param(
    "name",
    "path",
    "Model name, e.g. `fraud-v1-baseline`, or with a version suffix (`fraud-v1-baseline_1`).",
    {"type": "string", "minLength": 1},
)
MODEL_VERSION = Param(
    "version",
    "path",
    "Serving version (the server's deployment counter, starting at 1).",
    {"type": "string", "minLength": 1},
)
EXPERIMENT_NAME = Param(
    "name",
    "path",
    "Experiment name, e.g. `fraud-detection-ab-test`.",
    {"type": "string", "minLength": 1},
)
INFERENCE_HEADER_LENGTH = Param(
    "Inference-Header-Content-Length",
    "header",
    "Triton binary extension: length of the JSON header that precedes the binary tensor data.",
    {"type": "integer", "minimum": 0},
    required=False,
)

# -- error responses -----------------------------------------------------------------------------
BAD = _error("Bad request: the message names the field, the expected and the received value.")
NOT_FOUND = _error("Unknown model or model version.")
UNKNOWN_EXPERIMENT = _error("Unknown experiment.")
TOO_LARGE = _error("Request body larger than the server's max_payload_bytes.")
NOT_READY = _error("The model (or server) is not ready: loading, unloaded or failed.")
UNAUTHORIZED = _error("Missing or wrong bearer token (header Authorization: Bearer <token>).")
UNAVAILABLE = _error("No ledger/experiment configured, or the ledger is unreachable.")
CONFLICT = _error(
    "Refused as things stand: the registry, this server and the ledger disagree about which "
    "model is live, or there is nothing to promote; the message says what to do."
)
FORBIDDEN = _error(
    "Model management refused: switched off (server.model_management: off), or no admin token "
    "is configured (auth.token / auth.token_env)."
)
MANAGEMENT_UNAVAILABLE = _error(
    "The model is not ready, or the ledger could not record the admin action (nothing changed)."
)

# -- inference -----------------------------------------------------------------------------------
_BINARY = {"type": "string", "format": "binary"}
INFER_BODY = Body({JSON: _ref("InferenceRequest"), OCTET: _BINARY}, required=True)
INFER_OK = Response(
    "Scores; binary outputs follow the JSON header when requested (header "
    "Inference-Header-Content-Length).",
    {JSON: _ref("InferenceResponse"), OCTET: _BINARY},
    {
        "Inference-Header-Content-Length": {
            "schema": {"type": "integer"},
            "description": "Present when binary outputs follow.",
        },
        "X-Seldon-Route": {
            "schema": {"type": "string"},
            "description": "With an experiment or ledger configured: the model that answered, "
            "`:fraud-v2-candidate_1:`.",
        },
    },
)
UNLOAD_BODY = json_body(
    {
        "type": "object",
        "properties": {
            "parameters": {
                "type": "object",
                "properties": {
                    "actor": {"type": "string", "maxLength": 100},
                    "unload_dependents": {"type": "boolean"},
                },
                "additionalProperties": False,
            }
        },
    },
    required=False,
)
DASHBOARD_PAGE = Response(
    "The dashboard: one HTML document with its script and style inline (no other resource), "
    "served with a Content-Security-Policy that allows connections to this server only.",
    {"text/html": {"type": "string"}},
)
METRICS_OK = Response("Prometheus text exposition format.", {"text/plain": {"type": "string"}})


def _schemas() -> dict[str, Any]:
    parameters = {"type": "object", "additionalProperties": True}
    tensor_metadata = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    number_or_nested = {
        "description": "Tensor data, flat or nested (row-major), numbers of the datatype.",
        "type": "array",
        "items": {},
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Live": {
            "type": "object",
            "required": ["live"],
            "properties": {"live": {"type": "boolean"}},
        },
        "Ready": {
            "type": "object",
            "required": ["ready"],
            "properties": {"ready": {"type": "boolean"}},
        },
        "ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "TensorMetadata": tensor_metadata,
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": _ref("TensorMetadata")},
                "outputs": {"type": "array", "items": _ref("TensorMetadata")},
                "parameters": {
                    "type": "object",
                    "description": "threshold, feature_version, runtime, mlflow_model_uri, "
                    "mlflow_registered_model, mlflow_model_version, batching settings.",
                    "additionalProperties": True,
                },
            },
        },
        "RequestInput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "description": f"content_type np: one tensor `{INPUT_NAME}` of shape "
            f"[n, {N_FEATURES}]; content_type pd: one tensor per feature column "
            f"({', '.join(FEATURE_NAMES[:3])}, ...) of shape [n] or [n, 1]. `data` is required "
            "unless parameters.binary_data_size (Triton binary extension) is given.",
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "datatype": {"type": "string", "enum": list(ALL_DATATYPES)},
                "parameters": {
                    "type": "object",
                    "properties": {
                        "binary_data_size": {"type": "integer", "minimum": 0},
                        "content_type": {"type": "string"},
                    },
                    "additionalProperties": True,
                },
                "data": number_or_nested,
            },
        },
        "RequestOutput": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "enum": ["fraud_probability", "fraud_decision"]},
                "parameters": {
                    "type": "object",
                    "properties": {"binary_data": {"type": "boolean"}},
                    "additionalProperties": True,
                },
            },
        },
        "InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "properties": {
                        "content_type": {"type": "string", "enum": ["np", "pd"]},
                        "binary_data_output": {"type": "boolean"},
                    },
                    "additionalProperties": True,
                },
                "inputs": {"type": "array", "minItems": 1, "items": _ref("RequestInput")},
                "outputs": {"type": "array", "items": _ref("RequestOutput")},
            },
        },
        "ResponseOutput": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "description": "`fraud_probability` (FP32 [n, 1]) and `fraud_decision` (BOOL [n, 1], "
            "probability >= the model's threshold). Binary outputs carry "
            "parameters.binary_data_size instead of data.",
            "properties": {
                "name": {"type": "string"},
                "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "parameters": parameters,
                "data": {"type": "array", "items": {}},
            },
        },
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "With an experiment configured: `experiment` (its name, or "
                    "null when bypassed) and `routing_key_hash`.",
                },
                "outputs": {"type": "array", "items": _ref("ResponseOutput")},
            },
        },
        "RepositoryIndexRequest": {
            "type": "object",
            "properties": {
                "repository_name": {"type": "string"},
                "ready": {"type": "boolean"},
            },
        },
        "RepositoryIndexResponse": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "state", "reason"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "state": {
                        "type": "string",
                        "enum": ["READY", "LOADING", "UNAVAILABLE", "FAILED"],
                    },
                    "reason": {"type": "string"},
                },
            },
        },
        "RepositoryLoadRequest": {
            "type": "object",
            "properties": {
                "parameters": {
                    "type": "object",
                    "properties": {
                        "uri": {
                            "type": "string",
                            "pattern": "^models:/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9_-]+"
                            "|/[1-9][0-9]*)$",
                            "description": "A model of the configured registry, "
                            "models:/<registered-name>@<alias> or models:/<registered-name>/"
                            "<version>; required for a name not in the config, e.g. "
                            "models:/fraud-detection@challenger. Never a path or another URL.",
                        },
                        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                        "runtime": {
                            "type": "string",
                            "enum": ["auto", "tl2cgen", "native", "pyfunc"],
                        },
                        "actor": {
                            "type": "string",
                            "maxLength": 100,
                            "description": "Who asked, recorded with the action in the ledger "
                            "(default admin-api).",
                        },
                    },
                    "additionalProperties": False,
                }
            },
        },
        "RepositoryLoadResponse": {
            "type": "object",
            "required": ["name", "version", "state"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "state": {"type": "string"},
            },
        },
        "Label": {
            "type": "object",
            "description": "The truth about one transaction (chargeback, investigation).",
            "properties": {
                "transaction_id": {"type": "string"},
                "is_fraud": {"type": "boolean"},
                "label_time": {
                    "description": "ISO-8601 (2026-03-01T12:00:00Z) or epoch seconds.",
                    "oneOf": [{"type": "string"}, {"type": "number"}],
                },
                "amount": {"type": "number", "minimum": 0, "nullable": True},
            },
        },
        "FeedbackRequest": {
            "type": "object",
            "required": ["labels"],
            "properties": {
                "labels": {
                    "type": "array",
                    "items": _ref("Label"),
                    "description": "At most ledger.feedback_max_labels (default 10000); "
                    "more is a 413: send batches.",
                },
                "actor": {
                    "type": "string",
                    "maxLength": 100,
                    "description": "Recorded in the label audit.",
                },
            },
        },
        "RejectedRow": {
            "type": "object",
            "required": ["row", "field", "expected", "received", "message"],
            "properties": {
                "row": {"type": "integer", "description": "1-based index in labels."},
                "field": {"type": "string"},
                "expected": {"type": "string"},
                "received": {},
                "message": {"type": "string"},
            },
        },
        "FeedbackResponse": {
            "type": "object",
            "required": [
                "inserted",
                "updated",
                "unchanged",
                "unknown_count",
                "unknown_transaction_ids",
                "rejected_count",
                "rejected",
            ],
            "properties": {
                "inserted": {"type": "integer"},
                "updated": {"type": "integer"},
                "unchanged": {"type": "integer"},
                "unknown_count": {
                    "type": "integer",
                    "description": "Stored labels whose transaction has no decision yet.",
                },
                "unknown_transaction_ids": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 100,
                    "description": "The first 100 of them.",
                },
                "rejected_count": {"type": "integer", "description": "Rejected fields."},
                "rejected": {
                    "type": "array",
                    "items": _ref("RejectedRow"),
                    "maxItems": 100,
                    "description": "The first 100 of them.",
                },
            },
        },
        "Weights": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 0},
            "example": {"fraud-v1-baseline": 80, "fraud-v2-candidate": 20},
        },
        "WeightChange": {
            "type": "object",
            "required": ["at", "actor", "old", "new"],
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string"},
                "old": _ref("Weights"),
                "new": _ref("Weights"),
                "generation": {"type": "integer"},
            },
        },
        "Experiment": {
            "type": "object",
            "required": ["experiment", "generation", "history"],
            "properties": {
                "experiment": {
                    "type": "object",
                    "description": "The spec as in the config's experiment section.",
                    "additionalProperties": True,
                },
                "generation": {"type": "integer"},
                "history": {"type": "array", "items": _ref("WeightChange")},
            },
        },
        "WeightsRequest": {
            "type": "object",
            "required": ["weights"],
            "properties": {"weights": _ref("Weights"), "actor": {"type": "string"}},
        },
        **_dashboard_schemas(),
        "ActionRequest": {
            "type": "object",
            "required": ["reason"],
            "properties": {
                "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                "actor": {"type": "string", "minLength": 1, "maxLength": 100},
                "evaluation": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "The analysis snapshot the act is based on (at most 256 KiB).",
                },
            },
        },
        "ServingState": {
            "type": "object",
            "required": ["champion", "challenger", "versions", "aliases", "weights", "promoted"],
            "properties": {
                "champion": {"type": "string"},
                "challenger": {"type": "string"},
                "versions": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Serving name -> MLflow version it serves.",
                },
                "aliases": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Registry alias -> MLflow version.",
                },
                "weights": _ref("Weights"),
                "promoted": {"type": "boolean"},
            },
        },
        "ExperimentAction": {
            "type": "object",
            "required": ["action", "experiment", "at", "actor", "reason", "before", "state"],
            "properties": {
                "action": {"type": "string", "enum": ["promote", "rollback"]},
                "experiment": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string"},
                "reason": {"type": "string"},
                "before": _ref("ServingState"),
                "state": _ref("ServingState"),
                "generation": {"type": "integer"},
            },
        },
        "RepositoryUnloadResponse": {
            "type": "object",
            "required": ["name", "state"],
            "properties": {"name": {"type": "string"}, "state": {"type": "string"}},
        },
    }


def _object(properties: Mapping[str, Any], *, nullable: bool = False) -> dict[str, Any]:
    """An object with every listed property required (the dashboard's records are complete)."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(properties),
        "properties": dict(properties),
    }
    if nullable:
        schema["nullable"] = True
    return schema


def _dashboard_schemas() -> dict[str, Any]:
    """The dashboard's view model (`fraudgate.ui.view.Dashboard`); null: not measurable."""
    number = {"type": "number", "nullable": True}
    integer = {"type": "integer"}
    text = {"type": "string"}
    maybe_text = {"type": "string", "nullable": True}
    interval = _ref("Interval")
    arms = {"type": "array", "items": text}
    latency = _object(
        {k: number for k in ("mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")}
        | {"count": integer},
        nullable=True,
    )
    arm = _object(
        {
            "arm": text,
            "role": text,
            "transactions": integer,
            "matured_transactions": integer,
            "labelled": integer,
            "pending": integer,
            "label_coverage": number,
            "precision": interval,
            "recall": interval,
            "f1": interval,
            "alert_rate": interval,
            "value_detection_rate": interval,
            "latency": latency,
        }
    )
    day = _object(
        {
            "date": text,
            "matured": {"type": "boolean"},
            "arms": {
                "type": "array",
                "items": _object(
                    {
                        "arm": text,
                        "transactions": integer,
                        "recall": interval,
                        "alert_rate": interval,
                        "label_coverage": number,
                    }
                ),
            },
        }
    )
    decision = _object(
        {
            "outcome": {"type": "string", "enum": ["PROMOTE", "CONTINUE", "ROLLBACK", "STOP"]},
            "reasons": arms,
            "guardrails": {
                "type": "array",
                "items": _object(
                    {
                        "name": text,
                        "breached": {"type": "boolean"},
                        "blocks_promotion": {"type": "boolean"},
                        "detail": text,
                    }
                ),
            },
            "expected_days_to_decision": number,
            "design": text,
            "metric": text,
            "alpha": {"type": "number"},
            "difference": interval,
            "p_value": number,
            "frauds": integer,
        }
    )
    realised = _object(
        {
            "precision": number,
            "recall": number,
            "labelled_frauds": integer,
            "pending": integer,
            "label_coverage": number,
            "alert_rate": number,
        },
        nullable=True,
    )
    estimated_model = _object(
        {
            "model": text,
            "role": {"type": "string", "enum": ["champion", "challenger"], "nullable": True},
            "decisions": integer,
            "precision": number,
            "recall": number,
            "realised": realised,
        }
    )
    counts = ("collected", "rows", "warning", "alert")  # a model's drift sample
    drift_column = _object(
        {
            "model": text,
            "feature": text,
            "psi": number,
            "ks_statistic": number,
            "rows": integer,
            "level": {"type": "string", "enum": ["stable", "warning", "alert", "unknown"]},
        }
    )
    evaluation = _object(
        {
            "evaluated_at": maybe_text,
            "as_of": maybe_text,
            "computed_in_s": {"type": "number"},
            "champion": text,
            "challenger": text,
            "days_elapsed": number,
            "maturity_days": number,
            "matured_until": maybe_text,
            "arms": {"type": "array", "items": arm},
            "days": {"type": "array", "items": day},
            "decision": decision,
        },
        nullable=True,
    )
    return {
        "Interval": _object({"estimate": number, "low": number, "high": number}),
        "Dashboard": _object(
            {
                "schema_version": integer,
                "generated_at": maybe_text,
                "refresh_s": {"type": "number"},
                "experiment": _object(
                    {
                        "name": text,
                        "generation": integer,
                        "weights": _ref("Weights"),
                        "default": maybe_text,
                        "mirror_percent": integer,
                    }
                ),
                "split": {
                    "type": "array",
                    "items": _object(
                        {
                            "arm": text,
                            "weight": {"type": "number"},
                            "weight_share": number,
                            "units": {"type": "integer", "nullable": True},
                            "observed_share": number,
                        }
                    ),
                },
                "srm": _object(
                    {
                        "arms": arms,
                        "observed": {"type": "array", "items": integer},
                        "expected_shares": {"type": "array", "items": {"type": "number"}},
                        "chi_square": number,
                        "p_value": number,
                        "threshold": {"type": "number"},
                        "mismatch": {"type": "boolean"},
                    },
                    nullable=True,
                ),
                "evaluation": evaluation,
                "evaluation_error": maybe_text,
                "estimated": _object(
                    {
                        "traffic_window_s": {"type": "number"},
                        "label_window_days": {"type": "number"},
                        "models": {"type": "array", "items": estimated_model},
                        "champion": maybe_text,
                        "challenger": maybe_text,
                        "disagreement": number,
                        "paired": integer,
                        "ledger_error": maybe_text,
                    },
                    nullable=True,
                )
                | {
                    "description": "Label-free expected precision/recall per model (traffic "
                    "window) beside the realised label-joined figures (label window), and the "
                    "champion/challenger disagreement; null: no monitoring."
                },
                "drift": _object(
                    {
                        "psi_warning": {"type": "number"},
                        "psi_alert": {"type": "number"},
                        "min_rows": integer,
                        "models": {
                            "type": "array",
                            "items": _object({"model": text} | dict.fromkeys(counts, integer)),
                        },
                        "columns": {"type": "array", "items": drift_column},
                    },
                    nullable=True,
                )
                | {
                    "description": "PSI and KS per feature and score of each model's recent "
                    "scored rows against its training reference, worst first; null: no "
                    "monitoring."
                },
                "pipeline": _object(
                    {
                        "acknowledge": {"type": "string", "enum": ["journal", "commit", "none"]},
                        "unready_reason": maybe_text,
                        "journal_lag_s": number,
                        "journal_lag_bytes": {"type": "integer", "nullable": True},
                        "shipper": maybe_text,
                        "shipper_up": {"type": "boolean", "nullable": True},
                        "shipper_restarts": {"type": "integer", "nullable": True},
                    }
                ),
                "history": {"type": "array", "items": _ref("WeightChange")},
                "actions": _object({"weights": text, "promote": text, "rollback": text}),
            }
        ),
    }


def _response(response: Response) -> dict[str, Any]:
    out: dict[str, Any] = {"description": response.description}
    if response.headers:
        out["headers"] = {name: dict(header) for name, header in response.headers.items()}
    if response.content:
        out["content"] = {kind: {"schema": s} for kind, s in response.content.items()}
    return out


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.where,
        "required": param.required,
        "description": param.description,
        "schema": dict(param.schema),
    }


def _operation(route: Route[Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": list(route.tags),
    }
    if route.admin:
        operation["security"] = [{"bearerAuth": []}]
    if route.parameters:
        operation["parameters"] = [_parameter(p) for p in route.parameters]
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body.required,
            "content": {kind: {"schema": s} for kind, s in route.body.content.items()},
        }
    operation["responses"] = {
        str(status): _response(response) for status, response in sorted(route.responses.items())
    }
    return operation


def openapi_document(routes: Sequence[Route[Any]]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 description of `routes` (paths in table order)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "fraudgate inference server",
            "version": fraudgate.__version__,
            "description": "Open Inference Protocol (KServe V2) REST API with the model "
            "repository and Triton binary tensor extensions, serving fraud-detection models.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
