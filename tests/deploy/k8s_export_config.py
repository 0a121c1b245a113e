"""The config the export tests write: the demo's models and experiment plus a cluster section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ADMIN_TOKEN = "inline-admin-token-that-must-never-leak-7f3a"
STORAGE = {
    "fraud-v1-baseline": "s3://models/1/0a1b/artifacts/model",
    "fraud-v2-candidate": "s3://models/1/2c3d/artifacts/model",
}


def export_config(**kubernetes: Any) -> dict[str, Any]:
    """The demo's models and experiment, a token written inline (it must not leak), a local
    SQLite ledger and registry, and the cluster's registry, ledger and storage."""
    section = {
        "registry": "http://mlflow.mlflow.svc:5000",
        "ledger_url": "postgresql+psycopg://fraudgate@postgres.db.svc:5432/fraudgate",
        "storage_uris": dict(STORAGE),
        "storage_endpoint": "http://minio.minio.svc:9000",
        **kubernetes,
    }
    return {
        "registry": "sqlite:///mlflow.db",
        "models": [
            {"name": "fraud-v1-baseline", "uri": "models:/fraud-detection@champion"},
            {"name": "fraud-v2-candidate", "uri": "models:/fraud-detection@challenger"},
        ],
        "experiment": {
            "name": "fraud-detection-ab-test",
            "default": "fraud-v1-baseline",
            "candidates": [
                {"name": "fraud-v1-baseline", "weight": 80},
                {"name": "fraud-v2-candidate", "weight": 20},
            ],
            "mirror": {"percent": 100},
            "routing": {"key": "card_id", "source": "parameter", "header": "x-routing-key"},
        },
        "ledger": {"url": "ledger.db", "weights_poll_s": 2.0},
        "auth": {"token": ADMIN_TOKEN},
        "analysis": {"maturity_days": 30},
        "kubernetes": section,
    }


def write_config(directory: Path, document: dict[str, Any]) -> Path:
    path = directory / "fraudgate.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
