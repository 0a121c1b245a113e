"""`fraudgate export kubernetes`: manifests for Seldon Core v2, KServe or fraudgate itself, laid
out for kustomize, from the same config file that runs fraudgate locally.

``export_plan(config, target)`` builds the objects (an `ExportPlan`: plain dicts, nothing
written); ``write_plan(plan, out)`` writes ``base/``, ``overlays/{dev,prod}/`` (and KServe's
``components/canary``) and ``README.md``. Modules: `objects` (records, shared pieces),
`incluster` (the pods' config file), `storage` (models' storage URIs), one module per target,
`readme`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fraudgate.config import FraudgateConfig
from fraudgate.config.kubernetes import KubernetesConfig
from fraudgate.deploy.kubernetes.objects import ExportError, ExportPlan, Kustomization, Manifest

TARGETS = ("seldon", "kserve", "native")

__all__ = [
    "TARGETS",
    "ExportError",
    "ExportPlan",
    "Kustomization",
    "Manifest",
    "export_plan",
    "write_plan",
]


def export_plan(config: FraudgateConfig, target: str) -> ExportPlan:
    """The manifests of ``target`` for ``config`` (raises `ExportError` naming the field)."""
    k8s = config.kubernetes or KubernetesConfig()
    if target == "native":
        from fraudgate.deploy.kubernetes.native import native_plan

        return native_plan(config, k8s)
    if target == "seldon":
        from fraudgate.deploy.kubernetes.seldon import seldon_plan

        return seldon_plan(config, k8s)
    if target == "kserve":
        from fraudgate.deploy.kubernetes.kserve import kserve_plan

        return kserve_plan(config, k8s)
    raise ExportError(f"--target: expected one of {list(TARGETS)}, received {target!r}")


def _dump(body: dict[str, Any]) -> str:
    """YAML with multi-line strings (the ConfigMap's config file) as readable ``|`` blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: plain manifests
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(body, Dumper=Dumper, sort_keys=False, width=100)


def write_plan(plan: ExportPlan, out: Path) -> list[Path]:
    """Write the plan under ``out`` (created; files of an earlier export are overwritten, others
    left alone); returns the files written."""
    out = Path(out)
    written: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for kustomization in plan.kustomizations:
        directory = out / kustomization.directory
        write(directory / "kustomization.yaml", _dump(kustomization.document()))
        for manifest in (*kustomization.manifests, *kustomization.patches):
            write(directory / manifest.file, _dump(manifest.body))
    write(out / "README.md", plan.readme)
    return written
