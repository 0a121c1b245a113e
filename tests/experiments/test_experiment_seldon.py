"""Seldon Core v2 export, validated against the real Experiment CRD schema.

Kubernetes prunes fields a structural schema does not declare, silently. So the CRD's
``openAPIV3Schema`` is tightened before validation: every object that declares ``properties``
and says nothing about ``additionalProperties`` gets ``additionalProperties: false`` (recursively),
``format: int32`` becomes a range, and ``metadata`` (``type: object`` in the CRD, validated by the
API server as ObjectMeta) gets the ObjectMeta subset the export uses.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fraudgate.experiments import (
    ExperimentConfigError,
    ExperimentSpec,
    seldon_export_notes,
    to_seldon_experiment,
)

A, B = "fraud-v1-baseline", "fraud-v2-candidate"

_SCHEMAS = Path(
    os.environ.get(
        "FRAUDGATE_K8S_SCHEMAS", Path(__file__).resolve().parents[3] / "shared" / "k8s-schemas"
    )
)
CRD = _SCHEMAS / "seldon-core-v2" / "mlops.seldon.io_experiments.yaml"

pytestmark = pytest.mark.skipif(
    not CRD.exists(), reason=f"Seldon CRD not found at {CRD} (set FRAUDGATE_K8S_SCHEMAS)"
)

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_OBJECT_META = {
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


def _tighten(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _tighten(v) for k, v in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        if node.get("format") == "int32":
            node.update(minimum=-(2**31), maximum=2**31 - 1)
        return node
    if isinstance(node, list):
        return [_tighten(v) for v in node]
    return node


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(CRD.read_text())
    assert crd["spec"]["names"]["kind"] == "Experiment"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = _tighten(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema["properties"]["metadata"] = _OBJECT_META
    schema["properties"]["apiVersion"]["const"] = f"{crd['spec']['group']}/v1alpha1"
    schema["properties"]["kind"]["const"] = "Experiment"
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, manifest: dict) -> list[str]:
    found = validator.iter_errors(manifest)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def spec(mirror: dict | None = None, **extra: Any) -> ExperimentSpec:
    section = {
        "name": "fraud-detection-ab-test",
        "default": A,
        "candidates": [{"name": A, "weight": 80}, {"name": B, "weight": 20}],
        **extra,
    }
    if mirror is not None:
        section["mirror"] = mirror
    return ExperimentSpec.from_config(section)


def test_named_mirror_export_is_valid_and_faithful(validator: jsonschema.Draft7Validator) -> None:
    manifest = to_seldon_experiment(spec({"name": "fraud-shadow", "percent": 30}), namespace="ns")
    assert errors(validator, manifest) == []
    assert manifest["apiVersion"] == "mlops.seldon.io/v1alpha1"
    assert manifest["kind"] == "Experiment"
    assert manifest["metadata"]["name"] == "fraud-detection-ab-test"
    assert manifest["metadata"]["namespace"] == "ns"
    assert manifest["spec"] == {
        "default": A,
        "candidates": [{"name": A, "weight": 80}, {"name": B, "weight": 20}],
        "mirror": {"name": "fraud-shadow", "percent": 30},
        "resourceType": "model",
    }
    # Seldon's scheduler rules (ExperimentDefaultNotFound, ExperimentNoDuplicates) hold
    names = [c["name"] for c in manifest["spec"]["candidates"]]
    assert manifest["spec"]["default"] in names
    assert manifest["spec"]["mirror"]["name"] not in names
    # model names refer to Model resources, never version-suffixed names
    assert all("_" not in n for n in [*names, manifest["spec"]["mirror"]["name"]])


def test_demo_other_arm_shadow_export_is_valid_and_honest(
    validator: jsonschema.Draft7Validator,
) -> None:
    s = spec({"percent": 100}, routing={"key": "card_id"})
    manifest = to_seldon_experiment(s)
    assert errors(validator, manifest) == []
    assert "mirror" not in manifest["spec"]  # not expressible: left out, and said so
    notes = manifest["metadata"]["annotations"]["fraudgate.io/export-notes"]
    assert "not exported" in notes and "did not answer" in notes
    assert "card_id" in notes and "at random" in notes
    assert notes.split("\n") == seldon_export_notes(s)
    assert ExperimentSpec.from_config(s.to_config()) == s  # the source config is untouched


def test_other_arm_shadow_with_explicit_mirror_model(validator: jsonschema.Draft7Validator) -> None:
    s = spec({"percent": 100})
    manifest = to_seldon_experiment(s, mirror_model="fraud-v2-candidate-shadow")
    assert errors(validator, manifest) == []
    assert manifest["spec"]["mirror"] == {"name": "fraud-v2-candidate-shadow", "percent": 100}
    notes = manifest["metadata"]["annotations"]["fraudgate.io/export-notes"]
    assert "twice" in notes and repr(B) in notes
    for bad in (B, "fraud-detection-ab-test", "fraud-v2-candidate_1"):
        with pytest.raises(ExperimentConfigError, match="mirror_model"):
            to_seldon_experiment(s, mirror_model=bad)


def test_no_mirror_no_default(validator: jsonschema.Draft7Validator) -> None:
    s = ExperimentSpec.from_config(
        {"name": "ab", "candidates": [{"name": A, "weight": 1}, {"name": B, "weight": 0}]}
    )
    manifest = to_seldon_experiment(s)
    assert errors(validator, manifest) == []
    assert set(manifest["spec"]) == {"candidates", "resourceType"}


def test_export_follows_live_weights(validator: jsonschema.Draft7Validator) -> None:
    s = spec().with_weights({A: 2**31 - 1, B: 0})
    manifest = to_seldon_experiment(s)
    assert errors(validator, manifest) == []
    assert [c["weight"] for c in manifest["spec"]["candidates"]] == [2**31 - 1, 0]


def _broken(change: str) -> dict:
    manifest = to_seldon_experiment(spec({"name": "fraud-shadow", "percent": 30}))
    body = manifest["spec"]
    if change == "percentage":
        body["mirror"]["percentage"] = body["mirror"].pop("percent")
    elif change == "extra-top":
        body["stickySessions"] = True
    elif change == "candidate-model-name":
        body["candidates"][0]["modelName"] = body["candidates"][0].pop("name")
    elif change == "weight-string":
        body["candidates"][0]["weight"] = "80"
    elif change == "weight-overflow":
        body["candidates"][0]["weight"] = 2**31
    elif change == "no-candidates":
        del body["candidates"]
    elif change == "annotation-not-string":
        manifest["metadata"]["annotations"]["x"] = 1
    elif change == "kind":
        manifest["kind"] = "SeldonDeployment"
    return manifest


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ("percentage", "spec/mirror"),
        ("extra-top", "spec"),
        ("candidate-model-name", "spec/candidates/0"),
        ("weight-string", "spec/candidates/0/weight"),
        ("weight-overflow", "spec/candidates/0/weight"),
        ("no-candidates", "spec"),
        ("annotation-not-string", "metadata/annotations/x"),
        ("kind", "kind"),
    ],
)
def test_invalid_manifests_fail(
    validator: jsonschema.Draft7Validator, change: str, where: str
) -> None:
    found = errors(validator, _broken(change))
    assert found, f"{change} should be rejected"
    assert any(e.startswith(f"{where}:") for e in found), found


def test_export_refuses_names_kubernetes_cannot_hold() -> None:
    """fraudgate's model names allow ``_``, ``.`` and capitals; Seldon's resources do not."""
    s = ExperimentSpec.from_config(
        {"name": "ab", "candidates": [{"name": "fraud_v1", "weight": 1}, {"name": B, "weight": 1}]}
    )
    with pytest.raises(ExperimentConfigError, match=r"experiment.candidates\[0\].name.*DNS-1123"):
        to_seldon_experiment(s)
    with pytest.raises(ExperimentConfigError, match="mirror_model.*DNS-1123"):
        to_seldon_experiment(spec({"percent": 100}), mirror_model="Fraud-Shadow")
