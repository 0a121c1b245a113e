"""Fixtures of the Kubernetes export tests: the schema validator, kubectl, an export config.

The CRDs live outside the repository (``../shared/k8s-schemas``, as in CI); without them, or
without kubectl, the tests skip with the reason on a developer's machine and fail in CI.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_validation import Validator, missing, shared_validator


@pytest.fixture(scope="session")
def validator() -> Validator:
    return shared_validator()


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        missing("kubectl not installed (Debian package kubectl: `make system-deps`)")
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
