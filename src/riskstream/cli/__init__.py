"""Command line: ``riskstream COMMAND``. Each command lives in its own module and registers on ``app``."""

from __future__ import annotations

import sys

# Each import below registers that module's commands on ``app``.
from . import (
    _apikey,  # noqa: F401
    _backtest,  # noqa: F401
    _errors,
    _job,  # noqa: F401
    _query,  # noqa: F401
    _sample,  # noqa: F401
    _serve,  # noqa: F401
    _store,  # noqa: F401
    _stream,  # noqa: F401
    _stress,  # noqa: F401
    _var,  # noqa: F401
)
from ._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``riskstream`` console script."""
    sys.exit(_errors.run(app))
