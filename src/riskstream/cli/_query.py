"""``riskstream query``: run a report (pivot, diff, drill, hierarchy; optionally as of a version or time)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigurationError
from ..query import close_query_session, load_report, run_report
from ..query._report import parse_as_of
from ._app import app
from ._common import err_console, out_console


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


@app.command("query")
def query_command(
    report_file: Annotated[Path, typer.Argument(help="Report definition (.json, .yaml or .yml).")],
    store_dir: Annotated[Path, typer.Option("--store", help="Store root directory.")] = Path(
        ".riskstream/store"
    ),
    user: Annotated[str, typer.Option("--user", help="User whose entitlements apply.")] = "",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Table version (integer) or timestamp (ISO, UTC if naive).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Run a report with the user's row filter and column masks; the query is audited."""
    from .. import store as store_package

    report = load_report(report_file)
    if not user:
        raise ConfigurationError("--user", user, "name the user whose entitlements apply")
    when = parse_as_of(as_of, "--as-of")
    store = store_package.RiskStore.open(store_dir)
    try:
        result = run_report(store, report, user, as_of=when)
    finally:
        close_query_session(store)  # writes the run's audit record before the process ends
        store.close()
    if as_json:
        typer.echo(result.to_json())
        return
    title = f"{report.name} ({report.kind}) — {result.business_date or ''} · version {result.version} · {result.route}"
    table = Table(title=title, title_justify="left")
    frame = result.to_arrow()
    for name in frame.column_names:
        numeric = frame.schema.field(name).type in ("double", "int64")
        table.add_column(name, justify="right" if numeric else "left")
    for row in frame.to_pylist():
        table.add_row(*(_cell(v) for v in row.values()))
    out_console.print(table)
    err_console.print(f"[dim]{frame.num_rows} row(s) for {user}; VaR/ES are positive losses[/]")
