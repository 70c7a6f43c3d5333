"""``riskstream store``: tiering, retention (vacuum) and table history of a risk store."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigurationError
from ._app import app
from ._common import out_console, print_json

store_app = typer.Typer(help="Risk store maintenance: tiers, retention, history.", no_args_is_help=True)
app.add_typer(store_app, name="store")

StoreOpt = Annotated[Path, typer.Option("--store", help="Store root directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TodayOpt = Annotated[str | None, typer.Option("--today", help="Reference date YYYY-MM-DD (default today).")]


def _open(root: Path) -> Any:
    from ..store import RiskStore

    return RiskStore.open(root)


def _today(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigurationError("today", text, "use YYYY-MM-DD") from None


@store_app.command("tier")
def tier_command(store: StoreOpt, today: TodayOpt = None, as_json: JsonOpt = False) -> None:
    """Move risk_results partitions older than hot_days business days to the cold tier."""
    r = _open(store).tier(_today(today))
    doc = {"moved": [d.isoformat() for d in r.moved], "rows": r.rows, "cutoff": r.cutoff.isoformat()}
    if as_json:
        print_json(doc)
    else:
        typer.echo(f"{len(r.moved)} date(s) moved to the cold tier ({r.rows:,} rows); hot from {r.cutoff}")


@store_app.command("vacuum")
def vacuum_command(
    store: StoreOpt,
    today: TodayOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    retention_hours: Annotated[
        int | None, typer.Option("--retention-hours", help="Keep unreferenced files this long.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete partitions past retention_years, then data files no longer referenced."""
    r = _open(store).vacuum(_today(today), dry_run=dry_run, retention_hours=retention_hours)
    doc = {
        "expired": [d.isoformat() for d in r.expired],
        "files": list(r.files),
        "dry_run": r.dry_run,
        "cutoff": r.cutoff.isoformat(),
    }
    if as_json:
        print_json(doc)
    else:
        verb = "would remove" if dry_run else "removed"
        typer.echo(f"{verb} {len(r.expired)} expired date(s) (before {r.cutoff}) and {len(r.files)} file(s)")


@store_app.command("history")
def history_command(
    store: StoreOpt,
    table: Annotated[
        str, typer.Option(help="risk_results, market_history, live_snapshots or a preagg")
    ] = "risk_results",
    limit: Annotated[int | None, typer.Option(help="Newest N versions.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Versions of a table: timestamp, operation, job id, rows added."""
    rows = _open(store).history(table, limit=limit)
    if as_json:
        print_json(rows)
        return
    t = Table(title=f"{table} history", title_justify="left")
    for col in ("version", "timestamp", "operation", "job id", "rows added"):
        t.add_column(col)
    for h in rows:
        t.add_row(
            str(h["version"]),
            h["timestamp"].isoformat(timespec="seconds"),
            str(h["operation"]),
            h["job_id"] or "",
            "" if h["rows_added"] is None else f"{h['rows_added']:,}",
        )
    out_console.print(t)
