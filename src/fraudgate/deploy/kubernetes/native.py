"""``--target native``: fraudgate itself at scale, stateless replicas sharing one PostgreSQL ledger.

Each pod runs ``fraudgate serve`` and, with the journal (``ledger.acknowledge: journal``), the
shipper ``fraudgate ledger ship`` as a native sidecar (an init container with
``restartPolicy: Always``) on the same ``emptyDir``: the kubelet starts it before the server and
stops it only after the server has exited, so on a rolling update or a drain the shipper moves
the last acknowledged decisions into the store before the volume goes away.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fraudgate.config import FraudgateConfig
from fraudgate.config.kubernetes import KubernetesConfig, SecretRef
from fraudgate.deploy.kubernetes import incluster
from fraudgate.deploy.kubernetes.objects import (
    ANNOTATION_PREFIX,
    ISTIO_INGRESS_LABELS,
    OVERLAYS,
    ExportPlan,
    Kustomization,
    Manifest,
    container_security,
    from_namespace,
    metadata,
    namespace_object,
    pod_security,
    secret_env,
    selector,
    storage_env,
    value_env,
)
from fraudgate.deploy.kubernetes.readme import native_readme

NAME = "fraudgate"
COMPONENT = "server"
SERVE_ARGS = ["serve", "--config", incluster.CONFIG_PATH]
SHIP_ARGS = ["ledger", "ship", "--config", incluster.CONFIG_PATH]
CACHE_DIR = "/var/cache/fraudgate"  # compiled models (XDG_CACHE_HOME); /tmp: MLflow downloads
SCRATCH_LIMIT = "1Gi"
TERMINATION_GRACE_S = 60  # the server drains, then the shipper ships what is left


def native_plan(config: FraudgateConfig, k8s: KubernetesConfig) -> ExportPlan:
    cluster = incluster.cluster_config(config, k8s)
    ns = k8s.namespace
    config_text = incluster.render(cluster.document)
    manifests = [
        Manifest("namespace.yaml", namespace_object(ns, COMPONENT)),
        Manifest("serviceaccount.yaml", _service_account(ns)),
        Manifest("configmap.yaml", _config_map(ns, config_text)),
        Manifest("deployment.yaml", _deployment(config, k8s, cluster, config_text)),
        Manifest("service.yaml", _service(config, ns)),
        Manifest("hpa.yaml", _autoscaler(k8s, k8s.replicas, k8s.max_replicas)),
        Manifest("pdb.yaml", _disruption_budget(ns)),
        Manifest("networkpolicy.yaml", _network_policy(config, k8s)),
        *observability_manifests(config, k8s),
    ]
    base = Kustomization("base", manifests=tuple(manifests))
    overlays = tuple(_overlay(env, k8s) for env in OVERLAYS)
    notes = []
    if config.auth.token is not None and config.auth.token_env is None:
        notes.append(
            "auth.token: not exported; the pods read the admin token from the Secret "
            f"{k8s.secrets.admin_token.name} (env {cluster.token_env})"
        )
    notes += [
        f"create the Secrets first: {k8s.secrets.admin_token.name} (key "
        f"{k8s.secrets.admin_token.key}: the admin token)"
        + (
            f", {k8s.secrets.postgres.name} (key {k8s.secrets.postgres.key}: the PostgreSQL "
            "password)"
            if cluster.ledger
            else ""
        ),
    ]
    return ExportPlan(
        target="native",
        kustomizations=(base, *overlays),
        readme=native_readme(config, k8s, cluster),
        notes=tuple(notes),
    )


# -- observability ---------------------------------------------------------------------------------
def observability_manifests(config: FraudgateConfig, k8s: KubernetesConfig) -> list[Manifest]:
    """The alerting rules and the Grafana dashboard, generated from the same config as the pods
    (fraudgate.deploy.prometheus / .grafana), so what runs and what watches it agree."""
    from fraudgate.deploy.grafana import dashboard
    from fraudgate.deploy.prometheus import prometheus_rule

    return [
        prometheus_rule_manifest(prometheus_rule(config), k8s),
        dashboard_manifest(dashboard(config), k8s),
    ]


def prometheus_rule_manifest(rule: dict[str, Any], k8s: KubernetesConfig) -> Manifest:
    """A ``PrometheusRule`` dict, put into the application namespace with our labels."""
    body = {**rule, "metadata": {**rule.get("metadata", {}), "namespace": k8s.namespace}}
    body["metadata"]["labels"] = {
        **metadata(NAME, None, COMPONENT)["labels"],
        **rule.get("metadata", {}).get("labels", {}),
    }
    return Manifest("prometheusrule.yaml", body)


def dashboard_manifest(dashboard: dict[str, Any], k8s: KubernetesConfig) -> Manifest:
    """A Grafana dashboard as the ConfigMap Grafana's sidecar loads (label grafana_dashboard)."""
    import json

    return Manifest(
        "grafana-dashboard.yaml",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(
                f"{NAME}-dashboard",
                k8s.namespace,
                COMPONENT,
                extra_labels={"grafana_dashboard": "1"},
            ),
            "data": {"fraudgate.json": json.dumps(dashboard, indent=2, sort_keys=True)},
        },
    )


# -- objects ---------------------------------------------------------------------------------------


def _service_account(ns: str) -> dict[str, Any]:
    # the pods call no Kubernetes API: no token is mounted
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(NAME, ns, COMPONENT),
        "automountServiceAccountToken": False,
    }


def _config_map(ns: str, text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(f"{NAME}-config", ns, COMPONENT),
        "data": {incluster.CONFIG_FILE: text},
    }


def _environment(k8s: KubernetesConfig, cluster: incluster.ClusterConfig) -> list[dict[str, Any]]:
    """What both containers read: the registry's and the store's credentials (Secret refs)."""
    secrets = k8s.secrets
    env = [
        value_env("HOME", "/tmp"),
        value_env("XDG_CACHE_HOME", CACHE_DIR),
        value_env("PYTHONUNBUFFERED", "1"),
    ]
    if cluster.ledger:
        # libpq reads the password from PGPASSWORD: the ledger URL carries none
        env.append(secret_env("PGPASSWORD", secrets.postgres))
    env += [
        secret_env(
            "MLFLOW_TRACKING_USERNAME", SecretRef(secrets.mlflow, "username"), optional=True
        ),
        secret_env(
            "MLFLOW_TRACKING_PASSWORD", SecretRef(secrets.mlflow, "password"), optional=True
        ),
        *storage_env(secrets.storage, k8s.storage_endpoint),
    ]
    return env


def _mounts(*, journal: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": incluster.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": CACHE_DIR},
    ]
    if journal:
        mounts.append({"name": "journal", "mountPath": incluster.JOURNAL_DIR})
    return mounts


def _probe(path: str, *, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _deployment(
    config: FraudgateConfig,
    k8s: KubernetesConfig,
    cluster: incluster.ClusterConfig,
    config_text: str,
) -> dict[str, Any]:
    env = _environment(k8s, cluster)
    server = {
        "name": "server",
        "image": k8s.image,
        "imagePullPolicy": k8s.image_pull_policy,
        "args": list(SERVE_ARGS),
        "ports": [
            {"name": "http", "containerPort": config.server.http_port, "protocol": "TCP"},
            {"name": "grpc", "containerPort": config.server.grpc_port, "protocol": "TCP"},
        ],
        "env": [secret_env(cluster.token_env, k8s.secrets.admin_token), *env],
        # /live answers as soon as the listeners are up; /ready once the models are loaded
        # and compiled (and while the ledger keeps up): no traffic before
        "readinessProbe": _probe("/v2/health/ready", period_s=5, failures=3),
        "livenessProbe": _probe("/v2/health/live", period_s=10, failures=3),
        "resources": k8s.resources.manifest(),
        "securityContext": container_security(),
        "volumeMounts": _mounts(journal=cluster.journaled),
    }
    init_containers = []
    if cluster.journaled:
        init_containers.append(
            {
                "name": "shipper",
                "image": k8s.image,
                "imagePullPolicy": k8s.image_pull_policy,
                "args": list(SHIP_ARGS),
                # a native sidecar: started first, stopped after the server (Kubernetes >= 1.29)
                "restartPolicy": "Always",
                "env": env,
                "resources": k8s.shipper_resources.manifest(),
                "securityContext": container_security(),
                "volumeMounts": _mounts(journal=True),
            }
        )
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": f"{NAME}-config"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": SCRATCH_LIMIT}},
        {"name": "cache", "emptyDir": {"sizeLimit": SCRATCH_LIMIT}},
    ]
    if cluster.journaled:
        volumes.append({"name": "journal", "emptyDir": {"sizeLimit": k8s.journal_size_limit}})
    digest = hashlib.sha256(config_text.encode()).hexdigest()
    pod: dict[str, Any] = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(COMPONENT)},
            }
        ],
        "containers": [server],
        "volumes": volumes,
    }
    if init_containers:
        pod["initContainers"] = init_containers
    template_meta = metadata(
        NAME,
        None,
        COMPONENT,
        annotations={
            # a changed config rolls the pods
            ANNOTATION_PREFIX + "config-sha256": digest,
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(config.server.http_port),
            "prometheus.io/path": "/metrics",
        },
    )
    del template_meta["name"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(NAME, k8s.namespace, COMPONENT),
        "spec": {
            "replicas": k8s.replicas,
            "selector": {"matchLabels": selector(COMPONENT)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": template_meta, "spec": pod},
        },
    }


def _service(config: FraudgateConfig, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(NAME, ns, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(COMPONENT),
            "ports": [
                {
                    "name": "http",
                    "port": config.server.http_port,
                    "targetPort": "http",
                    "protocol": "TCP",
                },
                {
                    "name": "grpc",
                    "port": config.server.grpc_port,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                },
            ],
        },
    }


def _autoscaler(k8s: KubernetesConfig, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(NAME, k8s.namespace, COMPONENT),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": k8s.target_cpu_percent,
                        },
                    },
                }
            ],
        },
    }


def _disruption_budget(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(NAME, ns, COMPONENT),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(COMPONENT)}},
    }


def _network_policy(config: FraudgateConfig, k8s: KubernetesConfig) -> dict[str, Any]:
    """Inbound: the Istio ingress and the namespace's own pods on both ports; Prometheus (any
    pod of the monitoring namespace) on the HTTP port for /metrics. Nothing else."""
    ports = [
        {"protocol": "TCP", "port": config.server.http_port},
        {"protocol": "TCP", "port": config.server.grpc_port},
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(NAME, k8s.namespace, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector(COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        from_namespace(k8s.ingress_namespace, ISTIO_INGRESS_LABELS),
                        {"podSelector": {}},
                    ],
                    "ports": ports,
                },
                {
                    "from": [from_namespace(k8s.monitoring_namespace)],
                    "ports": [{"protocol": "TCP", "port": config.server.http_port}],
                },
            ],
        },
    }


# -- overlays --------------------------------------------------------------------------------------


def _overlay(env: str, k8s: KubernetesConfig) -> Kustomization:
    """prod: the config's replicas (the base); dev: one replica, autoscaled to two at most."""
    patches: tuple[Manifest, ...] = ()
    if env == "dev":
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": k8s.namespace},
            "spec": {"replicas": 1},
        }
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": NAME, "namespace": k8s.namespace},
            "spec": {"minReplicas": 1, "maxReplicas": 2},
        }
        patches = (Manifest("deployment-replicas.yaml", deployment), Manifest("hpa.yaml", hpa))
    return Kustomization(
        f"overlays/{env}",
        resources=("../../base",),
        patches=patches,
        labels={"fraudgate.io/environment": env},
    )
