"""The records of an export (`Manifest`, `Kustomization`, `ExportPlan`) and the pieces every
target shares: labels, metadata, the restricted security contexts, Secret references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fraudgate.config.kubernetes import SecretRef

# the image's user (the Dockerfile creates it; the pods run as it, never as root)
RUN_AS_USER = 10001
PART_OF = "fraudgate"
MANAGED_BY = "fraudgate-export"
ANNOTATION_PREFIX = "fraudgate.io/"
OVERLAYS = ("dev", "prod")


class ExportError(ValueError):
    """The config cannot be exported; the message names the field, expected and received."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """One Kubernetes object and the file (relative to its kustomization) it is written to."""

    file: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True, slots=True)
class Kustomization:
    """One directory of the output: its ``kustomization.yaml`` and the files it lists.

    ``resources``: other kustomization directories (relative to this one) it builds on;
    ``patches``: strategic-merge patches applied to what those produce; ``component``: a
    ``kind: Component`` that overlays opt into (``components``)."""

    directory: str
    manifests: tuple[Manifest, ...] = ()
    resources: tuple[str, ...] = ()
    patches: tuple[Manifest, ...] = ()
    components: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    component: bool = False

    def document(self) -> dict[str, Any]:
        """The ``kustomization.yaml`` document."""
        if self.component:
            doc: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1alpha1"}
            doc["kind"] = "Component"
        else:
            doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        resources = [*self.resources, *(m.file for m in self.manifests)]
        if resources:
            doc["resources"] = resources
        if self.components:
            doc["components"] = list(self.components)
        if self.labels:
            # includeSelectors false: a Deployment's selector is immutable, labels are not
            doc["labels"] = [{"pairs": dict(self.labels), "includeSelectors": False}]
        if self.patches:
            doc["patches"] = [{"path": p.file} for p in self.patches]
        return doc


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """Everything one target writes: kustomization directories, a README, notes for the CLI."""

    target: str
    kustomizations: tuple[Kustomization, ...]
    readme: str
    notes: tuple[str, ...] = ()

    @property
    def manifests(self) -> tuple[Manifest, ...]:
        return tuple(m for k in self.kustomizations for m in k.manifests)

    def overlay_directories(self) -> tuple[str, ...]:
        """Every directory ``kubectl kustomize`` can build (all but components)."""
        return tuple(k.directory for k in self.kustomizations if not k.component)


def labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"fraudgate-{component}",
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(component: str) -> dict[str, str]:
    """The labels a selector matches (a subset of `labels`: selectors are immutable)."""
    return {"app.kubernetes.io/name": f"fraudgate-{component}"}


def metadata(
    name: str,
    namespace: str | None,
    component: str,
    *,
    annotations: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {**labels(component), **(extra_labels or {})}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def namespace_object(name: str, component: str, *, enforce: bool = True) -> dict[str, Any]:
    """The namespace under the Pod Security Standard ``restricted``: enforced, or (``enforce``
    False, for operators whose injected pods are not all compliant) warned about and audited."""
    meta = metadata(name, None, component)
    modes = ("enforce",) if enforce else ("warn", "audit")
    for mode in modes:
        meta["labels"][f"pod-security.kubernetes.io/{mode}"] = "restricted"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def container_security() -> dict[str, Any]:
    """Non-root, read-only root filesystem, no privilege escalation, every capability dropped."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int = RUN_AS_USER) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def secret_env(variable: str, ref: SecretRef, *, optional: bool = False) -> dict[str, Any]:
    """An environment variable read from a Secret's key: the manifest holds the reference only."""
    key_ref: dict[str, Any] = {"name": ref.name, "key": ref.key}
    if optional:
        key_ref["optional"] = True
    return {"name": variable, "valueFrom": {"secretKeyRef": key_ref}}


def value_env(variable: str, value: str) -> dict[str, Any]:
    return {"name": variable, "value": value}


def storage_env(storage_secret: str, endpoint: str | None) -> list[dict[str, Any]]:
    """S3 credentials (optional keys of the storage Secret) and the endpoint of a MinIO store."""
    env = [
        secret_env(
            "AWS_ACCESS_KEY_ID", SecretRef(storage_secret, "AWS_ACCESS_KEY_ID"), optional=True
        ),
        secret_env(
            "AWS_SECRET_ACCESS_KEY",
            SecretRef(storage_secret, "AWS_SECRET_ACCESS_KEY"),
            optional=True,
        ),
    ]
    if endpoint is not None:
        env.append(value_env("MLFLOW_S3_ENDPOINT_URL", endpoint))
        env.append(value_env("AWS_ENDPOINT_URL", endpoint))
    return env


def from_namespace(namespace: str, pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A NetworkPolicy peer: pods of one namespace (all, or those with ``pod_labels``)."""
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


# the label the Istio ingress gateway's pods carry (the istio/gateway chart's default)
ISTIO_INGRESS_LABELS = {"istio": "ingressgateway"}
