"""Real `fraudgate serve` processes with the demo's experiment, over real ledgers.

Helpers for the integration tests (a plain module: `from conftest import` would be ambiguous
between the conftest files). The fixtures (``trained_registry``, ``launch``, ``pg_database``,
``pg_schema_url``) live in tests/conftest.py; this module adds the demo config as tests need it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fraudgate.config import write_default_config
from fraudgate.server_process import ServerProcess

TOKEN = "integration-test-token"
V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
EXPERIMENT = "fraud-detection-ab-test"


def write_config(
    path: Path,
    tracking_uri: str,
    *,
    ledger_url: str | None = None,
    weights: tuple[int, int] | None = None,
    poll_s: float | None = None,
    seed: int | None = None,
    mirror_percent: int | None = None,
    acknowledge: str | None = None,
) -> Path:
    """The demo's config (experiment, SQLite ledger next to it, token), adjusted for a test."""
    write_default_config(path, tracking_uri, token=TOKEN)
    data = yaml.safe_load(path.read_text())
    if ledger_url is not None:
        data["ledger"]["url"] = ledger_url
    if weights is not None:
        for candidate, weight in zip(data["experiment"]["candidates"], weights, strict=True):
            candidate["weight"] = weight
    if acknowledge is not None:
        data["ledger"]["acknowledge"] = acknowledge
    if poll_s is not None:
        data["ledger"]["weights_poll_s"] = poll_s
    if seed is not None:
        data["experiment"]["seed"] = seed
    if mirror_percent is not None:
        data["experiment"]["mirror"]["percent"] = mirror_percent
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def wait_ready(server: ServerProcess, timeout: float = 120.0) -> None:
    server.wait_ready(timeout)
