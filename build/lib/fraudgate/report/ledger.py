"""Terminal rendering for `fraudgate ledger ship|quarantine`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.table import Table


class QuarantinedLine(Protocol):
    """A journal line the store refused (`fraudgate.ledger.quarantine.QuarantinedLine`)."""

    @property
    def segment(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def number(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def at(self) -> float: ...


def render_quarantine(directory: Path, found: Sequence[QuarantinedLine], console: Console) -> None:
    """One row per quarantined line (file, line, rows, reason, UTC time), then the totals."""
    table = Table(title=f"quarantined journal lines in {directory}")
    table.add_column("file", overflow="fold")
    table.add_column("line", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("reason", overflow="fold")
    table.add_column("time", no_wrap=True)
    for record in found:
        assert record.path is not None
        when = datetime.fromtimestamp(record.at, UTC).isoformat(timespec="seconds")
        table.add_row(
            str(record.path.relative_to(directory)),
            str(record.number),
            str(record.rows),
            record.reason,
            when.replace("+00:00", "Z"),
        )
    console.print(table)
    console.print(f"{len(found)} lines, {sum(r.rows for r in found)} decisions in quarantine")


def render_reship(
    shipped_lines: int, shipped_rows: int, kept: Sequence[QuarantinedLine], console: Console
) -> None:
    console.print(
        f"re-shipped {shipped_lines} lines ({shipped_rows} decisions); "
        f"{len(kept)} lines stay in quarantine"
    )
    for record in kept[:20]:
        console.print(f"  {record.segment} byte {record.offset}: {record.reason}", highlight=False)
