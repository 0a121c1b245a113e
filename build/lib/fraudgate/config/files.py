"""The config files fraudgate writes: the two-model default and the demo's experiment file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fraudgate.config.loading import load_config
from fraudgate.config.schema import (
    ADMIN_TOKEN_ENV,
    DEFAULT_GRPC_PORT,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_WAIT_MS,
    DEFAULT_WEIGHTS_POLL_S,
)


def default_config_dict(tracking_uri: str, *, aa: bool = False) -> dict[str, Any]:
    """The two-model config the demo serves: champion and challenger of ``fraud-detection``
    (with ``aa``, an A/A test: ``fraud-v2-candidate`` serves the champion too)."""
    batching = {"max_batch_size": DEFAULT_MAX_BATCH_SIZE, "max_wait_ms": DEFAULT_MAX_WAIT_MS}
    return {
        "registry": tracking_uri,
        "server": {
            "host": DEFAULT_HOST,
            "http_port": DEFAULT_HTTP_PORT,
            "grpc_port": DEFAULT_GRPC_PORT,
            "max_payload_bytes": DEFAULT_MAX_PAYLOAD_BYTES,
        },
        "models": [
            {
                "name": "fraud-v1-baseline",
                "uri": "models:/fraud-detection@champion",
                "threshold": None,
                "runtime": "auto",
                "batching": dict(batching),
            },
            {
                "name": "fraud-v2-candidate",
                "uri": f"models:/fraud-detection@{'champion' if aa else 'challenger'}",
                "threshold": None,
                "runtime": "auto",
                "batching": dict(batching),
            },
        ],
    }


DEMO_EXPERIMENT = "fraud-detection-ab-test"
# The demo's evaluation: a transaction with no label counts as legitimate once 14 days old (the
# demo replays a week and follows its labels for two more; half the chargebacks are in by then),
# and the challenger may alert up to 11 times as often as the champion: it is meant to catch the
# new pattern the champion misses (on the demo's data the champion alerts on ~0.1-0.3% of
# transactions, the challenger on ~1%, nearly all fraud), and the precision floor guards the
# investigators' time.
DEMO_MATURITY_DAYS = 14.0
DEMO_MAX_ALERT_RATE_INCREASE = 10.0


def demo_experiment_dict() -> dict[str, Any]:
    """The demo's experiment: 80/20 by card, and the other arm scores every request in shadow."""
    return {
        "name": DEMO_EXPERIMENT,
        "default": "fraud-v1-baseline",
        "candidates": [
            {"name": "fraud-v1-baseline", "weight": 80},
            {"name": "fraud-v2-candidate", "weight": 20},
        ],
        "mirror": {"percent": 100},
        "routing": {"key": "card_id", "source": "parameter", "header": "x-routing-key"},
    }


def demo_config_dict(
    tracking_uri: str, workdir: Path, token: str | None = None, *, aa: bool = False
) -> dict[str, Any]:
    """`default_config_dict` plus the demo's experiment, a SQLite ledger in `workdir` and auth
    (``aa``: the same model in both arms).

    The admin/feedback token is ``token`` when given; else ``token_env: FRAUDGATE_ADMIN_TOKEN``
    when that variable is set; else a freshly generated random token written into the file.
    """
    import secrets

    config = default_config_dict(tracking_uri, aa=aa)
    config["experiment"] = demo_experiment_dict()
    config["ledger"] = {
        "url": f"sqlite:///{(Path(workdir) / 'ledger.db').resolve()}",
        "enabled": True,
        "weights_poll_s": DEFAULT_WEIGHTS_POLL_S,
    }
    config["analysis"] = {
        "maturity_days": DEMO_MATURITY_DAYS,
        "guardrails": {"max_alert_rate_increase": DEMO_MAX_ALERT_RATE_INCREASE},
    }
    if token is None and os.environ.get(ADMIN_TOKEN_ENV):
        config["auth"] = {"token_env": ADMIN_TOKEN_ENV, "inference": False}
    else:
        config["auth"] = {"token": token or secrets.token_urlsafe(24), "inference": False}
    return config


_HEADER = """\
# fraudgate configuration: `fraudgate serve --config {name}`
# registry: MLflow tracking URI the models are loaded from
# models[].threshold: null takes the registry version tag "threshold"
# models[].runtime: auto picks the fastest runtime that matches the MLflow model's scores
"""
_DEMO_HEADER = """\
# experiment: requests to fraud-v1-baseline (or to the experiment's name) are split 80/20 by the
#   request parameter card_id (or header x-routing-key); the arm that did not answer scores every
#   request in shadow (mirror percent 100, no name); explicit versions (fraud-v1-baseline_1,
#   /versions/1) bypass the experiment
# ledger: every decision is recorded here; labels arrive through POST /feedback
# analysis: how the demo evaluates the experiment (`fraudgate report`): unlabelled transactions
#   count as legitimate once maturity_days old; the challenger may alert more than the champion
#   (it catches the new pattern), up to guardrails.max_alert_rate_increase
# auth.token: the bearer token for /feedback, /admin and model management (repository
#   load/unload; `fraudgate experiment set --token ...`)
"""


def write_default_config(
    path: Path,
    tracking_uri: str,
    *,
    experiment: bool = True,
    token: str | None = None,
    aa: bool = False,
) -> Path:
    """Write the demo's config to `path` (validated by reading it back); return it.

    With ``experiment`` (the default) the file also holds the demo's A/B experiment, a SQLite
    ledger next to it and an admin token (see `demo_config_dict`); without it, just the two models.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if experiment:
        data = demo_config_dict(tracking_uri, path.parent, token, aa=aa)
        header = _HEADER + _DEMO_HEADER
    else:
        data = default_config_dict(tracking_uri)
        header = _HEADER
    import yaml

    body = yaml.safe_dump(data, sort_keys=False)
    path.write_text(header.format(name=path.name) + body, encoding="utf-8")
    if experiment and "token" in data.get("auth", {}):
        path.chmod(0o600)  # it holds a secret
    load_config(path)
    return path
