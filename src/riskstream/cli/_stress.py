"""``riskstream stress``: full revaluation under a named or user-defined stress scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..engine import run_stress
from ..scenarios import stress_library
from ._app import app
from ._common import load, money, out_console, print_json, show_rejected, stage_progress
from ._var import _levels


@app.command("stress")
def stress_command(
    portfolio: Annotated[Path, typer.Option("--portfolio", help="Portfolio directory.")],
    scenario: Annotated[
        str,
        typer.Option(
            help="Built-in name ("
            + ", ".join(stress_library())
            + ", worst-10d) or a file of factor shifts (CSV factor,shift[,type]; JSON; YAML)."
        ),
    ],
    by: Annotated[str, typer.Option(help="Hierarchy levels below the firm.")] = "desk,book,trader",
    top: Annotated[int, typer.Option(help="Worst positions shown per node.")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stress P&L per node (negative = loss) under one scenario, with the worst positions."""
    with stage_progress(not as_json, "stress") as progress:
        progress("loading portfolio", 0.0)
        loaded = load(portfolio)
        report = run_stress(
            loaded.portfolio, loaded.snapshot, loaded.history, scenario, _levels(by), top, progress
        )
    show_rejected(report.rejected)
    if as_json:
        print_json(report.to_dict())
        return
    title = f"stress {report.scenario}: {report.description}"
    if report.period:
        title += f" ({report.period})"
    table = Table(title=title + f" — P&L in {report.reporting_currency}", title_justify="left")
    table.add_column("node")
    table.add_column("P&L", justify="right")
    table.add_column("worst positions")
    for n in report.nodes:
        name = "  " * n.node.count("/") + n.node.rsplit("/", 1)[-1]
        table.add_row(name, money(n.pnl), ", ".join(f"{p} {money(v)}" for p, v in n.top_losers))
    out_console.print(table)
