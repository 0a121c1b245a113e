"""`fraudgate export`: deployment artefacts generated from the config (`fraudgate.deploy`).

* ``fraudgate export kubernetes --config FILE --target seldon|kserve|native --out DIR``:
  Kubernetes manifests (Seldon Core v2, KServe, fraudgate itself), laid out for kustomize.

* ``fraudgate export prometheus --config FILE --out DIR``: ``fraudgate.rules.yaml`` (a plain
  Prometheus rules file) and ``fraudgate-prometheusrule.yaml`` (the same rules as a
  ``PrometheusRule`` for the Prometheus Operator).
* ``fraudgate export grafana --config FILE --out DIR``: ``fraudgate-dashboard.json``.

The generators are imported inside the commands, so ``--help`` stays cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fraudgate.cli._common import console, fail

export_app = typer.Typer(
    no_args_is_help=True,
    help="Deployment artefacts from the config: Kubernetes manifests, alert rules, the dashboard.",
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="fraudgate YAML config (its monitoring: section).")
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")]

RULES_FILE = "fraudgate.rules.yaml"
PROMETHEUS_RULE_FILE = "fraudgate-prometheusrule.yaml"
DASHBOARD_FILE = "fraudgate-dashboard.json"


def _load(config: Path):  # -> FraudgateConfig
    from fraudgate.config import ConfigError, load_config

    try:
        return load_config(config, resolve_secrets=False)  # no secret is written out
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _directory(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--out: cannot create directory {str(out)!r}: {exc.strerror}") from None
    return out


@export_app.command("prometheus")
def prometheus(config: ConfigOption, out: OutOption) -> None:
    """Alerting rules: a plain rules file and the same rules as a PrometheusRule.

    Check them with `promtool check rules DIR/fraudgate.rules.yaml`; thresholds come from the
    config's monitoring.alerts section (documented defaults without one).
    """
    import yaml
    from rich.table import Table

    from fraudgate.deploy.prometheus import alert_rules, prometheus_rule, rules_file

    loaded = _load(config)
    directory = _directory(out)
    rules_path = directory / RULES_FILE
    rules_path.write_text(yaml.safe_dump(rules_file(loaded), sort_keys=False), encoding="utf-8")
    crd_path = directory / PROMETHEUS_RULE_FILE
    crd_path.write_text(yaml.safe_dump(prometheus_rule(loaded), sort_keys=False), encoding="utf-8")
    table = Table(title="Alerts")
    for column in ("alert", "severity", "for", "summary"):
        table.add_column(column)
    for rule in alert_rules(loaded):
        table.add_row(rule.name, rule.severity, rule.for_, rule.summary)
    console.print(table)
    console.print(f"rules file: {rules_path}")
    console.print(f"PrometheusRule: {crd_path}")


@export_app.command("grafana")
def grafana(config: ConfigOption, out: OutOption) -> None:
    """The Grafana dashboard (import it; it asks which Prometheus data source to use)."""
    from fraudgate.deploy.grafana import dashboard, panels

    loaded = _load(config)
    path = _directory(out) / DASHBOARD_FILE
    path.write_text(json.dumps(dashboard(loaded), indent=2) + "\n", encoding="utf-8")
    console.print(f"dashboard ({len(panels(loaded))} panels): {path}")


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
