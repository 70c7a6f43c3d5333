"""Static charts (PNG) for reports: the VaR back-test chart.

Drawn with matplotlib's object API on an Agg canvas, so no global backend or pyplot state is touched and the
module works in a server, a notebook or the CLI alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from ..errors import InvalidFieldError
from ..risk._backtest import BacktestResult

__all__ = ["plot_backtest"]

_RETURN_COLOR = "#7f8c9a"
_VAR_COLOR = "#1f4e9c"
_ES_COLOR = "#6a3d9a"
_EXCEPTION_COLOR = "#d62728"
_ZONE_COLORS = {"green": "#2ca02c", "yellow": "#d4a017", "red": "#d62728"}


def _title(result: BacktestResult, series: str | None) -> str:
    name = f"{series} — " if series else ""
    first, last = result.dates[0].strftime("%Y-%m-%d"), result.dates[-1].strftime("%Y-%m-%d")
    return (
        f"{name}{result.method} 1-day VaR {result.confidence:.1%}, window {result.window} d, {first} to {last}\n"
        f"exceptions {result.exceptions} (expected {result.expected_exceptions:.1f}) · "
        f"Kupiec p = {result.kupiec_pvalue:.3f} · Christoffersen p = {result.christoffersen_pvalue:.3f} · "
        f"CC p = {result.conditional_coverage_pvalue:.3f}"
    )


def plot_backtest(
    result: BacktestResult, path: str | Path, *, series: str | None = None, dpi: int = 120
) -> Path:
    """Draw a VaR back-test as a PNG: daily returns, the -VaR and -ES lines, exceptions in red.

    Parameters
    ----------
    result : BacktestResult
        Back-test to draw (returns and forecasts as fractions of value; VaR/ES positive losses, drawn negated
        so they sit under the returns they bound).
    path : str or Path
        Where to write the PNG; parent folders must exist.
    series : str, optional
        Name of the price series, shown in the title.
    dpi : int
        Resolution (dots per inch) of the 12 x 5.5 inch figure.

    Returns
    -------
    Path
        The file written.
    """
    out = Path(path)
    if not out.parent.is_dir():
        raise InvalidFieldError("plot", str(out), "folder does not exist")
    fig = Figure(figsize=(12, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    dates = result.dates.to_numpy()
    flags = result.exception_flags
    ax.vlines(dates, 0.0, result.returns, color=_RETURN_COLOR, linewidth=0.6, alpha=0.8, label="daily return")
    ax.plot(dates, -result.var, color=_VAR_COLOR, linewidth=1.0, label=f"−VaR {result.confidence:.1%}")
    if np.isfinite(result.es).any():
        ax.plot(dates, -result.es, color=_ES_COLOR, linewidth=0.9, linestyle="--", label="−ES")
    ax.scatter(
        dates[flags],
        result.returns[flags],
        s=14,
        color=_EXCEPTION_COLOR,
        zorder=3,
        label=f"exception ({result.exceptions})",
    )
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("daily return")
    ax.set_xlim(dates[0], dates[-1])
    ax.grid(True, axis="y", linewidth=0.3, alpha=0.6)
    ax.set_title(_title(result, series), fontsize=10, loc="left")
    zone = result.traffic_light
    ax.text(
        0.995,
        0.03,
        f"Basel zone (last {result.traffic_light_observations} d): {zone.upper()}, "
        f"{result.exceptions_last_250} exceptions, plus factor {result.plus_factor:.2f}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=9,
        color="white",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": _ZONE_COLORS[zone], "edgecolor": "none"},
    )
    ax.legend(loc="upper left", fontsize=8, ncol=4, frameon=False)
    fig.savefig(out, dpi=dpi)
    return out
