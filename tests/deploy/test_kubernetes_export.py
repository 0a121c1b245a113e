"""`fraudgate export kubernetes`: every object of every kustomize build is valid against the real
schemas (CRDs with pruning as an error, core kinds with kubernetes-validate strict), the seed
system's three invalid fields are rejected, and no secret value is ever written."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_export_config import ADMIN_TOKEN, STORAGE, export_config, write_config
from k8s_validation import Validator
from typer.testing import CliRunner

from fraudgate.cli import app
from fraudgate.config import ConfigError, load_config, parse_config
from fraudgate.deploy.kubernetes import TARGETS, ExportError, ExportPlan, export_plan
from fraudgate.deploy.kubernetes.incluster import CONFIG_FILE, JOURNAL_DIR
from fraudgate.deploy.kubernetes.native import (
    SERVE_ARGS,
    SHIP_ARGS,
    dashboard_manifest,
    prometheus_rule_manifest,
)
from fraudgate.deploy.kubernetes.objects import RUN_AS_USER

Build = Callable[[Path], list[dict[str, Any]]]
CHAMPION, CHALLENGER = "fraud-v1-baseline", "fraud-v2-candidate"
EXPERIMENT = "fraud-detection-ab-test"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ExportPlan]]:
    """Each target exported through the CLI, with the plan the CLI wrote."""
    root = tmp_path_factory.mktemp("export")
    config = write_config(root, export_config())
    out: dict[str, tuple[Path, ExportPlan]] = {}
    for target in TARGETS:
        directory = root / target
        result = CliRunner().invoke(
            app,
            [
                "export",
                "kubernetes",
                "--config",
                str(config),
                "--target",
                target,
                "--out",
                str(directory),
            ],
        )
        assert result.exit_code == 0, result.output
        out[target] = (directory, export_plan(load_config(config, resolve_secrets=False), target))
    return out


def _built(exported: dict[str, tuple[Path, ExportPlan]], build: Build, target: str, overlay: str):
    directory, _ = exported[target]
    return build(directory / overlay)


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


# -- validity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_of_every_build_is_valid(
    target: str,
    exported: dict[str, tuple[Path, ExportPlan]],
    kustomize_build: Build,
    validator: Validator,
) -> None:
    directory, plan = exported[target]
    on_disk = {
        str(p.parent.relative_to(directory))
        for p in directory.rglob("kustomization.yaml")
        if yaml.safe_load(p.read_text())["kind"] == "Kustomization"
    }
    assert on_disk == set(plan.overlay_directories())
    assert {"base", "overlays/dev", "overlays/prod"} <= on_disk
    problems: list[str] = []
    for overlay in sorted(on_disk):
        objects = kustomize_build(directory / overlay)
        # nothing the base lists is lost on the way through kustomize
        assert {(o["kind"], o["metadata"]["name"]) for o in objects} == {
            (m.kind, m.name) for m in plan.manifests
        }, overlay
        problems += [f"{overlay}: {p}" for obj in objects for p in validator.errors(obj)]
    assert problems == []


def test_the_seed_systems_three_invalid_fields_are_rejected(
    exported: dict[str, tuple[Path, ExportPlan]], kustomize_build: Build, validator: Validator
) -> None:
    objects = _built(exported, kustomize_build, "seldon", "overlays/prod")
    experiment, model, server_config = (
        _one(objects, "Experiment"),
        _one(objects, "Model", CHAMPION),
        _one(objects, "ServerConfig"),
    )
    for valid in (experiment, model, server_config):
        assert validator.errors(valid) == []

    seed_experiment = copy.deepcopy(experiment)
    seed_experiment["spec"]["mirror"]["percentage"] = seed_experiment["spec"]["mirror"].pop(
        "percent"
    )
    errors = validator.errors(seed_experiment)
    assert any("spec.mirror" in e and "'percentage' was unexpected" in e for e in errors), errors
    assert any("'percent' is a required property" in e for e in errors), errors

    seed_model = copy.deepcopy(model)
    seed_model["spec"]["serverConfig"] = "mlserver"
    errors = validator.errors(seed_model)
    assert any("spec" in e and "'serverConfig' was unexpected" in e for e in errors), errors

    seed_server_config = copy.deepcopy(server_config)
    seed_server_config["spec"]["replicas"] = 3
    errors = validator.errors(seed_server_config)
    assert any("spec" in e and "'replicas' was unexpected" in e for e in errors), errors


def test_the_validator_rejects_a_misspelt_core_field_and_an_unknown_kind(
    exported: dict[str, tuple[Path, ExportPlan]], kustomize_build: Build, validator: Validator
) -> None:
    deployment = _one(_built(exported, kustomize_build, "native", "overlays/prod"), "Deployment")
    typo = copy.deepcopy(deployment)
    security = typo["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readonlyRootFilesystem"] = security.pop("readOnlyRootFilesystem")
    assert any("readonlyRootFilesystem" in e for e in validator.errors(typo))
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["probes"] = {}
    assert any("'probes' was unexpected" in e for e in validator.errors(typo))
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert any("no schema" in e for e in validator.errors(unknown))
    bad_meta = copy.deepcopy(_one(_built(exported, kustomize_build, "seldon", "base"), "Server"))
    bad_meta["metadata"]["label"] = {"a": "b"}
    assert any(
        "metadata" in e and "'label' was unexpected" in e for e in validator.errors(bad_meta)
    )


def test_the_observability_merge_point_wraps_valid_objects(validator: Validator) -> None:
    k8s = load_k8s()
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "fraudgate", "labels": {"release": "prometheus"}},
        "spec": {
            "groups": [
                {
                    "name": "fraudgate",
                    "rules": [{"alert": "FraudgateDown", "expr": "up == 0", "for": "5m"}],
                }
            ]
        },
    }
    wrapped = prometheus_rule_manifest(rule, k8s).body
    assert wrapped["metadata"]["namespace"] == k8s.namespace
    assert wrapped["metadata"]["labels"]["release"] == "prometheus"
    assert validator.errors(wrapped) == []
    broken = copy.deepcopy(wrapped)
    broken["spec"]["groups"][0]["rules"][0]["severity"] = "page"  # belongs in labels
    assert validator.errors(broken) != []
    dashboard = dashboard_manifest({"title": "fraudgate", "panels": []}, k8s).body
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert validator.errors(dashboard) == []


def load_k8s():
    config = parse_config(export_config(), resolve_secrets=False)
    assert config.kubernetes is not None
    return config.kubernetes


# -- secrets ---------------------------------------------------------------------------------------


def test_no_secret_value_is_written_anywhere(
    exported: dict[str, tuple[Path, ExportPlan]], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "export",
            "kubernetes",
            "--config",
            str(write_config(tmp_path, export_config())),
            "--target",
            "native",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0 and ADMIN_TOKEN not in result.output
    assert "auth.token: not exported" in " ".join(result.output.split())
    for directory, _ in exported.values():
        files = [p for p in directory.rglob("*") if p.is_file()]
        assert files
        for path in files:
            assert ADMIN_TOKEN not in path.read_text(encoding="utf-8"), path
        assert not any(
            o["kind"] == "Secret"
            for p in files
            if p.suffix == ".yaml"
            for o in yaml.safe_load_all(p.read_text())
            if o
        )


def test_a_url_with_a_password_is_refused_without_showing_it() -> None:
    for field, overrides in (
        ("kubernetes.ledger_url", {"ledger_url": "postgresql://fraudgate:hunter22@db/fraudgate"}),
        ("kubernetes.registry", {"registry": "http://admin:hunter22@mlflow:5000"}),
    ):
        config = parse_config(export_config(**overrides), resolve_secrets=False)
        with pytest.raises(ExportError) as caught:
            export_plan(config, "native")
        assert str(caught.value).startswith(f"{field}: expected a URL without a password")
        assert "hunter22" not in str(caught.value)


def test_secrets_reach_the_pods_as_references_only(
    exported: dict[str, tuple[Path, ExportPlan]], kustomize_build: Build
) -> None:
    deployment = _one(_built(exported, kustomize_build, "native", "overlays/prod"), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    server, shipper = pod["containers"][0], pod["initContainers"][0]
    env = {e["name"]: e for e in server["env"]}
    assert env["FRAUDGATE_ADMIN_TOKEN"] == {
        "name": "FRAUDGATE_ADMIN_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "fraudgate-admin", "key": "token"}},
    }
    for container in (server, shipper):
        env = {e["name"]: e for e in container["env"]}
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "fraudgate-postgres",
            "key": "password",
        }
        for name in ("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["optional"]
    # the shipper never needs the admin token
    assert "FRAUDGATE_ADMIN_TOKEN" not in {e["name"] for e in shipper["env"]}


# -- native ----------------------------------------------------------------------------------------


def test_native_pods_are_hardened_probed_and_ship_their_journal(
    exported: dict[str, tuple[Path, ExportPlan]], kustomize_build: Build
) -> None:
    prod = _built(exported, kustomize_build, "native", "overlays/prod")
    deployment = _one(prod, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == RUN_AS_USER
    assert pod["automountServiceAccountToken"] is False
    server, shipper = pod["containers"][0], pod["initContainers"][0]
    for container in (server, shipper):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["runAsNonRoot"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert server["args"] == SERVE_ARGS
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # the shipper: a native sidecar on the same journal volume, fraudgate's own command
    assert shipper["restartPolicy"] == "Always"
    assert shipper["args"] == SHIP_ARGS == ["ledger", "ship", "--config", SERVE_ARGS[-1]]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["journal"]["emptyDir"]["sizeLimit"] == "2Gi"
    for container in (server, shipper):
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[JOURNAL_DIR] == "journal"
    assert deployment["spec"]["replicas"] == 3
    assert _one(prod, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 10
    assert _one(prod, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    service = _one(prod, "Service")
    assert [p["port"] for p in service["spec"]["ports"]] == [8080, 8081]
    policy = _one(prod, "NetworkPolicy")
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
        "podSelector": {"matchLabels": {"istio": "ingressgateway"}},
    } in sources
    dev = _built(exported, kustomize_build, "native", "overlays/dev")
    assert _one(dev, "Deployment")["spec"]["replicas"] == 1
    assert _one(dev, "Deployment")["metadata"]["labels"]["fraudgate.io/environment"] == "dev"


def test_the_configmap_is_the_local_config_made_for_the_cluster(
    exported: dict[str, tuple[Path, ExportPlan]],
    kustomize_build: Build,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory, _ = exported["native"]
    local = load_config(write_config(tmp_path, export_config()), resolve_secrets=False)
    config_map = _one(kustomize_build(directory / "overlays/prod"), "ConfigMap", "fraudgate-config")
    path = tmp_path / "in-cluster.yaml"
    path.write_text(config_map["data"][CONFIG_FILE], encoding="utf-8")
    monkeypatch.setenv("FRAUDGATE_ADMIN_TOKEN", "the-token-from-the-secret-0123")
    pods = load_config(path)  # what `fraudgate serve` in the pod reads
    assert pods.models == local.models
    assert pods.experiment_spec == local.experiment_spec
    assert pods.analysis == local.analysis
    assert pods.registry == "http://mlflow.mlflow.svc:5000"
    assert pods.server.host == "0.0.0.0"
    assert pods.auth.token == "the-token-from-the-secret-0123"
    assert pods.auth.token_env == "FRAUDGATE_ADMIN_TOKEN"
    ledger = pods.ledger_config
    assert ledger is not None and local.ledger_config is not None
    assert ledger.url == "postgresql+psycopg://fraudgate@postgres.db.svc:5432/fraudgate"
    assert (ledger.journal_dir, ledger.shipper, ledger.acknowledge) == (
        JOURNAL_DIR,
        "external",
        "journal",
    )
    assert ledger.weights_poll_s == local.ledger_config.weights_poll_s == 2.0


def test_the_sidecar_ships_with_the_pods_config_and_no_admin_token(
    exported: dict[str, tuple[Path, ExportPlan]],
    kustomize_build: Build,
    pg_schema_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shipper container runs `SHIP_ARGS` on the ConfigMap's file without the admin token in
    its environment (it has none): here against the real PostgreSQL, with a scratch journal."""
    directory, _ = exported["native"]
    config_map = _one(kustomize_build(directory / "overlays/prod"), "ConfigMap", "fraudgate-config")
    document = yaml.safe_load(config_map["data"][CONFIG_FILE])
    assert document["auth"] == {"token_env": "FRAUDGATE_ADMIN_TOKEN", "inference": False}
    document["ledger"]["url"] = pg_schema_url  # the cluster's PostgreSQL, played by ours
    document["ledger"]["journal_dir"] = str(tmp_path / "journal")
    path = write_config(tmp_path, document)
    monkeypatch.delenv("FRAUDGATE_ADMIN_TOKEN", raising=False)
    args = [arg if arg != SHIP_ARGS[-1] else str(path) for arg in SHIP_ARGS]
    result = CliRunner().invoke(app, [*args, "--once"])
    assert result.exit_code == 0, result.output
    assert "shipped 0 decisions" in " ".join(result.output.split())


def test_commit_acknowledgement_has_no_journal_and_no_shipper() -> None:
    document = export_config()
    document["ledger"]["acknowledge"] = "commit"
    plan = export_plan(parse_config(document, resolve_secrets=False), "native")
    deployment = next(m.body for m in plan.manifests if m.kind == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert "journal" not in {v["name"] for v in pod["volumes"]}


# -- seldon ----------------------------------------------------------------------------------------


def test_seldon_pattern_three_layout(
    exported: dict[str, tuple[Path, ExportPlan]], kustomize_build: Build
) -> None:
    objects = _built(exported, kustomize_build, "seldon", "overlays/prod")
    assert _one(objects, "ServerConfig")["metadata"]["namespace"] == "seldon-system"
    for obj in objects:
        if obj["kind"] not in ("ServerConfig", "Namespace"):
            assert obj["metadata"]["namespace"] == "fraudgate", obj["kind"]
    server = _one(objects, "Server")
    assert server["spec"]["serverConfig"] == _one(objects, "ServerConfig")["metadata"]["name"]
    shadow = f"{CHALLENGER}-shadow"
    for name, uri in (
        (CHAMPION, STORAGE[CHAMPION]),
        (CHALLENGER, STORAGE[CHALLENGER]),
        (shadow, STORAGE[CHALLENGER]),
    ):
        model = _one(objects, "Model", name)
        assert model["spec"]["storageUri"] == uri
        assert model["spec"]["requirements"] == ["mlflow"]
        assert model["spec"]["server"] == server["metadata"]["name"]
    assert _one(objects, "Experiment")["spec"] == {
        "default": CHAMPION,
        "candidates": [{"name": CHAMPION, "weight": 80}, {"name": CHALLENGER, "weight": 20}],
        "mirror": {"name": shadow, "percent": 100},
        "resourceType": "model",
    }
    service = _one(objects, "VirtualService")
    assert service["spec"]["gateways"] == [_one(objects, "Gateway")["metadata"]["name"]]
    routes = {r["name"]: r for r in service["spec"]["http"]}
    assert routes[EXPERIMENT]["headers"]["request"]["set"] == {
        "seldon-model": f"{EXPERIMENT}.experiment"
    }
    assert routes[CHAMPION]["headers"]["request"]["set"] == {"seldon-model": CHAMPION}
    for route in routes.values():
        assert route["route"][0]["destination"]["host"] == "seldon-mesh.fraudgate.svc.cluster.local"
    role = _one(objects, "Role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["fraudgate-storage"],
            "verbs": ["get"],
        }
    ]
    assert _one(objects, "RoleBinding")["roleRef"]["name"] == role["metadata"]["name"]
    policy = _one(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress"]
    dev = _built(exported, kustomize_build, "seldon", "overlays/dev")
    assert _one(dev, "Server")["spec"]["replicas"] == 1


# -- kserve ----------------------------------------------------------------------------------------


def test_kserve_inference_services_and_the_canary(
    exported: dict[str, tuple[Path, ExportPlan]], kustomize_build: Build
) -> None:
    directory, _ = exported["kserve"]
    stable = _built(exported, kustomize_build, "kserve", "overlays/prod/stable")
    canary = _built(exported, kustomize_build, "kserve", "overlays/prod")
    for name in (CHAMPION, CHALLENGER):
        predictor = _one(canary, "InferenceService", name)["spec"]["predictor"]
        assert predictor["model"]["protocolVersion"] == "v2"
        assert predictor["model"]["modelFormat"] == {"name": "mlflow"}
        assert predictor["model"]["storageUri"] == STORAGE[name]
        assert "canaryTrafficPercent" not in predictor
    before = _one(stable, "InferenceService", EXPERIMENT)["spec"]["predictor"]
    assert before["model"]["storageUri"] == STORAGE[CHAMPION]
    assert "canaryTrafficPercent" not in before
    after = _one(canary, "InferenceService", EXPERIMENT)["spec"]["predictor"]
    assert after["model"]["storageUri"] == STORAGE[CHALLENGER]
    assert after["canaryTrafficPercent"] == 20
    assert after["model"]["protocolVersion"] == "v2"  # the patch kept the rest
    readme = (directory / "README.md").read_text()
    assert "## What KServe cannot do" in readme
    assert "No mirror (shadow)" in readme and "native" in readme
    assert "kubectl apply -k overlays/prod/stable" in readme


# -- configuration errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"replicas": 0},
            "kubernetes.replicas: expected an integer between 1 and 1000, received 0",
        ),
        ({"replica": 2}, "kubernetes.replica: unknown key; expected one of"),
        ({"namespace": "Fraud_Gate"}, "kubernetes.namespace: expected a Kubernetes DNS-1123 label"),
        (
            {"resources": {"limits": {"memory": "lots"}}},
            "kubernetes.resources.limits.memory: expected a Kubernetes quantity (e.g. 250m, 1, "
            "512Mi, 2Gi), received 'lots'",
        ),
        (
            {"replicas": 5, "max_replicas": 2},
            "kubernetes.max_replicas: expected at least kubernetes.replicas (5), received 2",
        ),
        (
            {"storage_uris": {"fraud-v3": "s3://x"}},
            "kubernetes.storage_uris.fraud-v3: expected one of the models[].name",
        ),
        (
            {"storage_uris": {CHAMPION: "/home/me/model"}},
            f"kubernetes.storage_uris.{CHAMPION}: expected an object-store URI",
        ),
        (
            {"ledger_url": "sqlite:///ledger.db"},
            "kubernetes.ledger_url: expected a postgresql:// URL, received 'sqlite:///ledger.db'",
        ),
        (
            {"secrets": {"admin_token": {"key": "a key"}}},
            "kubernetes.secrets.admin_token.key: expected a Secret key",
        ),
        ({"image_pull_policy": "Sometimes"}, "kubernetes.image_pull_policy: expected one of"),
        ({"seldon": {"mirror_model": "Shadow"}}, "kubernetes.seldon.mirror_model: expected a"),
    ],
)
def test_the_kubernetes_section_names_field_expected_and_received(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(export_config(**section), resolve_secrets=False)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_local_registry_or_ledger_is_refused_for_the_cluster(tmp_path: Path) -> None:
    document = export_config()
    del document["kubernetes"]["registry"]
    runner = CliRunner()
    args = [
        "export",
        "kubernetes",
        "--config",
        str(write_config(tmp_path, document)),
        "--target",
        "native",
        "--out",
        str(tmp_path / "out"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "registry: expected an MLflow tracking URI the cluster can reach" in result.output
    assert not (tmp_path / "out").exists()
    document = export_config()
    del document["kubernetes"]["ledger_url"]
    with pytest.raises(ExportError, match=r"^ledger\.url: expected a postgresql:// URL"):
        export_plan(parse_config(document, resolve_secrets=False), "native")
    result = runner.invoke(app, [*args[:4], "--target", "docker", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--target: expected one of" in result.output


def test_storage_uris_come_from_the_registrys_artifact_location(trained_registry) -> None:
    """The session's real MLflow registry, with a registered model of this test's own (the
    session's ``fraud-detection`` and its aliases stay untouched) whose versions point at S3
    and at a local path."""
    import mlflow

    uri, name = trained_registry.tracking_uri, "fraud-detection-export-test"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(name)
    remote = "s3://models/7/abc/artifacts/model"
    local = (trained_registry.root / "artifacts" / "model").as_uri()
    for source, alias in ((remote, "champion"), (local, "challenger")):
        version = client.create_model_version(name, source)
        client.set_registered_model_alias(name, alias, version.version)

    def document(storage_uris: dict[str, str]) -> dict[str, Any]:
        doc = export_config(storage_uris=storage_uris)
        doc["registry"] = uri
        for model, alias in zip(doc["models"], ("champion", "challenger"), strict=True):
            model["uri"] = f"models:/{name}@{alias}"
        return doc

    config = parse_config(document({CHALLENGER: STORAGE[CHALLENGER]}), resolve_secrets=False)
    plan = export_plan(config, "seldon")
    models = {m.name: m.body["spec"]["storageUri"] for m in plan.manifests if m.kind == "Model"}
    assert models[CHAMPION] == remote  # from the registry
    assert models[CHALLENGER] == STORAGE[CHALLENGER]  # from the config
    with pytest.raises(ExportError) as caught:
        export_plan(parse_config(document({}), resolve_secrets=False), "kserve")
    message = str(caught.value)
    assert message.startswith(f"kubernetes.storage_uris.{CHALLENGER}: expected an object-store")
    assert local in message


@pytest.mark.parametrize("target", TARGETS)
def test_the_example_config_exports_valid_objects(target: str, validator: Validator) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "kubernetes.yaml"
    plan = export_plan(load_config(example, resolve_secrets=False), target)
    assert plan.manifests
    assert [e for m in plan.manifests for e in validator.errors(m.body)] == []
