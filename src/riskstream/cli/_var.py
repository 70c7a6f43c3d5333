"""``riskstream var``: VaR and ES per node with top contributors; ``riskstream frtb``: liquidity-adjusted ES."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..engine import RiskRequest, run_frtb_es, run_risk
from ..errors import ConfigurationError
from ._app import app
from ._common import err_console, load, money, out_console, print_json, show_rejected, stage_progress


def _levels(by: str) -> tuple[str, ...]:
    levels = tuple(x.strip() for x in by.split(",") if x.strip())
    if not levels:
        raise ConfigurationError("by", by, "name at least one level, e.g. desk,book")
    return levels


@app.command("var")
def var_command(
    portfolio: Annotated[
        Path, typer.Option("--portfolio", help="Portfolio directory (see sample-portfolio).")
    ],
    method: Annotated[str, typer.Option(help="hs | fhs | parametric | mc")] = "hs",
    confidence: Annotated[float, typer.Option(help="Confidence α of VaR and ES.")] = 0.99,
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="P&L horizon in business days.")] = 1,
    horizon_rule: Annotated[
        str | None, typer.Option("--horizon-rule", help="overlapping | sqrt_time (default per method)")
    ] = None,
    by: Annotated[
        str, typer.Option(help="Hierarchy levels below the firm, comma-separated.")
    ] = "desk,book,trader",
    window: Annotated[int, typer.Option(help="History window in days.")] = 500,
    top: Annotated[int, typer.Option(help="Top contributors per node.")] = 5,
    paths: Annotated[int, typer.Option(help="Monte Carlo paths (mc).")] = 10_000,
    distribution: Annotated[str, typer.Option(help="normal | t (mc).")] = "normal",
    dof: Annotated[float, typer.Option(help="Student-t degrees of freedom (mc --distribution t).")] = 5.0,
    covariance: Annotated[
        str, typer.Option(help="sample | ewma covariance of shocks (mc, parametric).")
    ] = "sample",
    antithetic: Annotated[
        bool, typer.Option("--antithetic/--no-antithetic", help="Antithetic paths (mc).")
    ] = True,
    rule: Annotated[
        str,
        typer.Option(help="VaR quantile rule: empirical (inverse ECDF) | linear | k_plus_1 (hs, fhs, mc)."),
    ] = "empirical",
    parametric: Annotated[
        str, typer.Option(help="delta_normal | delta_gamma (parametric).")
    ] = "delta_normal",
    vol_model: Annotated[str, typer.Option("--vol-model", help="ewma | garch (fhs).")] = "ewma",
    seed: Annotated[int, typer.Option(help="Random seed (mc).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG: firm P&L distribution with VaR/ES, VaR/ES by desk.")
    ] = None,
) -> None:
    """VaR and ES at every node of the hierarchy, with top contributors by position and risk factor."""
    request = RiskRequest(
        method=method,  # type: ignore[arg-type]
        confidence=confidence,
        horizon_days=horizon_days,
        horizon_rule=horizon_rule,  # type: ignore[arg-type]
        levels=_levels(by),
        window=window,
        top_n=top,
        mc_paths=paths,
        mc_distribution=distribution,  # type: ignore[arg-type]
        mc_dof=dof,
        antithetic=antithetic,
        covariance=covariance,  # type: ignore[arg-type]
        rule=rule,  # type: ignore[arg-type]
        parametric=parametric,  # type: ignore[arg-type]
        vol_model=vol_model,  # type: ignore[arg-type]
        seed=seed,
    )
    with stage_progress(not as_json, "VaR") as progress:
        progress("loading portfolio", 0.0)
        loaded = load(portfolio)
        report = run_risk(
            loaded.portfolio, loaded.snapshot, loaded.history, request, progress, keep_pnl=plot is not None
        )
    show_rejected(report.rejected)
    if plot is not None:
        if request.method == "parametric":
            err_console.print("[yellow]--plot draws scenario P&L: not available for the parametric method[/]")
        else:
            from ..web import plot_risk_report

            err_console.print(f"chart written to {plot_risk_report(report, plot)}")
    if as_json:
        print_json(report.to_dict())
        return
    ccy = report.reporting_currency
    table = Table(
        title=f"{request.method.upper()} {request.var_name} / {request.es_name} in {ccy} — as of {report.as_of}, "
        f"{report.n_positions:,} positions, {report.n_scenarios or 'parametric'} scenarios",
        title_justify="left",
    )
    table.add_column("node")
    table.add_column("positions", justify="right")
    table.add_column("VaR", justify="right")
    table.add_column("ES", justify="right")
    table.add_column("top positions (cES)")
    table.add_column("top factors (cES)")
    for n in report.nodes:
        depth = n.node.count("/")
        name = "  " * depth + n.node.rsplit("/", 1)[-1]
        table.add_row(
            name,
            f"{n.positions:,}",
            money(n.var),
            money(n.es),
            "\n".join(f"{c.label} {money(c.es)}" for c in n.top_positions[:3]),
            "\n".join(f"{c.label} {money(c.es)}" for c in n.top_factors[:3]),
        )
    out_console.print(table)
    err_console.print(
        f"[dim]computed in {report.timings.get('total', 0):.2f} s; P&L positive = gain, VaR/ES positive losses[/]"
    )


@app.command("frtb")
def frtb_command(
    portfolio: Annotated[Path, typer.Option("--portfolio", help="Portfolio directory.")],
    by: Annotated[str, typer.Option(help="Hierarchy levels below the firm.")] = "desk,book",
    window: Annotated[int, typer.Option(help="Number of overlapping 10-day scenarios.")] = 250,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """FRTB 97.5 % ES with liquidity horizons (10/20/40/60/120 days) per node, by the MAR33.4 cascade."""
    with stage_progress(not as_json, "FRTB ES") as progress:
        progress("loading portfolio", 0.0)
        loaded = load(portfolio)
        report = run_frtb_es(
            loaded.portfolio, loaded.snapshot, loaded.history, _levels(by), window, progress=progress
        )
    show_rejected(report.rejected)
    if as_json:
        print_json(report.to_dict())
        return
    table = Table(title=f"FRTB liquidity-adjusted ES 97.5 % — as of {report.as_of}", title_justify="left")
    for col in ("node", "ES 10d", "LH≥20", "LH≥40", "LH≥60", "LH≥120", "LA-ES"):
        table.add_column(col, justify="left" if col == "node" else "right")
    for n in report.nodes:
        name = "  " * n.node.count("/") + n.node.rsplit("/", 1)[-1]
        table.add_row(
            name,
            *(money(n.es_by_horizon[lh]) for lh in (10, 20, 40, 60, 120)),
            money(n.liquidity_adjusted_es),
        )
    out_console.print(table)
