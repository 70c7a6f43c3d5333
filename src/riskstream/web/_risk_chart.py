"""PNG chart of a risk run: the firm's scenario P&L distribution with VaR and ES marked, and VaR/ES by node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..engine import RiskReport
from ..errors import ConfigurationError

__all__ = ["plot_risk_report"]

_BAR = "#7f8c9a"
_VAR = "#1f4e9c"
_ES = "#d62728"


def _scaled(x: np.ndarray | float) -> tuple[float, str]:
    top = float(np.max(np.abs(x))) if np.size(x) else 0.0
    for size, unit in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if top >= size:
            return size, unit
    return 1.0, ""


def plot_risk_report(
    report: RiskReport, path: str | Path, *, level: str | None = None, dpi: int = 120
) -> Path:
    """Draw the firm's P&L histogram (VaR and ES as vertical lines) beside VaR and ES of the nodes of one level.

    Parameters
    ----------
    report
        A scenario-method run made with ``keep_pnl=True`` (the node P&L vectors are drawn).
    path
        PNG file to write; parent folders must exist.
    level
        Level whose nodes are compared on the right (default: the first level below the firm).
    """
    if report.node_pnl is None:
        raise ConfigurationError("report", "without P&L vectors", "run with keep_pnl=True (scenario methods)")
    r = report.request
    firm = report.nodes[0]
    pnl = report.node_pnl[0]
    level = level or (r.levels[0] if r.levels else "firm")
    nodes = [n for n in report.nodes if n.level == level] or [firm]
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])

    size, unit = _scaled(pnl)
    left.hist(pnl / size, bins=60, color=_BAR, alpha=0.85)
    left.axvline(-firm.var / size, color=_VAR, lw=2, label=f"VaR {firm.var / size:,.2f}{unit}")
    left.axvline(-firm.es / size, color=_ES, lw=2, ls="--", label=f"ES {firm.es / size:,.2f}{unit}")
    left.set_xlabel(f"scenario P&L ({report.reporting_currency}{' ' + unit if unit else ''}; gain > 0)")
    left.set_ylabel("scenarios")
    left.set_title(
        f"FIRM — {r.method.upper()} {report.n_scenarios:,} scenarios, {r.var_name} / {r.es_name}, as of {report.as_of}"
    )
    left.legend(loc="upper left", frameon=False)

    names = [n.node.rsplit("/", 1)[-1] for n in nodes]
    var = np.array([n.var for n in nodes])
    es = np.array([n.es for n in nodes])
    size, unit = _scaled(np.r_[var, es])
    y = np.arange(len(nodes))
    right.barh(y - 0.2, var / size, height=0.4, color=_VAR, label="VaR")
    right.barh(y + 0.2, es / size, height=0.4, color=_ES, label="ES")
    right.set_yticks(y, names)
    right.invert_yaxis()
    right.set_xlabel(f"{report.reporting_currency}{' ' + unit if unit else ''} (positive loss)")
    diversification = firm.es / es.sum() if es.sum() > 0 and len(nodes) > 1 else 1.0
    right.set_title(f"by {level}: firm ES is {diversification:.0%} of the sum (diversification)")
    right.legend(loc="best", frameon=True)

    out = Path(path)
    fig.savefig(out, dpi=dpi)
    return out
