"""Fixtures shared across test folders: a demo bank and risk store built through the CLI, and how to launch
Debian's Chromium headless."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from riskstream.cli import app as cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def make_demo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], tuple[Path, Path]]:
    """``make_demo(name, positions)`` → (portfolio, store): a sample bank and a demo store (demo users and roles,
    market history, EOD jobs for the last two business days), built with the CLI as a user would."""

    def build(name: str, positions: int) -> tuple[Path, Path]:
        root = tmp_path_factory.mktemp(name)
        portfolio, store = root / "portfolio", root / "store"
        runner = CliRunner()
        for args in (
            ["sample-portfolio", "--positions", str(positions), "--out", str(portfolio)],
            ["store", "demo", "--store", str(store), "--portfolio", str(portfolio), "--quiet"],
        ):
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, result.output
        return portfolio, store

    return build


@pytest.fixture(scope="session")
def chromium_launch() -> dict[str, Any]:
    """Keyword arguments of Playwright's ``chromium.launch`` for Debian's Chromium (never a downloaded browser);
    fails with a clear message when it is not installed (CI installs it)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium (Playwright's own browsers are not used)"
        )
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}
