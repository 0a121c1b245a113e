"""Validate Kubernetes objects the way the API server would, with pruning made an error.

* Custom kinds (Seldon, KServe, Istio, PrometheusRule): the ``openAPIV3Schema`` of the real CRDs in
  ``../shared/k8s-schemas`` (see its README). Kubernetes prunes any field a structural schema does
  not declare, silently: here every object schema without ``additionalProperties`` or
  ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``, so such a field
  is an error. ``metadata`` (``type: object`` in a CRD: the server checks it as ObjectMeta) is
  validated against ObjectMeta's strict schema from ``kubernetes-validate``.
* Core kinds: ``kubernetes-validate`` in strict mode (undeclared fields are errors), for every
  Kubernetes version in `KUBERNETES_VERSIONS`.
* A kind neither knows is an error too: nothing passes unvalidated.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

# 1.29: the oldest with native sidecars (the shipper) on by default; and the newest the package has
KUBERNETES_VERSIONS = ("1.29", "1.37")
SCHEMAS_ENV = "FRAUDGATE_K8S_SCHEMAS"
REPO_ROOT = Path(__file__).resolve().parents[1]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # KServe's CRD is 40,000 lines


def find_schemas() -> Path | None:
    """``$FRAUDGATE_K8S_SCHEMAS``, else ``<repo>/../shared/k8s-schemas`` (CI's layout), else the
    same next to an ancestor (a git worktree of the repo lives deeper)."""
    if os.environ.get(SCHEMAS_ENV):
        return Path(os.environ[SCHEMAS_ENV])
    for ancestor in REPO_ROOT.parents:
        candidate = ancestor / "shared" / "k8s-schemas"
        if (candidate / "README.md").is_file():
            return candidate
    return None


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def missing(what: str) -> None:
    """Skip, saying why, on a developer's machine; fail in CI (``CI`` set), where a missing
    schema folder or tool would make the checks silently not run."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must have it: see the Makefile's system-deps and shared/)")
    pytest.skip(what)


@functools.cache
def _load(schemas: Path) -> Validator:
    return Validator(schemas)


def shared_validator() -> Validator:
    """The validator over `find_schemas()`, loaded once per session (KServe's CRD is large)."""
    schemas = find_schemas()
    if schemas is None:
        missing(
            "Kubernetes CRD schemas not found at <repo>/../shared/k8s-schemas "
            f"(set {SCHEMAS_ENV} to the folder)"
        )
    assert schemas is not None
    return _load(schemas)


def _strict(schema: Any) -> Any:
    """The schema with pruning turned into errors (see the module docstring)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if out.get("format") in _INT_RANGES:  # the API server rejects an out-of-range integer
        low, high = _INT_RANGES[out["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if (
        out.get("type") == "object"
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class Problem:
    """One reason an object is invalid: where (dotted path; "" the root) and what."""

    path: str
    message: str


class Validator:
    """``errors(obj)``: what is wrong with ``obj`` (empty: valid), as ``Kind/name: path: why``;
    ``problems(obj)``: the same as records."""

    def __init__(self, schemas: Path) -> None:
        import kubernetes_validate  # noqa: F401  (fail early when the dev extra is missing)

        self._crds: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        for path in sorted(schemas.rglob("*.yaml")):
            for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    if not version.get("served", True):
                        continue
                    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                    schema["properties"].pop("metadata", None)
                    schema["properties"].pop("status", None)  # written by controllers
                    api = f"{spec['group']}/{version['name']}"
                    self._crds[(api, spec["names"]["kind"])] = jsonschema.Draft7Validator(schema)
        if not self._crds:
            raise RuntimeError(f"no CustomResourceDefinition under {schemas}")
        self._object_meta = _object_meta_validator()

    @property
    def custom_kinds(self) -> set[tuple[str, str]]:
        return set(self._crds)

    def problems(self, obj: dict[str, Any]) -> list[Problem]:
        crd = self._crds.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        if crd is None:
            return _core_problems(obj)
        # apiVersion and kind chose the schema; metadata is checked as ObjectMeta below
        found = [
            Problem(_dotted(e.absolute_path), e.message)
            for e in crd.iter_errors({k: v for k, v in obj.items() if k not in _ROOT})
        ]
        found += [
            Problem(_dotted(["metadata", *e.absolute_path]), e.message)
            for e in self._object_meta.iter_errors(obj.get("metadata"))
        ]
        if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
            found.append(Problem("metadata.name", "required"))
        return found

    def errors(self, obj: dict[str, Any]) -> list[str]:
        where = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        return [f"{where}: {p.path or '<root>'}: {p.message}" for p in self.problems(obj)]


def _dotted(path: Any) -> str:
    return ".".join(map(str, path))


_ROOT = ("apiVersion", "kind", "metadata")


def _definitions(version: str) -> dict[str, Any]:
    from importlib.resources import files

    root = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}.0-local-strict"
    return json.loads((root / "_definitions.json").read_text())


def _object_meta_validator() -> jsonschema.protocols.Validator:
    defs = _definitions(KUBERNETES_VERSIONS[-1])
    schema = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", **defs}
    return jsonschema.Draft202012Validator(schema)


def _core_problems(obj: dict[str, Any]) -> list[Problem]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append(Problem(_dotted(exc.path), f"(Kubernetes {version}) {exc.message}"))
        except SchemaNotFoundError:
            found.append(
                Problem("kind", f"no schema for {obj.get('apiVersion')} {obj.get('kind')}")
            )
            break
    return found
