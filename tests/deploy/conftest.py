"""Fixtures of the Kubernetes export tests: the schema validator, kubectl, an export config.

The CRDs live outside the repository (``../shared/k8s-schemas``, as in CI); without them the
tests skip with the reason on a developer's machine and fail in CI (``CI`` set), where a missing
folder means the checks would silently not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_validation import SCHEMAS_ENV, Validator, find_schemas


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must have it: see the Makefile's system-deps and shared/)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def validator() -> Validator:
    schemas = find_schemas()
    if schemas is None:
        _missing(
            "Kubernetes CRD schemas not found at <repo>/../shared/k8s-schemas "
            f"(set {SCHEMAS_ENV} to the folder)"
        )
    assert schemas is not None
    return Validator(schemas)


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        _missing("kubectl not installed (Debian package kubectl: `make system-deps`)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def kustomize_build(kubectl: str) -> Callable[[Path], list[dict[str, Any]]]:
    """``kubectl kustomize DIR`` (no cluster) -> the objects it builds."""

    def build(directory: Path) -> list[dict[str, Any]]:
        result = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return build
