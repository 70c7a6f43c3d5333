"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="riskstream",
    help="riskstream: real-time market risk — VaR/ES, stress tests, back-tests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """riskstream: VaR/ES per node, stress tests, FRTB ES and back-tests over a portfolio directory."""
