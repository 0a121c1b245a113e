"""Terminal rendering for `fraudgate export kubernetes`: what was written, and what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.table import Table


class ExportedObject(Protocol):
    """One object of an export (`fraudgate.deploy.kubernetes.Manifest`)."""

    @property
    def file(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...


def render_export(
    target: str,
    out: Path,
    objects: Sequence[ExportedObject],
    directories: Sequence[str],
    notes: Sequence[str],
    console: Console,
) -> None:
    """One row per object of the base (kind, name, file), then the builds and the notes."""
    table = Table(title=f"{target}: {len(objects)} objects in {out / 'base'}")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("file", overflow="fold")
    for obj in objects:
        table.add_row(obj.kind, obj.name, obj.file)
    console.print(table)
    builds = ", ".join(directories)
    console.print(f"kustomize: {builds} (build one with `kubectl kustomize {out}/overlays/prod`)")
    console.print(f"read {out / 'README.md'} before applying")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
