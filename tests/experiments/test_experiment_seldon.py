"""Seldon Core v2 export, validated against the real Experiment CRD schema.

Kubernetes prunes fields a structural schema does not declare, silently, so the CRD's schema is
tightened before validation (see tests/k8s_schemas.py).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from k8s_schemas import crd_validator, errors, schemas_dir

from fraudgate.experiments import (
    ExperimentConfigError,
    ExperimentSpec,
    seldon_export_notes,
    to_seldon_experiment,
)

A, B = "fraud-v1-baseline", "fraud-v2-candidate"

CRD = schemas_dir() / "seldon-core-v2" / "mlops.seldon.io_experiments.yaml"

pytestmark = pytest.mark.skipif(
    not CRD.exists(), reason=f"Seldon CRD not found at {CRD} (set FRAUDGATE_K8S_SCHEMAS)"
)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return crd_validator(CRD, "Experiment", "v1alpha1")


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
