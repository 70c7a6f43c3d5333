"""``riskstream backtest``: forecast one-day VaR/ES over a price history and back-test the forecasts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from ..errors import InsufficientHistoryError, InvalidFieldError
from ..marketdata import load_price_series, simple_returns
from ..risk._backtest import BacktestResult
from ..risk._forecast import FORECAST_MODELS, run_backtest
from ._app import app
from ._common import out_console, print_json, stage_progress

_ZONE_STYLE = {"green": "bold green", "yellow": "bold yellow", "red": "bold red"}


def _date(text: str | None, field: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        return pd.Timestamp(text)
    except ValueError:
        raise InvalidFieldError(field, text, "not a date (use YYYY-MM-DD)") from None


def _returns(series: str, start: str | None, end: str | None) -> pd.Series:
    prices = load_price_series(series)
    first, last = _date(start, "start"), _date(end, "end")
    prices = prices.loc[first:last]
    if len(prices) < 2:
        raise InsufficientHistoryError(
            f"series {series!r} has {len(prices)} price(s) between {start} and {end}"
        )
    returns = simple_returns(prices)
    assert isinstance(returns, pd.Series)
    return returns


def _pvalue(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _table(result: BacktestResult, series: str) -> Table:
    first, last = result.dates[0].strftime("%Y-%m-%d"), result.dates[-1].strftime("%Y-%m-%d")
    table = Table(
        title=f"{result.method} 1-day VaR {result.confidence:.1%} back-test — {series}, {first} to {last}",
        title_justify="left",
        show_header=True,
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    zone = result.traffic_light
    rows: list[tuple[str, str, str]] = [
        ("window", f"{result.window} d", "returns before each forecast day"),
        ("observations", f"{result.observations:,}", "forecast days"),
        ("exceptions", f"{result.exceptions}", f"expected {result.expected_exceptions:.1f}"),
        ("exception rate", f"{result.exception_rate:.2%}", f"target {1 - result.confidence:.2%}"),
        ("Kupiec POF p", _pvalue(result.kupiec_pvalue), f"LR {result.kupiec_lr:.2f} ~ χ²(1)"),
        (
            "Christoffersen ind. p",
            _pvalue(result.christoffersen_pvalue),
            f"LR {result.christoffersen_lr:.2f} ~ χ²(1)",
        ),
        (
            "conditional coverage p",
            _pvalue(result.conditional_coverage_pvalue),
            f"LR {result.conditional_coverage_lr:.2f} ~ χ²(2)",
        ),
        (
            "traffic light",
            f"[{_ZONE_STYLE[zone]}]{zone}[/]",
            f"{result.exceptions_last_250} exceptions in last {result.traffic_light_observations} d",
        ),
        ("plus factor", f"{result.plus_factor:.2f}", "BCBS 1996 Table 2"),
    ]
    if result.model_failures:
        rows.append(("failed refits", f"{result.model_failures}", "previous parameters reused"))
    for row in rows:
        table.add_row(*row)
    return table


@app.command("backtest")
def backtest_command(
    series: Annotated[
        str,
        typer.Option(help="Price series: sp500 | nasdaq | wti | vix, or a CSV file (date + adjusted close)."),
    ] = "sp500",
    method: Annotated[str, typer.Option(help=" | ".join(FORECAST_MODELS))] = "fhs",
    window: Annotated[int, typer.Option(help="Past returns each day's forecast uses (days).")] = 500,
    confidence: Annotated[float, typer.Option(help="VaR confidence level, e.g. 0.99.")] = 0.99,
    start: Annotated[str | None, typer.Option(help="First price date used (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last price date used (YYYY-MM-DD).")] = None,
    refit_every: Annotated[
        int | None, typer.Option("--refit-every", help="Days between GARCH refits (garch, fhs; default 20).")
    ] = None,
    dist: Annotated[
        str | None, typer.Option(help="GARCH innovations: normal | t | skewt (garch default t, fhs skewt).")
    ] = None,
    gjr: Annotated[
        bool | None, typer.Option("--gjr/--no-gjr", help="GJR asymmetry term (garch default off, fhs on).")
    ] = None,
    lam: Annotated[
        float | None, typer.Option(help="EWMA decay factor (ewma; default 0.94, RiskMetrics).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG chart of the back-test here.")] = None,
) -> None:
    """Back-test a one-day VaR model on a daily price history: Kupiec, Christoffersen, Basel traffic light.

    Simple daily returns of the adjusted close; VaR for day t uses only the WINDOW returns before t.
    An exception is a day whose return is below -VaR.
    """
    returns = _returns(series, start, end)
    given = {"refit_every": refit_every, "dist": dist, "asymmetric": gjr, "lam": lam}
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    with stage_progress(not as_json, f"{method} back-test") as stage:
        result = run_backtest(
            returns,
            method,
            window,
            confidence,
            progress=lambda done, total: stage(f"{done}/{total} days", done / total),
            **options,
        )
    if plot is not None:
        from ..web import plot_backtest  # matplotlib loads only when a chart is asked for

        plot_backtest(result, plot, series=series)
    if as_json:
        payload = {"series": series, **result.to_dict()}
        if plot is not None:
            payload["plot"] = str(plot)
        print_json(payload)
        return
    out_console.print(_table(result, series))
    if plot is not None:
        out_console.print(f"chart written to {plot}")
