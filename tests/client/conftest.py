"""The experiment server for the client tests (the plain ``server`` is in tests/conftest.py).

``experiment_server``: the demo config (80/20 experiment by ``card_id``, 100% shadow mirror,
SQLite ledger, admin token ``TOKEN``).
"""

from __future__ import annotations

import pytest

from fraudgate.config import write_default_config
from fraudgate.server_process import ServerProcess

TOKEN = "client-tests-token-0123456789"  # also spelled out in the test modules


@pytest.fixture(scope="session")
def experiment_server(trained_registry, session_launch, tmp_path_factory) -> ServerProcess:
    root = tmp_path_factory.mktemp("experiment-server")
    config = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, experiment=True, token=TOKEN
    )
    return session_launch(config)
