"""``--target seldon``: the models on Seldon Core v2 (operator in ``seldon-system``, runtime in
the application namespace).

A ``ServerConfig`` in ``seldon-system`` (the pod template of an MLServer with Seldon's agent and
rclone); in the application namespace a ``Server`` using it, one ``Model`` per served model
(``requirements: [mlflow]``: MLServer's MLflow runtime loads the registered pyfunc), the
``Experiment`` (`fraudgate.experiments.to_seldon_experiment`: default, weighted candidates, a
mirror with ``percent``), an Istio ``Gateway`` and ``VirtualService`` to ``seldon-mesh``, a
``NetworkPolicy`` that admits only the Istio ingress (and Seldon's own components), the RBAC of
the model servers and the namespace. Seldon's mirror is one fixed model that may not be a
candidate: fraudgate's "the other arm scores in shadow" becomes a ``<challenger>-shadow`` Model
serving the challenger's files (what this changes is in the Experiment's annotations).
"""

from __future__ import annotations

from typing import Any

from fraudgate.config import FraudgateConfig
from fraudgate.config.kubernetes import KubernetesConfig
from fraudgate.deploy.kubernetes.objects import (
    ISTIO_INGRESS_LABELS,
    OVERLAYS,
    ExportPlan,
    Kustomization,
    Manifest,
    from_namespace,
    metadata,
    namespace_object,
    value_env,
)
from fraudgate.deploy.kubernetes.readme import seldon_readme
from fraudgate.deploy.kubernetes.storage import storage_uris

API = "mlops.seldon.io/v1alpha1"
ISTIO_API = "networking.istio.io/v1"
SELDON_SYSTEM = "seldon-system"
SERVER = "fraudgate-mlserver"  # the ServerConfig's and the Server's name
SERVICE_ACCOUNT = "fraudgate-seldon-server"
COMPONENT = "seldon"
MESH_SERVICE = "seldon-mesh"  # the SeldonRuntime's Envoy in the application namespace
MLSERVER_HTTP, MLSERVER_GRPC = 9000, 9500
SERVER_UID = 1000  # Seldon's and MLServer's images run as uid 1000


def seldon_plan(config: FraudgateConfig, k8s: KubernetesConfig) -> ExportPlan:
    from fraudgate.experiments import to_seldon_experiment
    from fraudgate.experiments.seldon import non_default_candidate

    ns = k8s.namespace
    uris = storage_uris(config, k8s)
    models = [(m.name, uris[m.name]) for m in config.models]
    spec = config.experiment_spec
    mirror_model = None
    notes: list[str] = []
    if spec is not None and spec.mirror is not None and spec.mirror.shadows_other_arm:
        shadowed = non_default_candidate(spec)
        mirror_model = k8s.seldon.mirror_model or f"{shadowed}-shadow"
        models.append((mirror_model, uris[shadowed]))
        notes.append(
            f"mirror: Seldon mirrors to one fixed model; {mirror_model} serves {shadowed}'s "
            "files and shadows the experiment (see the Experiment's annotations)"
        )
    manifests = [
        # its injected pods are not all "restricted": warn and audit, do not enforce
        Manifest("namespace.yaml", namespace_object(ns, COMPONENT, enforce=False)),
        Manifest("serviceaccount.yaml", _service_account(ns)),
        Manifest("role.yaml", _role(k8s)),
        Manifest("rolebinding.yaml", _role_binding(ns)),
        Manifest("serverconfig.yaml", _server_config(k8s)),
        Manifest("server.yaml", _server(k8s, k8s.seldon.replicas)),
        *(Manifest(f"model-{name}.yaml", _model(name, uri, k8s)) for name, uri in models),
    ]
    if spec is not None:
        experiment = to_seldon_experiment(spec, namespace=ns, mirror_model=mirror_model)
        experiment["metadata"]["labels"] = metadata(spec.name, ns, COMPONENT)["labels"]
        manifests.append(Manifest("experiment.yaml", experiment))
    manifests += [
        Manifest("gateway.yaml", _gateway(k8s)),
        Manifest("virtualservice.yaml", _virtual_service(config, k8s)),
        Manifest("networkpolicy.yaml", _network_policy(k8s)),
    ]
    base = Kustomization("base", manifests=tuple(manifests))
    overlays = tuple(_overlay(env, k8s) for env in OVERLAYS)
    return ExportPlan(
        target="seldon",
        kustomizations=(base, *overlays),
        readme=seldon_readme(config, k8s, [name for name, _ in models], mirror_model),
        notes=tuple(notes),
    )


def _service_account(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(SERVICE_ACCOUNT, ns, COMPONENT),
    }


def _role(k8s: KubernetesConfig) -> dict[str, Any]:
    """The agent reads the storage Secret (rclone config) the Models name: that one, read-only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(SERVICE_ACCOUNT, k8s.namespace, COMPONENT),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [k8s.secrets.storage],
                "verbs": ["get"],
            }
        ],
    }


def _role_binding(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(SERVICE_ACCOUNT, ns, COMPONENT),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": SERVICE_ACCOUNT,
        },
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
    }


def _security() -> dict[str, Any]:
    # third-party images that write to their own filesystem: no read-only root here
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _server_config(k8s: KubernetesConfig) -> dict[str, Any]:
    """MLServer beside Seldon's agent (registers with the scheduler, proxies) and rclone
    (downloads the model files), sharing the model repository volume."""
    version = k8s.seldon.version
    models = {"name": "mlserver-models", "mountPath": "/mnt/agent"}
    agent_env = [
        value_env("SELDON_SERVER_CAPABILITIES", "mlserver,lightgbm,mlflow,python,sklearn"),
        value_env("SELDON_SERVER_TYPE", "mlserver"),
        value_env("SELDON_SERVER_HTTP_PORT", str(MLSERVER_HTTP)),
        value_env("SELDON_SERVER_GRPC_PORT", str(MLSERVER_GRPC)),
        value_env("SELDON_REVERSE_PROXY_HTTP_PORT", "9001"),
        value_env("SELDON_REVERSE_PROXY_GRPC_PORT", "9501"),
        value_env("SELDON_SCHEDULER_HOST", "seldon-scheduler"),
        value_env("SELDON_SCHEDULER_PORT", "9005"),
        value_env("SELDON_METRICS_PORT", "9006"),
        value_env("SELDON_DRAINER_PORT", "9007"),
        value_env("SELDON_OVERCOMMIT_PERCENTAGE", "10"),
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {
            "name": "MEMORY_REQUEST",
            "valueFrom": {
                "resourceFieldRef": {"containerName": "mlserver", "resource": "requests.memory"}
            },
        },
    ]
    containers = [
        {
            "name": "rclone",
            "image": f"docker.io/seldonio/seldon-rclone:{version}",
            "args": [
                "rcd",
                "--rc-no-auth",
                "--config=/rclone/rclone.conf",
                "--rc-addr=0.0.0.0:5572",
            ],
            "ports": [{"name": "rclone", "containerPort": 5572, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "50m", "memory": "100Mi"}},
            "securityContext": _security(),
            "volumeMounts": [models],
        },
        {
            "name": "agent",
            "image": f"docker.io/seldonio/seldon-agent:{version}",
            "command": ["/bin/agent"],
            "env": agent_env,
            "ports": [
                {"name": "agent-http", "containerPort": 9001, "protocol": "TCP"},
                {"name": "agent-grpc", "containerPort": 9501, "protocol": "TCP"},
                {"name": "agent-metrics", "containerPort": 9006, "protocol": "TCP"},
            ],
            "resources": {"requests": {"cpu": "200m", "memory": "500Mi"}},
            "securityContext": _security(),
            "volumeMounts": [models],
        },
        {
            "name": "mlserver",
            "image": k8s.seldon.mlserver_image,
            "env": [
                value_env("MLSERVER_HTTP_PORT", str(MLSERVER_HTTP)),
                value_env("MLSERVER_GRPC_PORT", str(MLSERVER_GRPC)),
                value_env("MLSERVER_MODELS_DIR", "/mnt/agent/models"),
                value_env("MLSERVER_LOAD_MODELS_AT_STARTUP", "false"),
                value_env("MLSERVER_PARALLEL_WORKERS", "1"),
            ],
            "ports": [
                {"name": "mlserver-http", "containerPort": MLSERVER_HTTP, "protocol": "TCP"},
                {"name": "mlserver-grpc", "containerPort": MLSERVER_GRPC, "protocol": "TCP"},
            ],
            "readinessProbe": {
                "httpGet": {"path": "/v2/health/ready", "port": MLSERVER_HTTP},
                "periodSeconds": 5,
            },
            "livenessProbe": {
                "httpGet": {"path": "/v2/health/live", "port": MLSERVER_HTTP},
                "periodSeconds": 10,
            },
            "resources": k8s.resources.manifest(),
            "securityContext": _security(),
            "volumeMounts": [models],
        },
    ]
    return {
        "apiVersion": API,
        "kind": "ServerConfig",
        "metadata": metadata(SERVER, SELDON_SYSTEM, COMPONENT),
        "spec": {
            "podSpec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": SERVER_UID,
                    "fsGroup": SERVER_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "terminationGracePeriodSeconds": 120,
                "containers": containers,
            },
            "volumeClaimTemplates": [
                {
                    "name": "mlserver-models",
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def _server(k8s: KubernetesConfig, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Server",
        "metadata": metadata(SERVER, k8s.namespace, COMPONENT),
        "spec": {
            "serverConfig": SERVER,
            "replicas": replicas,
            "podSpec": {"serviceAccountName": SERVICE_ACCOUNT},
        },
    }


def _model(name: str, uri: str, k8s: KubernetesConfig) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Model",
        "metadata": metadata(name, k8s.namespace, COMPONENT),
        "spec": {
            "storageUri": uri,
            "requirements": ["mlflow"],
            "server": SERVER,
            "secretName": k8s.secrets.storage,
        },
    }


def _gateway(k8s: KubernetesConfig) -> dict[str, Any]:
    return {
        "apiVersion": ISTIO_API,
        "kind": "Gateway",
        "metadata": metadata("fraudgate", k8s.namespace, COMPONENT),
        "spec": {
            "selector": dict(ISTIO_INGRESS_LABELS),
            "servers": [
                {
                    "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                    "hosts": list(k8s.hosts),
                }
            ],
        },
    }


def _virtual_service(config: FraudgateConfig, k8s: KubernetesConfig) -> dict[str, Any]:
    """Seldon's mesh routes on the ``seldon-model`` header: set it from the path, so the seed's
    clients (``/v2/models/fraud-v1-baseline/infer``) work unchanged; the experiment's name is
    routed to the experiment (``<name>.experiment``) under its default model's path."""
    mesh = {
        "destination": {
            "host": f"{MESH_SERVICE}.{k8s.namespace}.svc.cluster.local",
            "port": {"number": 80},
        }
    }
    routes: list[dict[str, Any]] = []
    spec = config.experiment_spec
    if spec is not None:
        default = spec.default or spec.candidate_names[0]
        routes.append(
            {
                "name": spec.name,
                "match": [{"uri": {"prefix": f"/v2/models/{spec.name}/"}}],
                "rewrite": {"uri": f"/v2/models/{default}/"},
                "headers": {"request": {"set": {"seldon-model": f"{spec.name}.experiment"}}},
                "route": [mesh],
            }
        )
    for model in config.models:
        routes.append(
            {
                "name": model.name,
                "match": [
                    {"uri": {"exact": f"/v2/models/{model.name}"}},  # its metadata
                    {"uri": {"prefix": f"/v2/models/{model.name}/"}},
                ],
                "headers": {"request": {"set": {"seldon-model": model.name}}},
                "route": [mesh],
            }
        )
    # gRPC clients name the model in the seldon-model metadata themselves
    routes.append(
        {
            "name": "grpc",
            "match": [{"uri": {"prefix": "/inference.GRPCInferenceService/"}}],
            "route": [mesh],
        }
    )
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": metadata("fraudgate", k8s.namespace, COMPONENT),
        "spec": {"hosts": list(k8s.hosts), "gateways": ["fraudgate"], "http": routes},
    }


def _network_policy(k8s: KubernetesConfig) -> dict[str, Any]:
    """Every pod of the namespace (the mesh, the scheduler, the model servers) admits only the
    Istio ingress, each other, Seldon's operator (seldon-system) and Prometheus."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata("fraudgate-seldon", k8s.namespace, COMPONENT),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        from_namespace(k8s.ingress_namespace, ISTIO_INGRESS_LABELS),
                        {"podSelector": {}},
                        from_namespace(SELDON_SYSTEM),
                        from_namespace(k8s.monitoring_namespace),
                    ]
                }
            ],
        },
    }


def _overlay(env: str, k8s: KubernetesConfig) -> Kustomization:
    """prod: the configured Server replicas (the base); dev: one."""
    patches: tuple[Manifest, ...] = ()
    if env == "dev":
        server = {
            "apiVersion": API,
            "kind": "Server",
            "metadata": {"name": SERVER, "namespace": k8s.namespace},
            "spec": {"replicas": 1},
        }
        patches = (Manifest("server-replicas.yaml", server),)
    return Kustomization(
        f"overlays/{env}",
        resources=("../../base",),
        patches=patches,
        labels={"fraudgate.io/environment": env},
    )
