"""`riskstream query` command(s)."""

from __future__ import annotations

from ._app import app  # noqa: F401
