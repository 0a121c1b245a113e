"""Terminal rendering of the online outcomes `fraudgate demo` reads back from the ledger."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def render_online(rows: list[dict[str, Any]], console: Console) -> None:
    """Decisions joined with labels per model and role, with 95% intervals."""
    table = Table(
        title="Online: ledger decisions joined with the labels that arrived "
        "(served = answered the caller, mirror = scored in shadow)",
        title_justify="left",
    )
    table.add_column("model (role)", no_wrap=True)
    for column in ("decisions", "labelled", "TP", "FP", "FN"):
        table.add_column(column, justify="right")
    table.add_column("precision (95% CI)", justify="right", no_wrap=True)
    table.add_column("recall (95% CI)", justify="right", no_wrap=True)

    def fmt(interval: dict[str, Any]) -> str:
        if interval["estimate"] != interval["estimate"]:  # nan: nothing to estimate yet
            return "-"
        return f"{interval['estimate']:.2f} ({interval['low']:.2f}-{interval['high']:.2f})"

    for row in rows:
        table.add_row(
            f"{row['model']} ({row['role']})",
            f"{row['decisions']:,}",
            f"{row['labelled']:,}",
            str(row["tp"]),
            str(row["fp"]),
            str(row["fn"]),
            fmt(row["precision"]),
            fmt(row["recall"]),
        )
    console.print(table)
