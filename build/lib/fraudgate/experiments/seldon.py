"""Export an :class:`ExperimentSpec` as a Seldon Core v2 ``Experiment`` resource.

The output uses only the fields the ``experiments.mlops.seldon.io`` CRD (``v1alpha1``) declares
(``spec.default``, ``spec.candidates[].name/weight``, ``spec.mirror.name/percent``,
``spec.resourceType``); Kubernetes would silently prune anything else. What Seldon cannot
express is stated in ``metadata.annotations`` (and returned by :func:`seldon_export_notes`):

- **Sticky routing by key**: Seldon splits each request at random by weight; fraudgate pins a
  routing key (a card) to an arm by hash. The split proportions match; stickiness does not.
- **Shadow the other arm** (``mirror`` without ``name``): a Seldon mirror is one fixed model and
  may not also be a candidate (the scheduler rejects duplicates), so "the model that did not
  answer" has no equivalent. By default the mirror is left out. Pass ``mirror_model`` (a separate
  Model resource serving the same artefact as the non-default candidate, e.g.
  ``fraud-v2-candidate-shadow``) to export ``mirror: {name: mirror_model, percent}``: the
  challenger then shadows every mirrored request, which gives paired scores on the default's
  share but scores the challenger's own share twice and the default not at all there.
"""

from __future__ import annotations

import json
from typing import Any

from fraudgate.experiments.spec import (
    DNS_LABEL,
    ExperimentConfigError,
    ExperimentSpec,
    check_model_name,
)

API_VERSION = "mlops.seldon.io/v1alpha1"
KIND = "Experiment"
ANNOTATION_PREFIX = "fraudgate.io/"


def seldon_export_notes(spec: ExperimentSpec, *, mirror_model: str | None = None) -> list[str]:
    """Human-readable differences between the fraudgate experiment and its Seldon export."""
    notes = [
        f"routing: fraudgate pins each routing key ({_key_source(spec)}) to one arm by a salted "
        "BLAKE2b hash; Seldon splits each request at random with the same weights, so a card "
        "may see both models there."
    ]
    if spec.mirror is not None and spec.mirror.shadows_other_arm:
        if mirror_model is None:
            notes.append(
                f"mirror: fraudgate shadows {spec.mirror.percent}% of requests with the candidate "
                "that did not answer; a Seldon mirror is one fixed model that is not a candidate, "
                "so the mirror is not exported (no shadow scores under Seldon)."
            )
        else:
            other = _non_default(spec)
            notes.append(
                f"mirror: fraudgate shadows {spec.mirror.percent}% of requests with the candidate "
                f"that did not answer; exported as a fixed mirror to {mirror_model!r} (which must "
                f"serve the same model as {other!r}): requests {other!r} answers are scored by it "
                "twice and not by the other candidate."
            )
    return notes


def to_seldon_experiment(
    spec: ExperimentSpec,
    *,
    namespace: str | None = None,
    mirror_model: str | None = None,
) -> dict[str, Any]:
    """The ``Experiment`` manifest (a plain dict, ready for ``yaml.safe_dump``).

    Seldon's resources are named by Kubernetes DNS-1123 labels, stricter than fraudgate's model
    names (no ``_``, ``.`` or capitals): a name outside that form is refused here, at export.
    """
    _check_kubernetes_names(spec)
    if mirror_model is not None:
        check_model_name(mirror_model, "mirror_model")
        _check_kubernetes_name(mirror_model, "mirror_model")
        if mirror_model in spec.model_names or mirror_model == spec.name:
            raise ExperimentConfigError(
                "mirror_model", "a model name not used by the experiment", mirror_model
            )
    metadata: dict[str, Any] = {"name": spec.name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["annotations"] = {
        ANNOTATION_PREFIX + "routing": json.dumps(
            {"key": spec.routing.key, "source": spec.routing.source, "header": spec.routing.header},
            sort_keys=True,
        ),
        ANNOTATION_PREFIX + "export-notes": "\n".join(
            seldon_export_notes(spec, mirror_model=mirror_model)
        ),
    }

    body: dict[str, Any] = {}
    if spec.default is not None:
        body["default"] = spec.default
    body["candidates"] = [{"name": c.name, "weight": c.weight} for c in spec.candidates]
    mirror = spec.mirror
    if mirror is not None:
        if mirror.name is not None:
            body["mirror"] = {"name": mirror.name, "percent": mirror.percent}
        elif mirror_model is not None:
            body["mirror"] = {"name": mirror_model, "percent": mirror.percent}
    body["resourceType"] = "model"
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}


def _key_source(spec: ExperimentSpec) -> str:
    r = spec.routing
    if r.source == "parameter":
        return f"request parameter {r.key!r} or header {r.header!r}"
    return f"header {r.header!r}"


def _non_default(spec: ExperimentSpec) -> str:
    names = spec.candidate_names
    default = spec.default if spec.default is not None else names[0]
    return next(n for n in names if n != default)


def _check_kubernetes_name(value: str, path: str) -> None:
    if not DNS_LABEL.match(value):
        raise ExperimentConfigError(
            path,
            "a Kubernetes DNS-1123 label for the Seldon export (lower-case letters, digits, '-'; "
            "at most 63)",
            value,
        )


def _check_kubernetes_names(spec: ExperimentSpec) -> None:
    _check_kubernetes_name(spec.name, "experiment.name")
    for i, candidate in enumerate(spec.candidates):
        _check_kubernetes_name(candidate.name, f"experiment.candidates[{i}].name")
    if spec.mirror is not None and spec.mirror.name is not None:
        _check_kubernetes_name(spec.mirror.name, "experiment.mirror.name")
