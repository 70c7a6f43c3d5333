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


@store_app.command("demo")
def demo_command(
    store: StoreOpt,
    portfolio: Annotated[Path, typer.Option("--portfolio", help="Portfolio directory (sample-portfolio).")],
    days: Annotated[int, typer.Option(help="Business days of EOD results, ending today.")] = 2,
    window: Annotated[int, typer.Option(help="Historical scenarios per P&L vector.")] = 250,
    chunks: Annotated[int, typer.Option(help="Chunks per job.")] = 4,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fill a store for trying reports: demo users and roles, market history, and EOD jobs for the last days.

    Day ``k`` before today is priced on the portfolio's market ``k`` history days before its valuation date, so a
    day-over-day diff shows real moves. The demo users (``trader_<desk>``, ``head_trading``, ``middle_office``,
    ``pb_junior``) are printed at the end.
    """
    import numpy as np
    import pyarrow as pa

    from ..domain import MarketSnapshot
    from ..refdata import LoadedPortfolio, load_portfolio
    from ..store import RiskStore, sample_results, seed_demo
    from ._common import stage_progress

    if days < 1:
        raise ConfigurationError("days", days, "must be at least 1")
    loaded = load_portfolio(portfolio)
    pos = loaded.portfolio.positions
    books = dict(zip(pos.attribute("book").tolist(), pos.attribute("desk").tolist(), strict=True))
    rs = RiskStore.open(store)
    if rs.catalog is None:
        raise ConfigurationError("store", str(store), "the store has no catalog to hold the demo users")
    users = seed_demo(rs.catalog, books)
    today = np.datetime64(date.today(), "D")
    dates = [np.busday_offset(today, -k, roll="backward").astype(object) for k in range(days)][::-1]
    with stage_progress(not quiet, "demo store") as progress:
        rs.write_market_history(loaded.history)
        for i, business_date in enumerate(dates):
            lag = days - 1 - i  # the last date gets the valuation-date market
            progress(f"EOD {business_date}", i / days)
            history = loaded.history.iloc[: len(loaded.history) - lag]
            values: dict[str, float] = dict(loaded.snapshot.values)
            values.update({str(k): float(v) for k, v in history.iloc[-1].dropna().items()})
            market = MarketSnapshot(loaded.snapshot.as_of, values, loaded.snapshot.reporting_currency)
            day = LoadedPortfolio(loaded.portfolio, market, history, loaded.directory)
            table: pa.Table = sample_results(day, business_date, window=window)
            job = rs.open_job("EOD", business_date, expected_chunks=chunks)
            step = -(-table.num_rows // chunks)
            for c in range(chunks):
                rs.put_chunk(job, table.slice(c * step, step), chunk_id=f"chunk-{c:03d}")
            rs.commit(job)
    typer.echo(f"store {store}: EOD results for {', '.join(str(d) for d in dates)}; demo users:")
    for user, what in users.items():
        typer.echo(f"  {user:<16} {what}")
