"""Turn riskstream errors into one clear line on stderr and exit status 2, instead of a traceback."""

from __future__ import annotations

import sys

import typer

from ..errors import RiskstreamError


def run(app: typer.Typer) -> int:
    try:
        app(standalone_mode=False)
    except RiskstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 1
    except Exception as exc:  # click usage errors arrive as click exceptions
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0
