"""The config file the pods read (the ConfigMap's ``fraudgate.yaml``), derived from the local one.

Same models, experiment, ledger settings, auth and analysis; what differs in a cluster is said
here, once: the server listens on every interface of its pod, the registry and the ledger are
the cluster's (``kubernetes.registry`` / ``kubernetes.ledger_url``), the journal lives on the
pod's volume and the shipper runs as a sidecar (``shipper: external``), and the admin token is
always read from the environment (a Secret), never written into the file.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from fraudgate.config import ADMIN_TOKEN_ENV, ConfigError, FraudgateConfig, parse_config
from fraudgate.config.kubernetes import KubernetesConfig, is_local_location
from fraudgate.deploy.kubernetes.objects import ExportError

CONFIG_DIR = "/etc/fraudgate"
CONFIG_FILE = "fraudgate.yaml"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
JOURNAL_DIR = "/var/lib/fraudgate/journal"
LISTEN_HOST = "0.0.0.0"  # the pod's interfaces; the Service and the NetworkPolicy bound who comes


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The pods' config document and what the manifests need to know about it."""

    document: dict[str, Any]
    token_env: str
    journaled: bool  # a journal on the pod's volume and a shipper sidecar

    @property
    def ledger(self) -> bool:
        return "ledger" in self.document


def refuse_credentials(url: str, field: str) -> str:
    """A URL with a password would put a secret into a ConfigMap: refused."""
    if "://" in url and urlsplit(url).password is not None:
        shown = url.replace(urlsplit(url).password or "", "***", 1)
        raise ExportError(
            f"{field}: expected a URL without a password (the pods read it from the Secret in "
            f"kubernetes.secrets), received {shown!r}"
        )
    return url


def cluster_registry(config: FraudgateConfig, k8s: KubernetesConfig) -> str:
    """The MLflow tracking URI the pods use: ``kubernetes.registry``, else the file's."""
    uri = k8s.registry or config.registry
    field = "kubernetes.registry" if k8s.registry else "registry"
    if uri is None or is_local_location(uri):
        raise ExportError(
            f"{field}: expected an MLflow tracking URI the cluster can reach (e.g. "
            f"http://mlflow.mlflow:5000; set kubernetes.registry), received {uri!r}"
        )
    return refuse_credentials(uri, field)


def cluster_ledger_url(config: FraudgateConfig, k8s: KubernetesConfig) -> str:
    """The ledger the replicas share: PostgreSQL (``kubernetes.ledger_url``, else the file's)."""
    local = config.ledger_config.url if config.ledger_config is not None else None
    url = k8s.ledger_url or local
    field = "kubernetes.ledger_url" if k8s.ledger_url else "ledger.url"
    if url is None or not url.startswith(("postgresql", "postgres:")):
        raise ExportError(
            f"{field}: expected a postgresql:// URL (every replica writes one shared ledger; "
            f"set kubernetes.ledger_url), received {url!r}"
        )
    return refuse_credentials(url, field)


def cluster_config(config: FraudgateConfig, k8s: KubernetesConfig) -> ClusterConfig:
    """The pods' ``fraudgate.yaml`` document (validated by the same loader the server uses)."""
    server = {
        key: value for key, value in dataclasses.asdict(config.server).items() if value is not None
    }
    server["host"] = LISTEN_HOST
    document: dict[str, Any] = {
        "registry": cluster_registry(config, k8s),
        "server": server,
        "models": [dataclasses.asdict(model) for model in config.models],
    }
    if config.experiment is not None:
        document["experiment"] = dict(config.experiment)
    journaled = False
    if config.ledger is not None and config.ledger_enabled:
        ledger = dict(config.ledger)
        ledger["url"] = cluster_ledger_url(config, k8s)
        ledger.pop("journal_dir", None)
        ledger.pop("shipper", None)
        assert config.ledger_config is not None
        if config.ledger_config.acknowledge == "journal":
            ledger["journal_dir"] = JOURNAL_DIR
            ledger["shipper"] = "external"
            journaled = True
        document["ledger"] = ledger
    token_env = config.auth.token_env or ADMIN_TOKEN_ENV
    # always a token in a cluster (secure by default), and never its value in the file
    document["auth"] = {"token_env": token_env, "inference": config.auth.inference}
    document["analysis"] = dataclasses.asdict(config.analysis)
    try:
        parse_config(document, resolve_secrets=False)
    except ConfigError as exc:  # a bug here, not in the user's file: say which document
        raise ExportError(f"the in-cluster config is invalid: {exc}") from exc
    return ClusterConfig(document=document, token_env=token_env, journaled=journaled)


def render(document: dict[str, Any]) -> str:
    import yaml

    header = (
        "# fraudgate's config inside the cluster, written by `fraudgate export kubernetes`\n"
        "# from the local file: edit that file and export again rather than this one.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)
