"""Importing the server (no ledger configured) loads no heavy library it does not need, nor the
dashboard and the evaluation behind it (imported on the first ``/ui`` request).

The ledger (SQLAlchemy), the statistics (scipy, statsmodels) and pandas are imported only when a
ledger is configured or a command needs them; each check runs in a fresh interpreter, so what
another test imported does not hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "scipy", "statsmodels", "sqlalchemy")
# fraudgate's own rooms the server imports on first use only (the dashboard and its evaluation;
# the metrics' light stdlib/numpy statistics, fraudgate.analysis.estimated and .drift, load eagerly)
LAZY = ("fraudgate.ui", "fraudgate.ui.source", "fraudgate.evaluation")

_SCRIPT = """
import json, sys
from fraudgate.config import parse_config
{imports}
config = parse_config({{"registry": "sqlite:///unused.db", "models": [
    {{"name": "fraud-v1-baseline", "uri": "models:/fraud-detection@champion"}}]}})
from fraudgate.serving.dataplane import DataPlane
from fraudgate.serving.experiment import ExperimentPlane
from fraudgate.serving.rest import RestApp
assert ExperimentPlane.from_config(config) is None  # nothing to route, nothing to record
app = RestApp(DataPlane(config, loader=lambda model: None), config.server.max_payload_bytes)
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "imports",
    [
        "import fraudgate.serving.dataplane",
        "import fraudgate.serving.server",
        "import fraudgate.serving.server, fraudgate.serving.grpc_server",
    ],
)
def test_the_plain_server_imports_no_ledger_statistics_or_pandas(imports):
    script = _SCRIPT.format(imports=imports, heavy=HEAVY + LAZY)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []
