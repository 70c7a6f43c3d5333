"""``riskstream sample-portfolio``: generate the sample bank and write it as a portfolio directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..marketdata import Universe, synthetic_history
from ..refdata import sample_bank, write_portfolio
from ._app import app

_err = Console(stderr=True)  # progress on stderr keeps stdout for the summary


@app.command("sample-portfolio")
def sample_portfolio_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write (created if missing).")],
    positions: Annotated[int, typer.Option("--positions", min=1, help="Number of positions.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the market history and the portfolio.")] = 0,
) -> None:
    """Generate the sample bank (six desks, ~1,000 risk factors, 20 years of daily history) into a directory."""
    started = time.perf_counter()
    with _err.status("generating the market history (1999–2018)…"):
        universe = Universe.default()
        history = synthetic_history(universe, seed)
    with _err.status(f"drawing {positions:,} positions…"):
        bank = sample_bank(positions, seed, universe=universe, history=history)
    with _err.status(f"writing {out}…"):
        path = write_portfolio(out, bank)
    desks = sorted(set(bank.positions["desk"].tolist()))
    table = Table(title="sample portfolio", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("positions", f"{bank.n_positions:,}")
    table.add_row("instruments", f"{len(bank.instruments):,}")
    table.add_row("risk factors", f"{history.shape[1]:,} × {history.shape[0]:,} days")
    table.add_row("desks", ", ".join(desks))
    table.add_row("as of", bank.as_of.isoformat())
    table.add_row("took", f"{time.perf_counter() - started:.1f} s")
    out_console = Console()
    out_console.print(table)
    out_console.print(f"written to {path.resolve()}", soft_wrap=True, highlight=False)
