"""The ``kubernetes:`` section: what only a cluster needs (`fraudgate export kubernetes`).

Everything else the export writes comes from the rest of the same file (models, experiment,
ledger, auth, analysis), so the local server and the cluster cannot drift apart. Every field has a
default; an error names the field, the expected and the received value::

    kubernetes:
      namespace: fraudgate
      image: fraudgate:0.1.0              # built from the Dockerfile
      image_pull_policy: IfNotPresent
      replicas: 3                         # prod; the dev overlay runs 1
      max_replicas: 10                    # HorizontalPodAutoscaler ceiling
      target_cpu_percent: 70
      resources: {requests: {cpu: "1", memory: 1Gi}, limits: {cpu: "2", memory: 2Gi}}
      shipper_resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}
      journal_size_limit: 2Gi             # the journal's emptyDir
      registry: http://mlflow.mlflow:5000 # MLflow in the cluster (default: the file's registry)
      ledger_url: postgresql+psycopg://fraudgate@postgres.db:5432/fraudgate   # no password
      storage_uris: {fraud-v1-baseline: s3://models/1/abc/artifacts/model}   # Seldon / KServe
      storage_endpoint: http://minio.minio:9000   # an S3-compatible store (MinIO)
      secrets:                            # references only: the values never enter a manifest
        admin_token: {name: fraudgate-admin, key: token}
        postgres: {name: fraudgate-postgres, key: password}
        mlflow: {name: fraudgate-mlflow}  # keys username, password (optional)
        storage: {name: fraudgate-storage}  # S3 keys (native, KServe) / rclone config (Seldon)
      hosts: ["*"]                        # Istio Gateway hosts
      ingress_namespace: istio-system     # where the Istio ingress gateway runs
      monitoring_namespace: monitoring    # where Prometheus runs (may scrape /metrics)
      seldon: {version: 2.9.1, mlserver_image: docker.io/seldonio/mlserver:1.7.1, replicas: 1,
               mirror_model: null}        # null: <challenger>-shadow
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fraudgate.config import validators as v
from fraudgate.config.schema import ConfigError

DEFAULT_NAMESPACE = "fraudgate"
DEFAULT_IMAGE = "fraudgate:0.1.0"
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
DEFAULT_SELDON_VERSION = "2.9.1"
DEFAULT_MLSERVER_IMAGE = "docker.io/seldonio/mlserver:1.7.1"  # the version bench/ compares with
# a Kubernetes resource quantity: 250m, 1, 1.5, 512Mi, 2Gi, 1e3
_QUANTITY = re.compile(
    r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"
)
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_HOST = re.compile(r"^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")
_LOCAL_SCHEMES = ("file:", "sqlite:", "/", ".")


@dataclass(frozen=True, slots=True)
class Resources:
    """A container's requests and limits (Kubernetes quantities; None: not set)."""

    cpu_request: str | None
    memory_request: str | None
    cpu_limit: str | None
    memory_limit: str | None

    def manifest(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for kind, cpu, memory in (
            ("requests", self.cpu_request, self.memory_request),
            ("limits", self.cpu_limit, self.memory_limit),
        ):
            values = {k: q for k, q in (("cpu", cpu), ("memory", memory)) if q is not None}
            if values:
                out[kind] = values
        return out


SERVER_RESOURCES = Resources("1", "1Gi", "2", "2Gi")
SHIPPER_RESOURCES = Resources("250m", "512Mi", None, "1Gi")  # it loads the mirror models


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A key of a Kubernetes Secret: the manifests name it, never hold its value."""

    name: str
    key: str


@dataclass(frozen=True, slots=True)
class KubernetesSecrets:
    admin_token: SecretRef = SecretRef("fraudgate-admin", "token")
    postgres: SecretRef = SecretRef("fraudgate-postgres", "password")
    mlflow: str = "fraudgate-mlflow"  # keys: username, password (both optional)
    storage: str = "fraudgate-storage"  # S3 keys (native, KServe) or an rclone config (Seldon)


@dataclass(frozen=True, slots=True)
class SeldonSettings:
    version: str = DEFAULT_SELDON_VERSION  # the seldon-agent / seldon-rclone image tags
    mlserver_image: str = DEFAULT_MLSERVER_IMAGE
    replicas: int = 1  # Server replicas (MLServer pods)
    mirror_model: str | None = None  # the shadow Model's name; None: <challenger>-shadow


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    namespace: str = DEFAULT_NAMESPACE
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    replicas: int = 3
    max_replicas: int = 10
    target_cpu_percent: int = 70
    resources: Resources = SERVER_RESOURCES
    shipper_resources: Resources = SHIPPER_RESOURCES
    journal_size_limit: str = "2Gi"
    registry: str | None = None
    ledger_url: str | None = None
    storage_uris: dict[str, str] = field(default_factory=dict)
    storage_endpoint: str | None = None
    secrets: KubernetesSecrets = field(default_factory=KubernetesSecrets)
    hosts: tuple[str, ...] = ("*",)
    ingress_namespace: str = "istio-system"
    monitoring_namespace: str = "monitoring"
    seldon: SeldonSettings = field(default_factory=SeldonSettings)


_KEYS = (
    "namespace",
    "image",
    "image_pull_policy",
    "replicas",
    "max_replicas",
    "target_cpu_percent",
    "resources",
    "shipper_resources",
    "journal_size_limit",
    "registry",
    "ledger_url",
    "storage_uris",
    "storage_endpoint",
    "secrets",
    "hosts",
    "ingress_namespace",
    "monitoring_namespace",
    "seldon",
)


def parse_kubernetes(value: Any, served: tuple[str, ...]) -> KubernetesConfig:
    """Validate the ``kubernetes:`` section (None: every default); ``served``: the model names."""
    if value is None:
        return KubernetesConfig()
    where = "kubernetes"
    data = v.mapping(value, where)
    v.no_unknown(data, _KEYS, where)
    d = KubernetesConfig()
    replicas = v.integer(
        data.get("replicas", d.replicas), f"{where}.replicas", minimum=1, maximum=1000
    )
    max_replicas = v.integer(
        data.get("max_replicas", max(d.max_replicas, replicas)),
        f"{where}.max_replicas",
        minimum=1,
        maximum=1000,
    )
    if max_replicas < replicas:
        raise ConfigError(
            f"{where}.max_replicas: expected at least kubernetes.replicas ({replicas}), "
            f"received {max_replicas}"
        )
    return KubernetesConfig(
        namespace=dns_label(data.get("namespace", d.namespace), f"{where}.namespace"),
        image=_image(data.get("image", d.image), f"{where}.image"),
        image_pull_policy=v.choice(
            data.get("image_pull_policy", d.image_pull_policy),
            f"{where}.image_pull_policy",
            PULL_POLICIES,
        ),
        replicas=replicas,
        max_replicas=max_replicas,
        target_cpu_percent=v.integer(
            data.get("target_cpu_percent", d.target_cpu_percent),
            f"{where}.target_cpu_percent",
            minimum=1,
            maximum=100,
        ),
        resources=_resources(data.get("resources"), f"{where}.resources", d.resources),
        shipper_resources=_resources(
            data.get("shipper_resources"), f"{where}.shipper_resources", d.shipper_resources
        ),
        journal_size_limit=quantity(
            data.get("journal_size_limit", d.journal_size_limit), f"{where}.journal_size_limit"
        ),
        registry=_optional_text(data.get("registry"), f"{where}.registry"),
        ledger_url=_ledger_url(data.get("ledger_url"), f"{where}.ledger_url"),
        storage_uris=_storage_uris(data.get("storage_uris"), f"{where}.storage_uris", served),
        storage_endpoint=_optional_text(data.get("storage_endpoint"), f"{where}.storage_endpoint"),
        secrets=_secrets(data.get("secrets"), f"{where}.secrets"),
        hosts=_hosts(data.get("hosts", list(d.hosts)), f"{where}.hosts"),
        ingress_namespace=dns_label(
            data.get("ingress_namespace", d.ingress_namespace), f"{where}.ingress_namespace"
        ),
        monitoring_namespace=dns_label(
            data.get("monitoring_namespace", d.monitoring_namespace),
            f"{where}.monitoring_namespace",
        ),
        seldon=_seldon(data.get("seldon"), f"{where}.seldon"),
    )


# -- field validators ------------------------------------------------------------------------------


def dns_label(value: Any, where: str) -> str:
    """A Kubernetes DNS-1123 label (namespaces, resource names)."""
    from fraudgate.experiments.spec import DNS_LABEL

    name = v.text(value, where)
    if not DNS_LABEL.match(name):
        raise ConfigError(
            f"{where}: expected a Kubernetes DNS-1123 label (lower-case letters, digits and '-', "
            f"at most 63), received {name!r}"
        )
    return name


def quantity(value: Any, where: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return str(value)
    text = v.text(value, where)
    if not _QUANTITY.match(text):
        raise ConfigError(
            f"{where}: expected a Kubernetes quantity (e.g. 250m, 1, 512Mi, 2Gi), received {text!r}"
        )
    return text


def is_local_location(uri: str) -> bool:
    """A path or file/SQLite URI: fine on this machine, meaningless inside a cluster."""
    if uri == "databricks" or uri.startswith("databricks:"):  # MLflow's hosted tracking
        return False
    return uri.startswith(_LOCAL_SCHEMES) or "://" not in uri


def _image(value: Any, where: str) -> str:
    image = v.text(value, where)
    if not _IMAGE.match(image):
        raise ConfigError(
            f"{where}: expected a container image reference (e.g. registry.example/fraudgate:0.1.0)"
            f", received {image!r}"
        )
    return image


def _optional_text(value: Any, where: str) -> str | None:
    return None if value is None else v.text(value, where)


def _ledger_url(value: Any, where: str) -> str | None:
    if value is None:
        return None
    url = v.text(value, where)
    if not url.startswith(("postgresql", "postgres:")):
        raise ConfigError(f"{where}: expected a postgresql:// URL, received {url!r}")
    return url


def _resources(value: Any, where: str, default: Resources) -> Resources:
    if value is None:
        return default
    data = v.mapping(value, where)
    v.no_unknown(data, ("requests", "limits"), where)
    parts: dict[str, str | None] = {}
    for kind, cpu_default, memory_default in (
        ("requests", default.cpu_request, default.memory_request),
        ("limits", default.cpu_limit, default.memory_limit),
    ):
        section = data.get(kind)
        if section is None:
            parts[f"cpu_{kind}"], parts[f"memory_{kind}"] = cpu_default, memory_default
            continue
        section = v.mapping(section, f"{where}.{kind}")
        v.no_unknown(section, ("cpu", "memory"), f"{where}.{kind}")
        for resource in ("cpu", "memory"):
            raw = section.get(resource)
            parts[f"{resource}_{kind}"] = (
                None if raw is None else quantity(raw, f"{where}.{kind}.{resource}")
            )
    return Resources(
        cpu_request=parts["cpu_requests"],
        memory_request=parts["memory_requests"],
        cpu_limit=parts["cpu_limits"],
        memory_limit=parts["memory_limits"],
    )


def _storage_uris(value: Any, where: str, served: tuple[str, ...]) -> dict[str, str]:
    if value is None:
        return {}
    data = v.mapping(value, where)
    out: dict[str, str] = {}
    for name, uri in data.items():
        if name not in served:
            raise ConfigError(
                f"{where}.{name}: expected one of the models[].name {list(served)}, "
                f"received {name!r}"
            )
        uri = v.text(uri, f"{where}.{name}")
        if is_local_location(uri):
            raise ConfigError(
                f"{where}.{name}: expected an object-store URI the cluster can read "
                f"(s3://, gs://, https://, pvc://), received {uri!r}"
            )
        out[name] = uri
    return out


def _secret_ref(value: Any, where: str, default: SecretRef) -> SecretRef:
    if value is None:
        return default
    data = v.mapping(value, where)
    v.no_unknown(data, ("name", "key"), where)
    key = v.text(data.get("key", default.key), f"{where}.key")
    if not _SECRET_KEY.match(key):
        raise ConfigError(
            f"{where}.key: expected a Secret key (letters, digits, '-', '_', '.'), received {key!r}"
        )
    return SecretRef(name=dns_label(data.get("name", default.name), f"{where}.name"), key=key)


def _secret_name(value: Any, where: str, default: str) -> str:
    if value is None:
        return default
    data = v.mapping(value, where)
    v.no_unknown(data, ("name",), where)
    return dns_label(data.get("name", default), f"{where}.name")


def _secrets(value: Any, where: str) -> KubernetesSecrets:
    d = KubernetesSecrets()
    if value is None:
        return d
    data = v.mapping(value, where)
    v.no_unknown(data, ("admin_token", "postgres", "mlflow", "storage"), where)
    return KubernetesSecrets(
        admin_token=_secret_ref(data.get("admin_token"), f"{where}.admin_token", d.admin_token),
        postgres=_secret_ref(data.get("postgres"), f"{where}.postgres", d.postgres),
        mlflow=_secret_name(data.get("mlflow"), f"{where}.mlflow", d.mlflow),
        storage=_secret_name(data.get("storage"), f"{where}.storage", d.storage),
    )


def _hosts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{where}: expected a non-empty list of host names, received {v.describe(value)}"
        )
    hosts = []
    for i, host in enumerate(value):
        host = v.text(host, f"{where}[{i}]")
        if not _HOST.match(host):
            raise ConfigError(
                f"{where}[{i}]: expected a DNS name, '*' or '*.domain', received {host!r}"
            )
        hosts.append(host)
    return tuple(hosts)


def _seldon(value: Any, where: str) -> SeldonSettings:
    d = SeldonSettings()
    if value is None:
        return d
    data = v.mapping(value, where)
    v.no_unknown(data, ("version", "mlserver_image", "replicas", "mirror_model"), where)
    mirror = data.get("mirror_model")
    return SeldonSettings(
        version=v.text(data.get("version", d.version), f"{where}.version"),
        mlserver_image=_image(
            data.get("mlserver_image", d.mlserver_image), f"{where}.mlserver_image"
        ),
        replicas=v.integer(
            data.get("replicas", d.replicas), f"{where}.replicas", minimum=1, maximum=1000
        ),
        mirror_model=None if mirror is None else dns_label(mirror, f"{where}.mirror_model"),
    )
