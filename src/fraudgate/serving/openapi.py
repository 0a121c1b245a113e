"""The OpenAPI 3 document of the whole REST API, served at ``/openapi.json``.

Written to be exact enough for a schema-driven fuzzer (e.g. schemathesis): every route, every
status it can answer with, and the error body shape ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any

import fraudgate
from fraudgate.data.contract import FEATURE_NAMES, INPUT_NAME, N_FEATURES
from fraudgate.protocol.datatypes import ALL_DATATYPES

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "Model name, e.g. `fraud-v1-baseline`, or with a version suffix "
    "(`fraud-v1-baseline_1`).",
    "schema": {"type": "string", "minLength": 1},
}
_VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "Serving version (the server's deployment counter, starting at 1).",
    "schema": {"type": "string", "minLength": 1},
}
_BAD = _error("Bad request: the message names the field, the expected and the received value.")
_NOT_FOUND = _error("Unknown model or model version.")
_TOO_LARGE = _error("Request body larger than the server's max_payload_bytes.")
_NOT_READY = _error("The model (or server) is not ready: loading, unloaded or failed.")
_UNAUTHORIZED = _error("Missing or wrong bearer token (header Authorization: Bearer <token>).")
_UNAVAILABLE = _error("No ledger/experiment configured, or the ledger is unreachable.")
_FORBIDDEN = _error(
    "Model management refused: switched off (server.model_management: off), or no admin token "
    "is configured (auth.token / auth.token_env)."
)
_MANAGEMENT_UNAVAILABLE = _error(
    "The model is not ready, or the ledger could not record the admin action (nothing changed)."
)
_BEARER = [{"bearerAuth": []}]


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
        "RepositoryUnloadResponse": {
            "type": "object",
            "required": ["name", "state"],
            "properties": {"name": {"type": "string"}, "state": {"type": "string"}},
        },
    }


def _model_operations(prefix: str, params: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    tag = ["models"]
    return {
        f"{prefix}": {
            "get": {
                "operationId": f"modelMetadata{suffix}",
                "summary": "Model metadata (inputs, outputs, threshold, runtime, MLflow version)",
                "tags": tag,
                "parameters": params,
                "responses": {
                    "200": _json(_ref("ModelMetadata"), "Model metadata."),
                    "404": _NOT_FOUND,
                    "503": _NOT_READY,
                },
            }
        },
        f"{prefix}/ready": {
            "get": {
                "operationId": f"modelReady{suffix}",
                "summary": "Model readiness",
                "tags": tag,
                "parameters": params,
                "responses": {
                    "200": _json(_ref("Ready"), "The model is ready."),
                    "404": _NOT_FOUND,
                    "503": _NOT_READY,
                },
            }
        },
        f"{prefix}/infer": {
            "post": {
                "operationId": f"modelInfer{suffix}",
                "summary": "Score transactions (Open Inference Protocol V2)",
                "tags": tag,
                "parameters": [
                    *params,
                    {
                        "name": "Inference-Header-Content-Length",
                        "in": "header",
                        "required": False,
                        "description": "Triton binary extension: length of the JSON header "
                        "that precedes the binary tensor data.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("InferenceRequest")},
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "Scores; binary outputs follow the JSON header when "
                        "requested (header Inference-Header-Content-Length).",
                        "headers": {
                            "Inference-Header-Content-Length": {
                                "schema": {"type": "integer"},
                                "description": "Present when binary outputs follow.",
                            },
                            "X-Seldon-Route": {
                                "schema": {"type": "string"},
                                "description": "With an experiment or ledger configured: the "
                                "model that answered, `:fraud-v2-candidate_1:`.",
                            },
                        },
                        "content": {
                            "application/json": {"schema": _ref("InferenceResponse")},
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                        },
                    },
                    "400": _BAD,
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                    "413": _TOO_LARGE,
                    "503": _NOT_READY,
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 description of every route the REST app serves."""
    paths: dict[str, Any] = {
        "/v2/health/live": {
            "get": {
                "operationId": "serverLive",
                "summary": "Server liveness",
                "tags": ["health"],
                "responses": {"200": _json(_ref("Live"), "The server is live.")},
            }
        },
        "/v2/health/ready": {
            "get": {
                "operationId": "serverReady",
                "summary": "Server readiness (models loaded)",
                "tags": ["health"],
                "responses": {
                    "200": _json(_ref("Ready"), "The server is ready."),
                    "503": _NOT_READY,
                },
            }
        },
        "/v2": {
            "get": {
                "operationId": "serverMetadata",
                "summary": "Server metadata",
                "tags": ["health"],
                "responses": {"200": _json(_ref("ServerMetadata"), "Server metadata.")},
            }
        },
    }
    paths.update(_model_operations("/v2/models/{name}", [_NAME], ""))
    paths.update(
        _model_operations("/v2/models/{name}/versions/{version}", [_NAME, _VERSION], "Version")
    )
    paths["/v2/repository/index"] = {
        "post": {
            "operationId": "repositoryIndex",
            "summary": "List the models the server knows and their state",
            "tags": ["repository"],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("RepositoryIndexRequest")}},
            },
            "responses": {
                "200": _json(_ref("RepositoryIndexResponse"), "The model index."),
                "400": _BAD,
                "413": _TOO_LARGE,
            },
        }
    }
    paths["/v2/repository/models/{name}/load"] = {
        "post": {
            "operationId": "repositoryModelLoad",
            "summary": "Load (or reload, as the next serving version) a model",
            "tags": ["repository"],
            "security": _BEARER,
            "parameters": [_NAME],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("RepositoryLoadRequest")}},
            },
            "responses": {
                "200": _json(_ref("RepositoryLoadResponse"), "The model is loaded."),
                "400": _BAD,
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _NOT_FOUND,
                "413": _TOO_LARGE,
                "503": _MANAGEMENT_UNAVAILABLE,
            },
        }
    }
    paths["/v2/repository/models/{name}/unload"] = {
        "post": {
            "operationId": "repositoryModelUnload",
            "summary": "Unload a model (it answers 503 until loaded again)",
            "tags": ["repository"],
            "security": _BEARER,
            "parameters": [_NAME],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
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
                        }
                    }
                },
            },
            "responses": {
                "200": _json(_ref("RepositoryUnloadResponse"), "The model is unloaded."),
                "400": _BAD,
                "401": _UNAUTHORIZED,
                "403": _FORBIDDEN,
                "404": _NOT_FOUND,
                "413": _TOO_LARGE,
                "503": _MANAGEMENT_UNAVAILABLE,
            },
        }
    }
    experiment_name = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "Experiment name, e.g. `fraud-detection-ab-test`.",
        "schema": {"type": "string", "minLength": 1},
    }
    paths["/feedback"] = {
        "post": {
            "operationId": "feedback",
            "summary": "Labels that arrive later (idempotent; changed labels are audited)",
            "tags": ["experiment"],
            "security": _BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("FeedbackRequest")}},
            },
            "responses": {
                "200": _json(_ref("FeedbackResponse"), "Good rows stored; bad rows listed."),
                "400": _BAD,
                "401": _UNAUTHORIZED,
                "413": _TOO_LARGE,
                "503": _UNAVAILABLE,
            },
        }
    }
    paths["/admin/experiments/{name}"] = {
        "get": {
            "operationId": "experiment",
            "summary": "The experiment's spec, weight generation and weight-change history",
            "tags": ["experiment"],
            "security": _BEARER,
            "parameters": [experiment_name],
            "responses": {
                "200": _json(_ref("Experiment"), "The experiment."),
                "401": _UNAUTHORIZED,
                "404": _error("Unknown experiment."),
                "503": _UNAVAILABLE,
            },
        }
    }
    paths["/admin/experiments/{name}/weights"] = {
        "put": {
            "operationId": "setExperimentWeights",
            "summary": "Change the split live (next request); recorded with time and actor",
            "tags": ["experiment"],
            "security": _BEARER,
            "parameters": [experiment_name],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("WeightsRequest")}},
            },
            "responses": {
                "200": _json(_ref("WeightChange"), "The change, in force."),
                "400": _BAD,
                "401": _UNAUTHORIZED,
                "404": _error("Unknown experiment."),
                "413": _TOO_LARGE,
                "503": _UNAVAILABLE,
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["operations"],
            "responses": {
                "200": _json({"type": "object"}, "The OpenAPI document."),
            },
        }
    }
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
