"""The README each export writes next to its manifests: how to apply them, which Secrets to
create (by name and key: never a value), and what the target does differently from fraudgate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudgate.config import FraudgateConfig
from fraudgate.config.kubernetes import KubernetesConfig

if TYPE_CHECKING:
    from fraudgate.deploy.kubernetes.incluster import ClusterConfig


def _layout(*extra: str) -> str:
    lines = [
        "- `base/`: every object, with the values of the config's `kubernetes:` section.",
        "- `overlays/prod/`: the base as configured; `overlays/dev/`: the same with one replica.",
        *extra,
    ]
    return (
        "## Layout\n\n" + "\n".join(lines) + "\n\nBuild without a cluster: "
        "`kubectl kustomize overlays/prod`; apply: `kubectl apply -k overlays/prod`.\n"
        "Edit the fraudgate config and export again rather than editing these files.\n"
    )


_NO_LEDGER = """\
- **No decision ledger**: Seldon records no decisions for `fraudgate report`; serve with the native
  target to evaluate the experiment from its ledger.
"""


def _routing_note(config: FraudgateConfig) -> str:
    spec = config.experiment_spec
    if spec is None:
        return ""
    return (
        f"- **Sticky split**: fraudgate pins a routing key (`{spec.routing.key}`) to one arm by a "
        "salted hash, so a card always meets the same model. This target splits each request "
        "at random with the same weights: a card may meet both models, and the arms' samples "
        "are not independent by card.\n"
    )


def native_readme(config: FraudgateConfig, k8s: KubernetesConfig, cluster: ClusterConfig) -> str:
    s = k8s.secrets
    secrets = [
        f"- `{s.admin_token.name}`, key `{s.admin_token.key}`: the admin bearer token "
        f"(env `{cluster.token_env}`; at least 24 random characters)"
    ]
    if cluster.ledger:
        secrets.append(
            f"- `{s.postgres.name}`, key `{s.postgres.key}`: the PostgreSQL password "
            "(env `PGPASSWORD`; the ledger URL in the ConfigMap carries none)"
        )
    secrets.append(f"- `{s.mlflow}` (optional), keys `username`, `password`: MLflow credentials")
    secrets.append(
        f"- `{s.storage}` (optional), keys `AWS_ACCESS_KEY_ID`, "
        "`AWS_SECRET_ACCESS_KEY`: the registry's artifact store"
    )
    journal = ""
    if cluster.journaled:
        journal = f"""
## The journal and the shipper

Each pod acknowledges a decision once it is in its journal (`emptyDir`, at most
{k8s.journal_size_limit}) and the `shipper` sidecar (`fraudgate ledger ship`, the ledger's
`shipper: external` mode) moves it into PostgreSQL. The shipper is a native sidecar (an init
container with `restartPolicy: Always`, Kubernetes >= 1.29): it starts before the server and is
stopped after it, so a rolling update or a drain ships the last decisions before the volume goes.
A container restart keeps the `emptyDir`; losing the node before the shipper caught up loses
what it had not shipped (the server turns unready past `ledger.max_lag_s`). For durability
against a node loss use `ledger.acknowledge: commit` (no journal, no sidecar).
"""
    return f"""# fraudgate on Kubernetes (native)

`fraudgate serve` as a `Deployment` of {k8s.replicas} replicas (autoscaled up to
{k8s.max_replicas} on CPU) in namespace `{k8s.namespace}`, sharing one ledger, behind the
`Service` `fraudgate` (HTTP and gRPC). Pods run as uid 10001 with a read-only root filesystem,
no privilege escalation and no capabilities; the readiness probe is `/v2/health/ready`, the
liveness probe `/v2/health/live`; the config is the `ConfigMap` `fraudgate-config`.

## Create these Secrets first (names and keys only: no value is in these files)

{chr(10).join(secrets)}
{journal}
## Network

The `NetworkPolicy` admits the Istio ingress gateway (namespace `{k8s.ingress_namespace}`), the
namespace's own pods and, on the HTTP port (`/metrics`), namespace `{k8s.monitoring_namespace}`.
Outbound traffic (PostgreSQL, MLflow, the artifact store, DNS) is not restricted: add an egress
policy with your cluster's addresses.

{_layout()}"""


def seldon_readme(
    config: FraudgateConfig, k8s: KubernetesConfig, models: list[str], mirror_model: str | None
) -> str:
    mirror = ""
    if mirror_model is not None:
        mirror = (
            f"- **Shadow**: fraudgate scores every mirrored request with the arm that did not "
            f"answer. A Seldon mirror is one fixed model that may not be a candidate, so "
            f"`{mirror_model}` (the challenger's files) shadows the experiment: the champion's "
            "share gets paired challenger scores, the challenger's share is scored twice by it "
            "and never by the champion.\n"
        )
    return f"""# fraudgate's models on Seldon Core v2

The Seldon Core v2 layout with the operator cluster-wide in `seldon-system`: the `ServerConfig`
`fraudgate-mlserver` there; in namespace `{k8s.namespace}` the `Server` using it, the Models
{", ".join(f"`{m}`" for m in models)} (MLServer's MLflow runtime), the Experiment, an Istio
`Gateway` and `VirtualService` to `seldon-mesh`, a `NetworkPolicy` and the model servers' RBAC.

## Before applying

- Seldon Core v2 installed cluster-wide (operator in `seldon-system`) and a `SeldonRuntime` in
  `{k8s.namespace}` (it runs `seldon-mesh` and the scheduler there).
- Istio with its ingress gateway in `{k8s.ingress_namespace}` (pods labelled
  `istio: ingressgateway`).
- The Secret `{k8s.secrets.storage}` in `{k8s.namespace}`: the rclone config that reads the model
  storage (the Models' `secretName`; the model servers may read that Secret only).

Clients keep the seed's calls: `/v2/models/fraud-v1-baseline/infer` goes through the experiment
(its default model), `/v2/models/<experiment>/infer` too; gRPC clients set the `seldon-model`
metadata themselves.

## What differs from fraudgate

{_routing_note(config)}{mirror}{_NO_LEDGER}

{_layout()}"""


def kserve_readme(config: FraudgateConfig, k8s: KubernetesConfig) -> str:
    spec = config.experiment_spec
    rollout = ""
    extra: list[str] = []
    if spec is not None:
        extra = [
            "- `overlays/<env>/stable/`: the environment with the experiment at its default model;",
            "  `overlays/<env>/` adds `components/canary/` (the challenger at its weight).",
        ]
        default = spec.default or spec.candidate_names[0]
        rollout = f"""
## Rolling out the split: two steps

KServe splits traffic between two revisions of one InferenceService: the last one rolled out at
100% and the latest, which gets `canaryTrafficPercent`. The manifests cannot name "the previous
revision", so the experiment's InferenceService `{spec.name}` is rolled out in two steps:

```bash
kubectl apply -k overlays/prod/stable     # 1. {spec.name} serves {default} at 100%
kubectl wait --for=condition=Ready inferenceservice/{spec.name} -n {k8s.namespace}
kubectl apply -k overlays/prod            # 2. the challenger as its canary, at its weight
```
"""
    return f"""# fraudgate's models on KServe

One `InferenceService` per model in namespace `{k8s.namespace}`, each on the V2 (Open Inference)
protocol with KServe's MLflow runtime (MLServer), so the seed's clients call
`/v2/models/<model>/infer` on each service's host. Storage credentials: the Secret
`{k8s.secrets.storage}` (keys `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and KServe's
`serving.kserve.io/s3-endpoint` annotation for MinIO), listed by the service account
`fraudgate-kserve`.
{rollout}
## What KServe cannot do

- **No mirror (shadow)**: KServe has no traffic mirroring, so this export has no shadow: the
  challenger scores only its own share and the paired comparison (both models on the same
  transactions) is lost. To keep the shadow, serve with fraudgate itself (the `native` target:
  the shipper scores the mirrored copies with the other model, off the request path), or judge on
  the split alone (`analysis.design: split`), which needs far more frauds to decide.
{_routing_note(config)}- **No decision ledger**: KServe records no decisions for `fraudgate report`.
- **Canary is per revision**: the split is between revisions of one InferenceService, so it is
  rolled out in two steps (above), and `kubectl apply` of a changed weight moves the canary, not
  the stable revision.

{_layout(*extra)}"""
