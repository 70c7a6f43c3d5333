"""Command line: ``riskstream COMMAND``. Each command lives in its own module and registers on ``app``."""

from __future__ import annotations

import sys

from ._app import app

# Each import below registers that module's commands on ``app``.
from . import _errors  # noqa: E402,I001  (error handler first)

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``riskstream`` console script."""
    sys.exit(_errors.run(app))
