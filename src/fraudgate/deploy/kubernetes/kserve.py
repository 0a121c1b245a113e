"""``--target kserve``: one ``InferenceService`` per model on the V2 protocol, and the experiment's
split as KServe's canary.

KServe splits traffic between two revisions of one InferenceService: the last one rolled out at
100% and the latest, which gets ``canaryTrafficPercent``. So the experiment is an
InferenceService of its own (named after it): ``stable/`` rolls it out serving the default
model, then the overlay adds the ``canary`` component, which points it at the challenger with
the challenger's weight. What KServe cannot do (no mirror, no sticky split) is in the README.
"""

from __future__ import annotations

from typing import Any

from fraudgate.config import FraudgateConfig
from fraudgate.config.kubernetes import KubernetesConfig
from fraudgate.deploy.kubernetes.objects import (
    OVERLAYS,
    ExportError,
    ExportPlan,
    Kustomization,
    Manifest,
    container_security,
    metadata,
    namespace_object,
)
from fraudgate.deploy.kubernetes.readme import kserve_readme
from fraudgate.deploy.kubernetes.storage import storage_uris

API = "serving.kserve.io/v1beta1"
COMPONENT = "kserve"
SERVICE_ACCOUNT = "fraudgate-kserve"


def kserve_plan(config: FraudgateConfig, k8s: KubernetesConfig) -> ExportPlan:
    from fraudgate.experiments.seldon import non_default_candidate

    ns = k8s.namespace
    uris = storage_uris(config, k8s)
    manifests = [
        # its injected pods are not all "restricted": warn and audit, do not enforce
        Manifest("namespace.yaml", namespace_object(ns, COMPONENT, enforce=False)),
        Manifest("serviceaccount.yaml", _service_account(k8s)),
        *(
            Manifest(f"isvc-{m.name}.yaml", _inference_service(m.name, uris[m.name], k8s))
            for m in config.models
        ),
    ]
    spec = config.experiment_spec
    kustomizations: list[Kustomization] = []
    notes: list[str] = []
    if spec is not None:
        if len(spec.candidates) != 2:
            raise ExportError(
                "experiment.candidates: expected 2 candidates for KServe (a canary splits two "
                f"revisions), received {len(spec.candidates)}"
            )
        default = spec.default or spec.candidate_names[0]
        challenger = non_default_candidate(spec)
        stable = _inference_service(spec.name, uris[default], k8s)
        stable["metadata"]["annotations"]["fraudgate.io/stable-model"] = default
        manifests.append(Manifest("isvc-experiment.yaml", stable))
        canary = {
            "apiVersion": API,
            "kind": "InferenceService",
            "metadata": {
                "name": spec.name,
                "namespace": ns,
                "annotations": {"fraudgate.io/canary-model": challenger},
            },
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": _percent(spec.weights[challenger], spec.total_weight),
                    "model": {"storageUri": uris[challenger]},
                }
            },
        }
        kustomizations.append(
            Kustomization(
                "components/canary",
                patches=(Manifest("experiment-canary.yaml", canary),),
                component=True,
            )
        )
        if spec.mirror is not None:
            notes.append(
                "mirror: KServe has no traffic mirror; the export has no shadow (see README.md)"
            )
    base = Kustomization("base", manifests=tuple(manifests))
    for env in OVERLAYS:
        kustomizations += _overlays(env, config, k8s, canary=spec is not None)
    return ExportPlan(
        target="kserve",
        kustomizations=(base, *kustomizations),
        readme=kserve_readme(config, k8s),
        notes=tuple(notes),
    )


def _percent(weight: int, total: int) -> int:
    return round(100 * weight / total)


def _service_account(k8s: KubernetesConfig) -> dict[str, Any]:
    """KServe's storage initializer reads the S3 credentials of the Secrets its service account
    lists (the Secret's serving.kserve.io/s3-* annotations say the endpoint)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(SERVICE_ACCOUNT, k8s.namespace, COMPONENT),
        "secrets": [{"name": k8s.secrets.storage}],
    }


def _inference_service(name: str, uri: str, k8s: KubernetesConfig) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceService",
        "metadata": metadata(
            name,
            k8s.namespace,
            COMPONENT,
            # the canary needs Knative revisions (RawDeployment has no traffic split)
            annotations={"serving.kserve.io/deploymentMode": "Serverless"},
        ),
        "spec": {
            "predictor": {
                "serviceAccountName": SERVICE_ACCOUNT,
                "minReplicas": k8s.replicas,
                "maxReplicas": k8s.max_replicas,
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "model": {
                    "modelFormat": {"name": "mlflow"},
                    "protocolVersion": "v2",
                    "storageUri": uri,
                    "resources": k8s.resources.manifest(),
                    "securityContext": {
                        key: value
                        for key, value in container_security().items()
                        if key != "readOnlyRootFilesystem"  # MLServer writes its environment
                    },
                },
            }
        },
    }


def _overlays(
    env: str, config: FraudgateConfig, k8s: KubernetesConfig, *, canary: bool
) -> list[Kustomization]:
    """``overlays/<env>/stable``: the environment with the experiment at its default model;
    ``overlays/<env>``: the same plus the canary (without an experiment: just the first)."""
    patches: tuple[Manifest, ...] = ()
    if env == "dev":
        names = [m.name for m in config.models]
        if config.experiment_spec is not None:
            names.append(config.experiment_spec.name)
        patches = tuple(
            Manifest(
                f"replicas-{name}.yaml",
                {
                    "apiVersion": API,
                    "kind": "InferenceService",
                    "metadata": {"name": name, "namespace": k8s.namespace},
                    "spec": {"predictor": {"minReplicas": 1, "maxReplicas": 2}},
                },
            )
            for name in names
        )
    labels = {"fraudgate.io/environment": env}
    if not canary:
        return [
            Kustomization(
                f"overlays/{env}", resources=("../../base",), patches=patches, labels=labels
            )
        ]
    return [
        Kustomization(
            f"overlays/{env}/stable", resources=("../../../base",), patches=patches, labels=labels
        ),
        Kustomization(
            f"overlays/{env}", resources=("stable",), components=("../../components/canary",)
        ),
    ]
