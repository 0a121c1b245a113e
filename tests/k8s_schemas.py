"""Validators for exported Kubernetes manifests, from the real CRDs in ``shared/k8s-schemas``.

Kubernetes prunes fields a structural schema does not declare, silently. So a CRD's
``openAPIV3Schema`` is tightened before validation: every object that declares ``properties``
and says nothing about ``additionalProperties`` gets ``additionalProperties: false`` (recursively),
``format: int32`` becomes a range, Go's ``^(?i)`` patterns become Python's ``(?i)^``, and
``metadata`` (``type: object`` in the CRD, validated by the API server as ObjectMeta) gets the
ObjectMeta subset the exports use.

The folder is ``$FRAUDGATE_K8S_SCHEMAS``, else ``shared/k8s-schemas`` beside the project (CI has
the same copy), else beside a parent of it (a git worktree under the workspace).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_ROOT = Path(__file__).resolve().parents[1]


def schemas_dir() -> Path:
    configured = os.environ.get("FRAUDGATE_K8S_SCHEMAS")
    if configured:
        return Path(configured)
    for parent in _ROOT.parents:
        candidate = parent / "shared" / "k8s-schemas"
        if candidate.is_dir():
            return candidate
    return _ROOT.parent / "shared" / "k8s-schemas"


_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": _DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def tighten(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: tighten(v) for k, v in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        if node.get("format") == "int32":
            node.update(minimum=-(2**31), maximum=2**31 - 1)
        pattern = node.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern[1:]:  # Go allows ^(?i)...; Python
            node["pattern"] = "(?i)" + pattern.replace("(?i)", "")  # wants flags first
        return node
    if isinstance(node, list):
        return [tighten(v) for v in node]
    return node


def crd_validator(crd_path: Path, kind: str, version: str) -> jsonschema.Draft7Validator:
    """A validator for ``kind`` at ``version`` of the CRD file, tightened as described above."""
    crd = yaml.safe_load(crd_path.read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = tighten(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
    schema["properties"]["metadata"] = OBJECT_META
    schema["properties"]["apiVersion"]["const"] = f"{crd['spec']['group']}/{version}"
    schema["properties"]["kind"]["const"] = kind
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, manifest: dict) -> list[str]:
    found = validator.iter_errors(manifest)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
