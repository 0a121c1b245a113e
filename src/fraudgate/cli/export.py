"""`fraudgate export kubernetes`: Kubernetes manifests (Seldon Core v2, KServe, fraudgate itself)
from the same config file that runs fraudgate locally, laid out for kustomize.

The generators (`fraudgate.deploy.kubernetes`) are imported inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudgate.cli._common import console, fail

export_app = typer.Typer(
    no_args_is_help=True,
    help="Deployment artefacts from the config: Kubernetes manifests.",
)


@export_app.command("kubernetes")
def kubernetes(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="fraudgate YAML config (models, experiment, ledger, kubernetes)."
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help="seldon (Seldon Core v2), kserve (InferenceServices) or native (fraudgate).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write (created).")],
) -> None:
    """Write base/ and overlays/{dev,prod}/ for kustomize, and a README.

    The README says what to create first (Secrets, by name: no secret value is ever written)
    and what the target does differently. What only a cluster needs (namespace, image, replicas,
    resources, storage URIs, Secret names) comes from the config's `kubernetes:` section.
    """
    from fraudgate.config import ConfigError, load_config
    from fraudgate.deploy.kubernetes import TARGETS, ExportError, export_plan, write_plan
    from fraudgate.report.export import render_export

    if target not in TARGETS:
        raise fail(f"--target: expected one of {list(TARGETS)}, received {target!r}")
    try:
        loaded = load_config(config, resolve_secrets=False)
        plan = export_plan(loaded, target)
    except (ConfigError, ExportError) as exc:
        raise fail(str(exc)) from None
    try:
        write_plan(plan, out)
    except OSError as exc:
        raise fail(f"--out: cannot write {str(out)!r}: {exc}") from None
    base = next(k for k in plan.kustomizations if k.directory == "base")
    render_export(target, out, base.manifests, plan.overlay_directories(), plan.notes, console)
