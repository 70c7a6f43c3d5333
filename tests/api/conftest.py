"""Fixtures of the service tests: a demo bank and risk store built once per test process, the app over them.

``demo_dirs``: a 2,000-position sample bank and a demo store (demo users and roles, market history, EOD jobs
for the last two business days), built through the CLI as a user would. ``api_ctx``/``app``: the service over
them with the live pipeline off (``live_app`` runs it). ``login(user)``: headers with a development-IdP token.
Tests that write to the store use their own namespace or business date, so they never disturb the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from riskstream.api import ApiConfig, build_context, create_app
from riskstream.cli import app as cli

POSITIONS = 2_000


@pytest.fixture(scope="session")
def demo_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("api-demo")
    portfolio, store = root / "portfolio", root / "store"
    runner = CliRunner()
    for args in (
        ["sample-portfolio", "--positions", str(POSITIONS), "--out", str(portfolio)],
        ["store", "demo", "--store", str(store), "--portfolio", str(portfolio), "--quiet"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    return portfolio, store


@pytest.fixture(scope="session")
def api_config(demo_dirs: tuple[Path, Path]) -> ApiConfig:
    portfolio, store = demo_dirs
    return ApiConfig(portfolio=portfolio, store=store, live=False)


@pytest.fixture(scope="session")
def app(api_config: ApiConfig):  # type: ignore[no-untyped-def]
    return create_app(ctx=build_context(api_config))


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def login(app) -> Callable[[str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """``login(user)`` → Authorization headers with a token from the development identity provider."""
    cache: dict[str, dict[str, str]] = {}

    def headers(user: str) -> dict[str, str]:
        if user not in cache:
            cache[user] = {"Authorization": f"Bearer {app.state.ctx.auth.dev_token(user)}"}
        return cache[user]

    return headers
