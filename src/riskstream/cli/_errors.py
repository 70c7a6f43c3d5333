"""Turn riskstream errors into one clear line on stderr and exit status 2, instead of a traceback."""

from __future__ import annotations

import sys

import typer

from ..errors import RiskstreamError


def run(app: typer.Typer) -> int:
    """Run the app; usage errors are handled by typer (exit 2), riskstream errors become ``error: ...``."""
    try:
        app()  # standalone mode: exits through SystemExit with the command's status
    except RiskstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
